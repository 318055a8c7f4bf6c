// Refunds, pure: seed 004's refund eligibility (within 30 days, no earlier refund, subscription active) with reasons a
// customer can read, the checks on a request, and what a provider's refund event reports.
import { z } from 'zod';
import { formatMinorUnits, normalizeCurrency } from './money';
import { BILLING_TIERS, type BillingTier, type Policy } from './policy';
import { DAY_MS, HOUR_MS, MINUTE_MS } from './vocabulary';

export const SUBSCRIPTION_CHANGES = ['none', 'downgrade', 'cancel_at_period_end'] as const;
export type SubscriptionChange = (typeof SUBSCRIPTION_CHANGES)[number];

export const BILLING_CYCLES = ['monthly', 'annual'] as const;
export type BillingCycle = (typeof BILLING_CYCLES)[number];

export type RefundProcessor = 'stripe' | 'paystack' | 'manual';

/** A refund the provider already made (a refund webhook): billops records it and asks for nothing. */
export interface ReportedRefund {
  processor: 'stripe' | 'paystack';
  /** The provider's refund id (re_..., Paystack's refund id). */
  refundReference: string;
  /** The refunded payment's references as the provider names it (pi_... and ch_..., or the Paystack reference). */
  paymentReferences: string[];
  amountMinor: number;
  currency: string;
  /** The provider's word on it: succeeded, pending, processed. */
  status: string;
  /** billops asked for it (metadata or merchant note): it is recorded by the incident that asked. */
  requestedByBillops: boolean;
  eventKey?: string;
}

/** The refund incident's params (seed 004 "Refund Processing"). */
export interface RefundParams {
  tenantId: string;
  /** payment_transactions.id, or */
  transactionId?: string;
  /** payment_transactions.reference (Stripe pi_... / ch_..., the Paystack reference). */
  reference?: string;
  /** A partial refund in minor units; absent: everything not yet refunded. */
  amountMinor?: number;
  reason: string;
  subscriptionChange: SubscriptionChange;
  downgradeTo?: BillingTier;
  /** Set when the provider reported a refund it already made: recorded, never requested again. */
  reported?: ReportedRefund;
}

export interface TenantSubscription {
  id: string;
  status: string;
  tier: BillingTier;
  billingCycle: BillingCycle;
  currentPeriodStart: string;
  currentPeriodEnd: string;
  cancelAtPeriodEnd: boolean;
}

/** The payment as billops holds it, with the tenant's live subscription: what eligibility is decided on. */
export interface RefundablePayment {
  transactionId: string;
  tenantId: string;
  processor: RefundProcessor;
  reference: string;
  status: 'pending' | 'success' | 'failed' | 'refunded' | 'partially_refunded';
  amountMinor: number;
  currency: string;
  paidAt: string | null;
  refundedMinor: number;
  refundedAt: string | null;
  refundReference: string | null;
  subscription: TenantSubscription | null;
}

export type RefundDecision =
  | { eligible: true; amountMinor: number; currency: string; full: boolean }
  /** `reason` is every failed rule, readable, joined with "; ". */
  | { eligible: false; reasons: string[]; reason: string };

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
const day = (iso: string) => iso.slice(0, 10);
const money = (amountMinor: number, currency: string) => formatMinorUnits(amountMinor, currency);

/** How old a payment past the window is: whole days once a day over, else days and the hours (or minutes) over. */
function ageBeyond(elapsedMs: number, windowDays: number): string {
  const days = Math.floor(elapsedMs / DAY_MS);
  if (days > windowDays) return plural(days, 'day');
  const rest = elapsedMs - days * DAY_MS;
  const hours = Math.floor(rest / HOUR_MS);
  if (hours > 0) return `${plural(days, 'day')} and ${plural(hours, 'hour')}`;
  return `${plural(days, 'day')} and ${plural(Math.max(1, Math.ceil(rest / MINUTE_MS)), 'minute')}`;
}

/** What is left to refund of a payment. */
export function refundableMinor(payment: RefundablePayment): number {
  return Math.max(0, payment.amountMinor - payment.refundedMinor);
}

/**
 * Seed 004 "Check Refund Eligibility": the payment must be within the window, not refunded before (unless the
 * policy allows more than one), and the customer's subscription active; the amount must be what is left or less.
 * Every rule that fails is given, so a refusal says all of why.
 */
