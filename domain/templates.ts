// Customer and account-manager emails: seed 000's two templates word for word, plus the notices the lifecycle sends.

/** Placeholders are `{{snake_case}}` as in the runbook; amounts and dates arrive formatted (formatMinorUnits, formatNoticeTime). */
export interface TemplateVarsByName {
  paymentFailureNotice: {
    tenant_id: string;
    invoice_id: string;
    grace_days: number;
    billing_portal_url: string;
  };
  billingErrorAcknowledgment: {
    invoice_id: string;
    adjustment_description: string;
    credit_amount: string;
    corrected_total: string;
  };
  paymentReminder: {
    tenant_id: string;
    invoice_id: string;
    amount_due: string;
    days_past_due: number;
    billing_portal_url: string;
  };
  /** Sent to the tenant's account manager, not to the tenant. */
  accountManagerContact: { tenant_id: string; invoice_id: string; amount_due: string; days_past_due: number };
  downgradeWarning: {
    tenant_id: string;
    invoice_id: string;
    amount_due: string;
    soft_limit_at: string;
    soft_limit_percent: number;
    hard_limit_at: string;
    suspension_at: string;
    billing_portal_url: string;
  };
  softLimitNotice: {
    tenant_id: string;
    soft_limit_percent: number;
    hard_limit_at: string;
    suspension_at: string;
    billing_portal_url: string;
  };
  hardLimitNotice: { tenant_id: string; suspension_at: string; billing_portal_url: string };
  suspensionNotice: { tenant_id: string; deletion_at: string; billing_portal_url: string };
  paymentRecovered: { tenant_id: string; invoice_id: string; amount_paid: string };
  customerNotice: { subject: string; body: string };
  // Incidents (seed 000 "Notify affected customers", "service credits for impact"; seed 004 refunds and subscriptions).
  serviceIncidentNotice: { tenant_id: string; incident_summary: string; customer_action: string };
  serviceIncidentResolved: { tenant_id: string; incident_summary: string; duration: string };
  serviceCreditNotice: { tenant_id: string; credit_amount: string; outage_duration: string };
  paymentConfirmation: { tenant_id: string; reference: string; amount_paid: string };
  refundConfirmation: {
    tenant_id: string;
    transaction_reference: string;
    amount_refunded: string;
    subscription_change: string;
  };
  refundRefused: { tenant_id: string; transaction_reference: string; reason: string };
  subscriptionActivated: { tenant_id: string; tier: string; period_start: string; period_end: string };
  rootCauseReminder: { incident_id: string; incident_type: string; resolved_at: string; hours: number };
  attentionNeeded: { workflow_id: string; step: string; error_type: string; reason: string; actions: string };
}

export type TemplateName = keyof TemplateVarsByName;
export type TemplateVars<N extends TemplateName = TemplateName> = TemplateVarsByName[N];

export interface RenderedTemplate {
  subject: string;
  text: string;
}

export class TemplateError extends Error {
  override name = 'TemplateError';
  constructor(
    readonly template: string,
    readonly variable: string,
    reason: string,
  ) {
    super(`template ${template}: variable ${variable} ${reason}`);
  }
}

const UPDATE_PAYMENT = 'Please update your payment method at: {{billing_portal_url}}';

