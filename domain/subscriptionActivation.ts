// Subscription activation, pure (seed 004 "For activation failures", "For trial conversion"): the checks on a
// request, what a Stripe subscription event reports, and whether there is anything left to activate.
import { z } from 'zod';
import { BILLING_TIERS, type BillingTier, type Policy } from './policy';
import {
  BILLING_CYCLES,
  eventMetadata,
  idOf,
  idOrObject,
  stripeEventSchema,
  type BillingCycle,
  type TenantSubscription,
} from './refunds';

export interface ActivationParams {
  tenantId: string;
  /** The payment confirmed for it: a payment reference (pi_, ch_, Paystack's) or a Stripe invoice id (in_). */
  reference: string;
  tier: BillingTier;
  billingCycle: BillingCycle;
  /** A trial converting to paid: trial_ends_at is cleared. */
  trialConversion?: boolean;
  /** Which provider to ask when billops has no record of the payment; default the tenant's processor. */
  processor?: 'stripe' | 'paystack';
}

export function activationRequestProblem(
  policy: Policy,
  params: Partial<ActivationParams> | undefined,
): string | null {
  if (!params || typeof params.tenantId !== 'string' || params.tenantId.trim() === '') {
    return 'an activation names its tenant (tenantId)';
  }
  if (typeof params.reference !== 'string' || params.reference.trim() === '') {
    return 'an activation names the confirmed payment (reference)';
  }
  if (!BILLING_TIERS.includes(params.tier as BillingTier)) {
    return `tier must be one of ${BILLING_TIERS.join(', ')}, got ${String(params.tier)}`;
  }
  if (policy.tiers[params.tier as BillingTier].graceDays === null) {
    return `the ${params.tier} tier has no payment processing: there is no paid subscription to activate`;
  }
  if (!BILLING_CYCLES.includes(params.billingCycle as BillingCycle)) {
    return `billingCycle must be one of ${BILLING_CYCLES.join(', ')}, got ${String(params.billingCycle)}`;
  }
  return null;
}

const stripeSubscriptionSchema = z.object({
  object: z.literal('subscription'),
  id: z.string().min(1),
  status: z.string(),
  metadata: eventMetadata,
  latest_invoice: idOrObject,
  items: z
    .object({
      data: z.array(
        z.object({
          price: z
            .object({
              lookup_key: z.string().nullish(),
              metadata: eventMetadata,
              recurring: z.object({ interval: z.string() }).nullish(),
            })
            .nullish(),
        }),
      ),
    })
    .nullish(),
});

const asTier = (value: unknown): BillingTier | undefined =>
  typeof value === 'string' && BILLING_TIERS.includes(value.trim().toLowerCase() as BillingTier)
    ? (value.trim().toLowerCase() as BillingTier)
    : undefined;

/** A Stripe subscription the provider calls active, with what activating it here needs; Paystack's events name no payment. */
export function activationInEvent(
  provider: 'stripe' | 'paystack',
  type: string,
  body: unknown,
): Omit<ActivationParams, 'tenantId'> | { ignored: string } {
  if (provider !== 'stripe') {
    return { ignored: `Paystack ${type} names no payment; its charge.success settles the invoice` };
  }
  const event = stripeEventSchema.safeParse(body);
  const sub = event.success ? stripeSubscriptionSchema.safeParse(event.data.data.object) : undefined;
  if (!sub?.success) return { ignored: `${type} carries no subscription object` };
  const s = sub.data;
  if (s.status !== 'active') return { ignored: `Stripe subscription ${s.id} is ${s.status}, not active` };
  // Renewals and other edits of an active subscription arrive as updates too: only a change into active counts.
  const previous = event.success ? event.data.data.previous_attributes?.status : undefined;
  const becameActive =
    type === 'customer.subscription.created' ||
    type === 'customer.subscription.resumed' ||
    (typeof previous === 'string' && previous !== 'active');
  if (!becameActive) return { ignored: `Stripe subscription ${s.id} did not just become active` };
  const price = s.items?.data[0]?.price;
  const tier = asTier(s.metadata?.tier) ?? asTier(price?.metadata?.tier) ?? asTier(price?.lookup_key);
  const interval = price?.recurring?.interval;
  const billingCycle = interval === 'month' ? 'monthly' : interval === 'year' ? 'annual' : undefined;
  const reference = idOf(s.latest_invoice);
  if (!tier || !billingCycle || !reference) {
    return {
      ignored: `Stripe subscription ${s.id} does not say its ${!tier ? 'tier (metadata.tier)' : !billingCycle ? 'billing interval' : 'latest invoice'}`,
    };
  }
  return {
    reference,
    tier,
    billingCycle,
    processor: 'stripe',
    ...(previous === 'trialing' ? { trialConversion: true } : {}),
  };
}

/** The subscription already runs as asked (fixed by hand, or a late event): there is nothing to activate. */
export function alreadyActive(
  subscription: TenantSubscription | null,
  params: Pick<ActivationParams, 'tier' | 'billingCycle'>,
  now: number,
): boolean {
  return (
    subscription !== null &&
    subscription.status === 'active' &&
    subscription.tier === params.tier &&
    subscription.billingCycle === params.billingCycle &&
    Date.parse(subscription.currentPeriodEnd) > now
  );
}
