// Email templates: seed 000's wording exactly, lifecycle notices, and a named error for any missing variable.
import {
  formatNoticeTime,
  renderTemplate,
  TEMPLATE_NAMES,
  TemplateError,
  templateVariables,
  type TemplateVars,
} from '../../domain/templates';

describe('Payment Failure Notice (seed 000)', () => {
  it('reads word for word like the runbook', () => {
    const message = renderTemplate('paymentFailureNotice', {
      tenant_id: 't-acme',
      invoice_id: 'in_123',
      grace_days: 7,
      billing_portal_url: 'http://127.0.0.1:8080/billing',
    });
    expect(message).toEqual({
      subject: 'Payment Issue - Account #t-acme',
      text:
        'We encountered an issue processing your payment for invoice in_123.\n\n' +
        'Your service will continue uninterrupted for the next 7 days while we resolve this.\n\n' +
        'Please update your payment method at: http://127.0.0.1:8080/billing\n\n' +
        'Contact billing@primarch.ai with questions.',
    });
  });

  it('names a missing or empty variable', () => {
    const vars = { tenant_id: 't-acme', invoice_id: 'in_123', grace_days: 7, billing_portal_url: '' };
    expect(() => renderTemplate('paymentFailureNotice', vars)).toThrow(
      new TemplateError('paymentFailureNotice', 'billing_portal_url', 'is empty'),
    );
    const { invoice_id: _omitted, ...missing } = vars;
    try {
      renderTemplate('paymentFailureNotice', missing as unknown as TemplateVars<'paymentFailureNotice'>);
      throw new Error('expected a TemplateError');
    } catch (err) {
      expect(err).toBeInstanceOf(TemplateError);
      expect((err as TemplateError).variable).toBe('invoice_id');
      expect((err as TemplateError).message).toBe(
        'template paymentFailureNotice: variable invoice_id is missing',
      );
    }
  });
});

describe('Billing Error Acknowledgment (seed 000)', () => {
  it('shows the amounts with their currency', () => {
    const message = renderTemplate('billingErrorAcknowledgment', {
      invoice_id: 'in_9',
      adjustment_description: 'API calls for 2026-11-03 were counted twice',
      credit_amount: 'USD 12.50',
      corrected_total: 'USD 87.50',
    });
    expect(message.subject).toBe('Billing Adjustment - Invoice #in_9');
    expect(message.text).toBe(
      "We've identified and corrected a billing error on your account.\n\n" +
        'Correction: API calls for 2026-11-03 were counted twice\n' +
        'Credit Applied: USD 12.50\n' +
        'Revised Total: USD 87.50\n\n' +
        'Updated invoice attached. Thank you for your patience.',
    );
  });
});

describe('lifecycle notices', () => {
  it('fills every placeholder in each template and declares the variables it uses', () => {
    expect(TEMPLATE_NAMES).toHaveLength(19);
    expect(templateVariables('downgradeWarning')).toEqual([
      'tenant_id',
      'invoice_id',
      'amount_due',
      'soft_limit_at',
      'soft_limit_percent',
      'hard_limit_at',
      'suspension_at',
      'billing_portal_url',
    ]);
    for (const name of TEMPLATE_NAMES) {
      const vars = Object.fromEntries(templateVariables(name).map((v) => [v, `<${v}>`]));
      const { subject, text } = renderTemplate(name, vars as unknown as TemplateVars);
      expect(`${subject}${text}`).not.toMatch(/\{\{|\}\}/);
    }
  });

  it('incident notices: what happened, what it means for the customer, and what to do', () => {
    const notice = renderTemplate('serviceIncidentNotice', {
      tenant_id: 't-1',
      incident_summary: 'our card processor is not answering',
      customer_action: 'nothing: failed payments will be retried once it is back',
    });
    expect(notice.subject).toBe('Service Notice - Account #t-1');
    expect(notice.text).toContain('No service will be limited or suspended because of this incident.');
    const credit = renderTemplate('serviceCreditNotice', {
      tenant_id: 't-1',
      credit_amount: 'USD 1.47',
      outage_duration: '3 hours 0 minutes',
    });
    expect(credit.text).toContain('A service credit of USD 1.47 has been applied to your account');
    const refund = renderTemplate('refundConfirmation', {
      tenant_id: 't-1',
      transaction_reference: 'T-42',
      amount_refunded: 'NGN 50000.00',
      subscription_change: 'cancelled at the end of the current period',
    });
    expect(refund.text).toContain('We have refunded NGN 50000.00 of payment T-42.');
    const reminder = renderTemplate('rootCauseReminder', {
      incident_id: 'incident-refund-T-42',
      incident_type: 'refund',
      resolved_at: '2026-11-22T10:00:00.000Z',
      hours: 48,
    });
    expect(reminder.subject).toBe('Root cause analysis due - refund incident-refund-T-42');
    expect(reminder.text).toContain('billops rca incident-refund-T-42 --summary');
  });

  it('tells the customer each limit and its date', () => {
    const { subject, text } = renderTemplate('softLimitNotice', {
      tenant_id: 't-1',
      soft_limit_percent: 10,
      hard_limit_at: formatNoticeTime(new Date(Date.UTC(2026, 11, 4, 9, 30))),
      suspension_at: '2026-12-08 09:30 UTC',
      billing_portal_url: 'https://billing.example.com',
    });
    expect(subject).toBe('Service Limited - Account #t-1');
    expect(text).toContain('rate limited to 10% of normal capacity');
    expect(text).toContain(
      'blocked from 2026-12-04 09:30 UTC, and your account will be suspended on 2026-12-08 09:30 UTC',
    );
  });

  it('keeps a subject on one line and never re-expands a value', () => {
    const message = renderTemplate('customerNotice', {
      subject: 'Planned\r\nBcc: x@example.com',
      body: '{{subject}}',
    });
    expect(message).toEqual({ subject: 'Planned Bcc: x@example.com', text: '{{subject}}' });
  });
});