const TEMPLATES: Record<TemplateName, RenderedTemplate> = {
  // Seed 000, "Payment Failure Notice".
  paymentFailureNotice: {
    subject: 'Payment Issue - Account #{{tenant_id}}',
    text: [
      'We encountered an issue processing your payment for invoice {{invoice_id}}.',
      'Your service will continue uninterrupted for the next {{grace_days}} days while we resolve this.',
      UPDATE_PAYMENT,
      'Contact billing@primarch.ai with questions.',
    ].join('\n\n'),
  },
  // Seed 000, "Billing Error Acknowledgment"; the amounts carry their currency ("USD 12.50"), so no literal "$".
  billingErrorAcknowledgment: {
    subject: 'Billing Adjustment - Invoice #{{invoice_id}}',
    text: [
      "We've identified and corrected a billing error on your account.",
      'Correction: {{adjustment_description}}\nCredit Applied: {{credit_amount}}\nRevised Total: {{corrected_total}}',
      'Updated invoice attached. Thank you for your patience.',
    ].join('\n\n'),
  },
  paymentReminder: {
    subject: 'Payment Reminder - Account #{{tenant_id}}',
    text: [
      'Your payment for invoice {{invoice_id}} ({{amount_due}}) is {{days_past_due}} days past due.',
      UPDATE_PAYMENT,
      'Reply to this email with questions.',
    ].join('\n\n'),
  },
  accountManagerContact: {
    subject: 'Account manager contact - Account #{{tenant_id}} is {{days_past_due}} days past due',
    text: [
      'Account #{{tenant_id}} has not paid invoice {{invoice_id}} ({{amount_due}}), now {{days_past_due}} days past due.',
      'Please contact the customer about payment. If you agree on a later payment date, extend their grace with:',
      '  billops extend-grace {{tenant_id}} --days <N> --reason "<agreement>"',
    ].join('\n\n'),
  },
  downgradeWarning: {
    subject: 'Service Limits Ahead - Account #{{tenant_id}}',
    text: [
      'We have still not been able to collect payment for invoice {{invoice_id}} ({{amount_due}}).',
      'Unless payment is received, your service will be limited:\n' +
        '- {{soft_limit_at}}: rate limited to {{soft_limit_percent}}% of normal capacity\n' +
        '- {{hard_limit_at}}: new API requests blocked\n' +
        '- {{suspension_at}}: account suspended',
      UPDATE_PAYMENT,
    ].join('\n\n'),
  },
  softLimitNotice: {
    subject: 'Service Limited - Account #{{tenant_id}}',
    text: [
      'Your grace period has ended without payment, so your service is now rate limited to {{soft_limit_percent}}% of normal capacity.',
      'New API requests will be blocked from {{hard_limit_at}}, and your account will be suspended on {{suspension_at}}.',
      UPDATE_PAYMENT,
    ].join('\n\n'),
  },
  hardLimitNotice: {
    subject: 'New API Requests Blocked - Account #{{tenant_id}}',
    text: [
      'Payment is still outstanding, so new API requests to your account are now blocked.',
      'Your account will be suspended on {{suspension_at}}.',
      UPDATE_PAYMENT,
    ].join('\n\n'),
  },
  suspensionNotice: {
    subject: 'Account Suspended - Account #{{tenant_id}}',
    text: [
      'Your account has been suspended because payment could not be collected.',
      'Your data is kept until {{deletion_at}} and permanently deleted after that; paying the outstanding balance before then restores your service.',
      UPDATE_PAYMENT,
    ].join('\n\n'),
  },
  paymentRecovered: {
    subject: 'Payment Received - Account #{{tenant_id}}',
    text: [
      'Thank you: we received your payment for invoice {{invoice_id}} ({{amount_paid}}).',
      'Any limits on your account have been removed and your service is fully restored.',
    ].join('\n\n'),
  },
  customerNotice: { subject: '{{subject}}', text: '{{body}}' },
  serviceIncidentNotice: {
    subject: 'Service Notice - Account #{{tenant_id}}',
    text: [
      'We are handling an incident that affects billing on your account: {{incident_summary}}.',
      'What this means for you: {{customer_action}}',
      'No service will be limited or suspended because of this incident. We will write again when it is resolved.',
      'Contact billing@primarch.ai with questions.',
    ].join('\n\n'),
  },
  serviceIncidentResolved: {
    subject: 'Service Notice Resolved - Account #{{tenant_id}}',
    text: [
      'The incident affecting billing on your account is resolved: {{incident_summary}}.',
      'It lasted {{duration}}. Payments and billing are working normally again.',
    ].join('\n\n'),
  },
  serviceCreditNotice: {
    subject: 'Service Credit Applied - Account #{{tenant_id}}',
    text: [
      'We are sorry for the disruption of {{outage_duration}} to your service.',
      'A service credit of {{credit_amount}} has been applied to your account and will reduce your next invoice.',
    ].join('\n\n'),
  },
  paymentConfirmation: {
    subject: 'Payment Confirmed - Account #{{tenant_id}}',
    text: 'We confirm your payment {{reference}} of {{amount_paid}}. Thank you.',
  },
  refundConfirmation: {
    subject: 'Refund Processed - Account #{{tenant_id}}',
    text: [
      'We have refunded {{amount_refunded}} of payment {{transaction_reference}}.',
      'Your subscription: {{subscription_change}}',
      'Depending on your bank, the refund can take a few business days to appear on your statement.',
    ].join('\n\n'),
  },
  refundRefused: {
    subject: 'Refund Request - Account #{{tenant_id}}',
    text: [
      'We could not refund payment {{transaction_reference}}: {{reason}}.',
      'Contact billing@primarch.ai if you think this is wrong.',
    ].join('\n\n'),
  },
  subscriptionActivated: {
    subject: 'Subscription Active - Account #{{tenant_id}}',
    text: [
      'Your payment is confirmed and your {{tier}} subscription is now active.',
      'Current period: {{period_start}} to {{period_end}}.',
    ].join('\n\n'),
  },
  rootCauseReminder: {
    subject: 'Root cause analysis due - {{incident_type}} {{incident_id}}',
    text: [
      'Incident {{incident_id}} ({{incident_type}}) was resolved at {{resolved_at}}.',
      'No root cause analysis has been recorded {{hours}} hours later. Record it with:',
      '  billops rca {{incident_id}} --summary "..."',
    ].join('\n\n'),
  },
  attentionNeeded: {
    subject: 'Needs attention - {{workflow_id}}: {{step}}',
    text: [
      'Workflow {{workflow_id}} is waiting at {{step}}: {{error_type}}: {{reason}}',
      'Its timers and state are kept; it tries the step again by itself with a growing interval.',
      'What you can do: {{actions}}',
    ].join('\n\n'),
  },
};