export function refundDecision(
  rules: Policy['refund'],
  payment: RefundablePayment,
  request: { amountMinor?: number },
  now: number,
): RefundDecision {
  const reasons: string[] = [];
  const { currency } = payment;

  if (payment.status === 'pending') reasons.push('the payment has not completed yet (it is still pending)');
  if (payment.status === 'failed') reasons.push('the payment failed, so nothing was collected');

  const refundedBefore = payment.refundedMinor > 0 || payment.status === 'refunded';
  if (refundedBefore && !rules.allowAfterPriorRefund) {
    const when = payment.refundedAt ? ` on ${day(payment.refundedAt)}` : '';
    reasons.push(
      `the payment was already refunded (${money(payment.refundedMinor, currency)}${when}); ` +
        'only one refund per payment is allowed',
    );
  } else if (refundedBefore && refundableMinor(payment) === 0) {
    reasons.push('the payment was already refunded in full');
  }

  const paidAt = payment.paidAt === null ? null : Date.parse(payment.paidAt);
  if (paidAt !== null && now - paidAt > rules.windowDays * DAY_MS) {
    reasons.push(
      `payment is ${ageBeyond(now - paidAt, rules.windowDays)} old; refunds are allowed within ${plural(rules.windowDays, 'day')}`,
    );
  }

  if (rules.requireActiveSubscription) {
    const sub = payment.subscription;
    if (!sub)
      reasons.push('the account has no subscription; refunds are given on an active subscription only');
    else if (sub.status !== 'active') {
      reasons.push(`the subscription is ${sub.status}; refunds are given on an active subscription only`);
    }
  }

  const left = refundableMinor(payment);
  const amountMinor = request.amountMinor ?? left;
  if (request.amountMinor !== undefined) {
    if (!Number.isSafeInteger(request.amountMinor) || request.amountMinor <= 0) {
      reasons.push(
        `a refund amount is a whole number of minor units above zero, got ${String(request.amountMinor)}`,
      );
    } else if (request.amountMinor > left && left === payment.amountMinor) {
      reasons.push(
        `${money(request.amountMinor, currency)} was asked for, but the payment was ${money(payment.amountMinor, currency)}`,
      );
    } else if (request.amountMinor > left && left > 0) {
      reasons.push(
        `${money(request.amountMinor, currency)} was asked for, but only ${money(left, currency)} is left to refund`,
      );
    }
  }

  if (reasons.length > 0) return { eligible: false, reasons, reason: reasons.join('; ') };
  return { eligible: true, amountMinor, currency, full: amountMinor === left };
}

const tierRank = (tier: BillingTier) => BILLING_TIERS.indexOf(tier);

/** A request billops cannot act on as asked (an operator's mistake, not the customer's eligibility), or null. */
export function refundRequestProblem(params: Partial<RefundParams> | undefined): string | null {
  if (!params || typeof params.tenantId !== 'string' || params.tenantId.trim() === '') {
    return 'a refund names its tenant (tenantId)';
  }
  if (!params.transactionId && !params.reference) {
    return 'a refund names the payment: transactionId or reference';
  }
  if (typeof params.reason !== 'string' || params.reason.trim() === '') return 'a refund needs a reason';
  if (!SUBSCRIPTION_CHANGES.includes(params.subscriptionChange as SubscriptionChange)) {
    return `subscriptionChange must be one of ${SUBSCRIPTION_CHANGES.join(', ')}, got ${String(params.subscriptionChange)}`;
  }
  if (
    params.subscriptionChange === 'downgrade' &&
    !BILLING_TIERS.includes(params.downgradeTo as BillingTier)
  ) {
    return `a downgrade names the tier to move to (downgradeTo: ${BILLING_TIERS.join(', ')})`;
  }
  return null;
}

/** The subscription change cannot be made on this subscription, or null. */
export function subscriptionChangeProblem(
  change: SubscriptionChange,
  downgradeTo: BillingTier | undefined,
  subscription: TenantSubscription | null,
): string | null {
  if (change === 'none') return null;
  if (!subscription) return `there is no subscription to ${change === 'downgrade' ? 'downgrade' : 'cancel'}`;
  if (change === 'downgrade' && downgradeTo && tierRank(downgradeTo) >= tierRank(subscription.tier)) {
    return `${downgradeTo} is not a downgrade from ${subscription.tier}`;
  }
  return null;
}

/** The customer's words for what happened to the subscription (refundConfirmation's subscription_change). */
export function subscriptionChangeText(
  change: SubscriptionChange,
  from: { tier: BillingTier; currentPeriodEnd: string } | null,
  downgradeTo?: BillingTier,
): string {
  if (change === 'downgrade' && from && downgradeTo) return `moved from ${from.tier} to ${downgradeTo}.`;
  if (change === 'cancel_at_period_end' && from) {
    return `it ends at the close of the current period (${day(from.currentPeriodEnd)}) and is not renewed; it stays active until then.`;
  }
  return 'unchanged.';
}

