// The dunning notices read against the runbook: which template each step sends, to whom, with which variables.
import {
  addFailedInvoice,
  deadlines,
  lifecycleSteps,
  markInvoicePaid,
  newDunningState,
  type DunningInput,
  type DunningState,
  type LifecycleStep,
} from '../../domain/dunning';
import {
  amountDue,
  recoveryNotice,
  stepNotice,
  type NoticeContact,
  type NoticeContext,
} from '../../domain/dunningNotices';
import { defaultPolicy } from '../../domain/policy';
import { renderTemplate } from '../../domain/templates';

const T0 = Date.parse('2026-11-02T09:00:00Z');
const HOUR = 3_600_000;
const PORTAL = 'https://billing.test/portal';
const contact: NoticeContact = { billingEmail: 'billing@acme.test', accountManagerEmail: 'am@example.com' };

function lifecycle(tier: DunningInput['tier'] = 'pro'): DunningState {
  return newDunningState(
    {
      tenantId: 'acme',
      tier,
      processor: 'stripe',
      invoice: { invoiceId: 'in_1', amountMinor: 4900, currency: 'USD' },
      policy: defaultPolicy,
      billingPortalUrl: PORTAL,
    },
    'dunning-acme/run-1',
    T0,
  );
}

function stepOf(state: DunningState, id: string): LifecycleStep {
  const step = lifecycleSteps(state).find((s) => s.id === id);
  if (!step) throw new Error(`no step ${id}`);
  return step;
}

const contextOf = (state: DunningState): NoticeContext => ({
  deadlines: deadlines(state),
  billingPortalUrl: PORTAL,
});

describe('the notice each lifecycle step sends (Pro: 7 days grace)', () => {
  it('the first failed retry: the Payment Failure Notice with its payment link and the grace days left', () => {
    const state = lifecycle();
    const paymentLink = { invoiceId: 'in_1', url: 'https://pay.test/in_1', sentAt: T0 + HOUR };
    expect(
      stepNotice(stepOf(state, 'retry-1'), state, contact, { ...contextOf(state), paymentLink }),
    ).toEqual({
      template: 'paymentFailureNotice',
      to: 'billing@acme.test',
      vars: {
        tenant_id: 'acme',
        invoice_id: 'in_1',
        grace_days: 7,
        billing_portal_url: 'https://pay.test/in_1',
      },
    });
    // Without a link (a later retry, the notice already sent) the retry sends nothing.
    expect(stepNotice(stepOf(state, 'retry-2'), state, contact, contextOf(state))).toBeNull();
  });

  it('7 days past due: a Payment Reminder to the billing contact, with the whole amount owed', () => {
    const state = lifecycle();
    addFailedInvoice(state, { invoiceId: 'in_2', amountMinor: 1000, currency: 'USD' }, T0 + HOUR);
    expect(stepNotice(stepOf(state, 'past-due-7d'), state, contact, contextOf(state))).toEqual({
      template: 'paymentReminder',
      to: 'billing@acme.test',
      vars: {
        tenant_id: 'acme',
        invoice_id: 'in_1',
        amount_due: 'USD 59.00',
        days_past_due: 7,
        billing_portal_url: PORTAL,
      },
    });
  });

  it('the warning: the dates of each downgrade step, and the soft limit of 10%', () => {
    const state = lifecycle();
    const notice = stepNotice(stepOf(state, 'warning'), state, contact, contextOf(state));
    expect(notice).toEqual({
      template: 'downgradeWarning',
      to: 'billing@acme.test',
      vars: {
        tenant_id: 'acme',
        invoice_id: 'in_1',
        amount_due: 'USD 49.00',
        soft_limit_at: '2026-11-09 09:00 UTC',
        soft_limit_percent: 10,
        hard_limit_at: '2026-11-12 09:00 UTC',
        suspension_at: '2026-11-16 09:00 UTC',
        billing_portal_url: PORTAL,
      },
    });
    expect(renderTemplate(notice!.template, notice!.vars).subject).toContain('acme');
  });

  it('the downgrade steps: soft limit, hard limit, suspension, each naming the next deadline', () => {
    const state = lifecycle();
    const context = contextOf(state);
    expect(stepNotice(stepOf(state, 'soft-limit'), state, contact, context)?.vars).toEqual({
      tenant_id: 'acme',
      soft_limit_percent: 10,
      hard_limit_at: '2026-11-12 09:00 UTC',
      suspension_at: '2026-11-16 09:00 UTC',
      billing_portal_url: PORTAL,
    });
    expect(stepNotice(stepOf(state, 'hard-limit'), state, contact, context)).toEqual({
      template: 'hardLimitNotice',
      to: 'billing@acme.test',
      vars: { tenant_id: 'acme', suspension_at: '2026-11-16 09:00 UTC', billing_portal_url: PORTAL },
    });
    expect(stepNotice(stepOf(state, 'suspension'), state, contact, context)).toEqual({
      template: 'suspensionNotice',
      to: 'billing@acme.test',
      vars: { tenant_id: 'acme', deletion_at: '2027-02-14 09:00 UTC', billing_portal_url: PORTAL },
    });
  });

  it('the deletion sends no customer notice', () => {
    const state = lifecycle();
    expect(stepNotice(stepOf(state, 'deletion'), state, contact, contextOf(state))).toBeNull();
  });
});

describe('Enterprise past-due contacts', () => {
  it('14 days past due: the Account Manager Contact goes to the account manager', () => {
    const state = lifecycle('enterprise');
    expect(stepNotice(stepOf(state, 'past-due-14d'), state, contact, contextOf(state))).toEqual({
      template: 'accountManagerContact',
      to: 'am@example.com',
      vars: { tenant_id: 'acme', invoice_id: 'in_1', amount_due: 'USD 49.00', days_past_due: 14 },
    });
  });

  it('a tenant without an account manager: the billing contact hears it instead', () => {
    const state = lifecycle('enterprise');
    const noManager = { ...contact, accountManagerEmail: null };
    expect(stepNotice(stepOf(state, 'past-due-30d'), state, noManager, contextOf(state))?.to).toBe(
      'billing@acme.test',
    );
  });
});

describe('recovery', () => {
  it('Payment Recovered names every invoice and the total paid', () => {
    const state = lifecycle();
    addFailedInvoice(state, { invoiceId: 'in_2', amountMinor: 1000, currency: 'USD' }, T0 + HOUR);
    markInvoicePaid(state, 'in_1', T0 + 2 * HOUR, 'card');
    expect(amountDue(state)).toBe('USD 10.00');
    markInvoicePaid(state, 'in_2', T0 + 3 * HOUR, 'card');
    expect(recoveryNotice(state, contact)).toEqual({
      template: 'paymentRecovered',
      to: 'billing@acme.test',
      vars: { tenant_id: 'acme', invoice_id: 'in_1, in_2', amount_paid: 'USD 59.00' },
    });
  });

  it('an invoice that failed while the recovery was finishing is not confirmed as paid', () => {
    const state = lifecycle();
    markInvoicePaid(state, 'in_1', T0 + 2 * HOUR, 'card');
    addFailedInvoice(state, { invoiceId: 'in_2', amountMinor: 1000, currency: 'USD' }, T0 + 3 * HOUR);
    expect(recoveryNotice(state, contact).vars).toEqual({
      tenant_id: 'acme',
      invoice_id: 'in_1',
      amount_paid: 'USD 49.00',
    });
  });
});