export const TEMPLATE_NAMES = Object.keys(TEMPLATES) as TemplateName[];

const PLACEHOLDER = /\{\{([a-z_]+)\}\}/g;

/** The variables a template uses, in order of first use. */
export function templateVariables(name: TemplateName): string[] {
  const { subject, text } = TEMPLATES[name];
  return [...new Set([...`${subject}\n${text}`.matchAll(PLACEHOLDER)].map((m) => m[1] ?? ''))];
}

/** Fills every placeholder in one pass (a value is never re-expanded); a missing or empty variable is a TemplateError. */
export function renderTemplate<N extends TemplateName>(name: N, vars: TemplateVars<N>): RenderedTemplate {
  const template = TEMPLATES[name];
  if (!template) throw new TemplateError(String(name), '(none)', 'cannot be filled: no such template');
  const values = new Map<string, string>();
  const given: Record<string, unknown> = { ...vars };
  for (const variable of templateVariables(name)) {
    values.set(variable, valueOf(String(name), variable, given[variable]));
  }
  const fill = (source: string) =>
    source.replace(PLACEHOLDER, (_, variable: string) => values.get(variable) ?? '');
  // A subject is one header line whatever the value holds.
  return {
    subject: fill(template.subject)
      .replace(/\s*[\r\n]+\s*/g, ' ')
      .trim(),
    text: fill(template.text),
  };
}

/** `2026-12-01 14:00 UTC`: how notices show a deadline. */
export function formatNoticeTime(at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function valueOf(template: string, variable: string, value: unknown): string {
  if (value === undefined || value === null) throw new TemplateError(template, variable, 'is missing');
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TemplateError(template, variable, 'is not a finite number');
    return String(value);
  }
  if (typeof value !== 'string') throw new TemplateError(template, variable, 'must be text or a number');
  if (value.trim() === '') throw new TemplateError(template, variable, 'is empty');
  return value;
}
