// The customer notices of the dunning lifecycle: which runbook template each step sends, to whom, with which
// variables. Pure: the workflow renders and sends what these return.
import {
  outstanding,
  type DunningDeadlines,
  type DunningState,
  type FailedInvoice,
  type LifecycleStep,
} from './dunning';
import { formatMinorUnits } from './money';
import { formatNoticeTime, type TemplateVars } from './templates';
import { DAY_MS } from './vocabulary';

/** Where notices go: the tenant's billing contact, or its account manager for the enterprise past-due contacts. */
export interface NoticeContact {
  billingEmail: string;
  accountManagerEmail: string | null;
}

/** What a step's notice is built from besides the state. */
export interface NoticeContext {
  /** The deadlines when the step began: a notice states the schedule its step acted on. */
  deadlines: DunningDeadlines;
  /** Where customers update their payment method, linked from every notice. */
  billingPortalUrl: string;
  /** The Payment Failure Notice's "manual payment link", the invoice it pays, and when it is sent. */
  paymentLink?: { invoiceId: string; url: string; sentAt: number };
}

// The lifecycle's own templates; a name not in templates.ts fails to compile here, not in a customer's inbox.
type DunningTemplate =
  | 'paymentFailureNotice'
  | 'paymentReminder'
  | 'accountManagerContact'
  | 'downgradeWarning'
  | 'softLimitNotice'
  | 'hardLimitNotice'
  | 'suspensionNotice'
  | 'paymentRecovered';

/** A notice ready to render: the template, its variables, and the address it goes to. */
export type DunningNotice = {
  [N in DunningTemplate]: { template: N; vars: TemplateVars<N>; to: string };
}[DunningTemplate];

/**
 * The notice a lifecycle step sends, or null when it sends none: the deletion, and a payment retry without its
 * payment link (the Payment Failure Notice goes out once, with the first failed retry).
 */
export function stepNotice(
  step: LifecycleStep,
  state: DunningState,
  contact: NoticeContact,
  context: NoticeContext,
): DunningNotice | null {
  const d = context.deadlines;
  const tenant_id = state.tenantId;
  const billing_portal_url = context.billingPortalUrl;
  const to = contact.billingEmail;
  switch (step.kind) {
    case 'paymentRetry': {
      const link = context.paymentLink;
      if (!link) return null;
      const graceDays = Math.max(0, Math.round((Date.parse(d.graceEndsAt) - link.sentAt) / DAY_MS));
      const vars = {
        tenant_id,
        invoice_id: link.invoiceId,
        grace_days: graceDays,
        billing_portal_url: link.url,
      };
      return { template: 'paymentFailureNotice', to, vars };
    }
    case 'pastDueContact': {
      const pastDue = {
        tenant_id,
        invoice_id: firstOpen(state).invoiceId,
        amount_due: amountDue(state),
        days_past_due: step.daysPastDue ?? 0,
      };
      if (step.contact === 'accountManagerContact') {
        const accountManager = contact.accountManagerEmail ?? contact.billingEmail;
        return { template: 'accountManagerContact', to: accountManager, vars: pastDue };
      }
      return { template: 'paymentReminder', to, vars: { ...pastDue, billing_portal_url } };
    }
    case 'warning': {
      const vars = {
        tenant_id,
        invoice_id: firstOpen(state).invoiceId,
        amount_due: amountDue(state),
        soft_limit_at: when(d.softLimitAt),
        soft_limit_percent: state.policy.downgrade.softLimitRatePercent,
        hard_limit_at: when(d.hardLimitAt),
        suspension_at: when(d.suspensionAt),
        billing_portal_url,
      };
      return { template: 'downgradeWarning', to, vars };
    }
    case 'softLimit': {
      const vars = {
        tenant_id,
        soft_limit_percent: state.policy.downgrade.softLimitRatePercent,
        hard_limit_at: when(d.hardLimitAt),
        suspension_at: when(d.suspensionAt),
        billing_portal_url,
      };
      return { template: 'softLimitNotice', to, vars };
    }
    case 'hardLimit':
      return {
        template: 'hardLimitNotice',
        to,
        vars: { tenant_id, suspension_at: when(d.suspensionAt), billing_portal_url },
      };
    case 'suspension':
      return {
        template: 'suspensionNotice',
        to,
        vars: { tenant_id, deletion_at: when(d.deletionAt), billing_portal_url },
      };
    case 'deletion':
      return null;
  }
}

/**
 * The Payment Recovered confirmation: every paid invoice of the lifecycle, and what was paid in all. An invoice that
 * failed while the recovery was finishing is not in it: the next lifecycle duns it.
 */
export function recoveryNotice(state: DunningState, contact: NoticeContact): DunningNotice {
  const paid = state.invoices.filter((i) => i.paid);
  const invoices = paid.length > 0 ? paid : state.invoices;
  const vars = {
    tenant_id: state.tenantId,
    invoice_id: invoices.map((i) => i.invoiceId).join(', '),
    amount_paid: formatMinorUnits(
      invoices.reduce((sum, i) => sum + i.amountMinor, 0),
      invoices[0]!.currency,
    ),
  };
  return { template: 'paymentRecovered', to: contact.billingEmail, vars };
}

/** The invoice a notice names: the oldest still open, else the first one. */
export function firstOpen(state: DunningState): FailedInvoice {
  return outstanding(state)[0] ?? state.invoices[0]!;
}

/** What is still owed, in the currency of the oldest open invoice. */
export function amountDue(state: DunningState): string {
  const open = outstanding(state);
  const currency = open[0]?.currency ?? state.invoices[0]!.currency;
  return formatMinorUnits(
    open.reduce((sum, i) => sum + i.amountMinor, 0),
    currency,
  );
}

/** `2026-12-01 14:00 UTC`, as notices show a deadline. */
function when(iso: string): string {
  return formatNoticeTime(new Date(iso));
}
