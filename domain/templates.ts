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