// ---- What a provider's event reports (read at the ingress, which stores the raw event first) ----

// Shared with domain/subscriptionActivation.ts, which reads the subscription events the same way.
export const eventMetadata = z.record(z.string(), z.unknown()).nullish();
export const idOrObject = z.union([z.string(), z.object({ id: z.string() }).passthrough()]).nullish();
export const idOf = (ref: z.infer<typeof idOrObject>) => (typeof ref === 'string' ? ref : ref?.id);
const currency = z.string().regex(/^[A-Za-z]{3}$/);
const kobo = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .refine((n) => n > 0),
]);

export const stripeEventSchema = z.object({
  data: z.object({
    object: z.record(z.string(), z.unknown()),
    previous_attributes: z.record(z.string(), z.unknown()).nullish(),
  }),
});
const paystackEventSchema = z.object({ data: z.record(z.string(), z.unknown()) });

const stripeRefundSchema = z.object({
  object: z.literal('refund'),
  id: z.string().min(1),
  amount: z.number().int().positive(),
  currency,
  status: z.string().nullish(),
  charge: idOrObject,
  payment_intent: idOrObject,
  metadata: eventMetadata,
});

const paystackRefundSchema = z.object({
  id: z.union([z.number().int(), z.string().min(1)]).nullish(),
  refund_reference: z.string().min(1).nullish(),
  transaction_reference: z.string().min(1).nullish(),
  transaction: z
    .union([z.object({ reference: z.string().min(1) }).passthrough(), z.string(), z.number()])
    .nullish(),
  amount: kobo,
  currency: currency.nullish(),
  status: z.string().nullish(),
  merchant_note: z.string().nullish(),
});

/** The metadata key billops puts on its own Stripe refunds, and the start of its Paystack merchant notes. */
export const BILLOPS_REFUND_MARK = 'billops_workflow_id';
export const BILLOPS_MERCHANT_NOTE = 'billops ';

/** Events that say money went back: Stripe's refund objects once succeeded or pending, Paystack's refund.processed. */
export function refundInEvent(
  provider: 'stripe' | 'paystack',
  type: string,
  body: unknown,
): ReportedRefund | { ignored: string } {
  if (provider === 'stripe') {
    const event = stripeEventSchema.safeParse(body);
    const refund = event.success ? stripeRefundSchema.safeParse(event.data.data.object) : undefined;
    if (!refund?.success) {
      return {
        ignored: `${type} carries no refund object; the refund's own refund.* event opens the incident`,
      };
    }
    const r = refund.data;
    if (r.status !== 'succeeded' && r.status !== 'pending') {
      return { ignored: `Stripe refund ${r.id} is ${r.status ?? 'of no status'}: no money went back` };
    }
    const references = [idOf(r.payment_intent), idOf(r.charge)].filter((v): v is string => Boolean(v));
    if (references.length === 0) return { ignored: `Stripe refund ${r.id} names no payment` };
    return {
      processor: 'stripe',
      refundReference: r.id,
      paymentReferences: references,
      amountMinor: r.amount,
      currency: normalizeCurrency(r.currency),
      status: r.status,
      requestedByBillops: typeof r.metadata?.[BILLOPS_REFUND_MARK] === 'string',
    };
  }
  if (type !== 'refund.processed') return { ignored: `Paystack ${type}: the refund is not processed yet` };
  const event = paystackEventSchema.safeParse(body);
  const refund = event.success ? paystackRefundSchema.safeParse(event.data.data) : undefined;
  if (!refund?.success) return { ignored: `Paystack ${type} without a readable refund` };
  const r = refund.data;
  const transaction = r.transaction;
  const reference =
    r.transaction_reference ??
    (typeof transaction === 'object' && transaction !== null ? transaction.reference : undefined) ??
    (typeof transaction === 'string' ? transaction : undefined);
  const refundReference = r.id !== null && r.id !== undefined ? String(r.id) : r.refund_reference;
  if (!reference || !refundReference) return { ignored: `Paystack ${type} names no transaction or refund` };
  return {
    processor: 'paystack',
    refundReference,
    paymentReferences: [reference],
    amountMinor: r.amount,
    currency: normalizeCurrency(r.currency ?? 'NGN'),
    status: r.status ?? 'processed',
    requestedByBillops: (r.merchant_note ?? '').startsWith(BILLOPS_MERCHANT_NOTE),
  };
}
