// Seed 004 "Check Refund Eligibility" as a table: within 30 days, no prior refund, subscription active — and the
// reason a refused customer reads; the request checks; what Stripe and Paystack refund/subscription events report.
import { defaultPolicy, parsePolicy } from '../../domain/policy';
import {
  refundDecision,
  refundInEvent,
  refundRequestProblem,
  subscriptionChangeProblem,
  subscriptionChangeText,
  type RefundablePayment,
  type TenantSubscription,
} from '../../domain/refunds';
import {
  activationInEvent,
  activationRequestProblem,
  alreadyActive,
} from '../../domain/subscriptionActivation';

const NOW = Date.parse('2026-11-22T12:00:00.000Z');
const DAY = 86_400_000;
const HOUR = 3_600_000;
const daysAgo = (days: number) => new Date(NOW - days * DAY).toISOString();

const activePro: TenantSubscription = {
  id: 'sub-1',
  status: 'active',
  tier: 'pro',
  billingCycle: 'monthly',
  currentPeriodStart: '2026-11-01T00:00:00.000Z',
  currentPeriodEnd: '2026-12-01T00:00:00.000Z',
  cancelAtPeriodEnd: false,
};

function payment(overrides: Partial<RefundablePayment> = {}): RefundablePayment {
  return {
    transactionId: '00000000-0000-4000-8000-000000000001',
    tenantId: 'pro-acme',
    processor: 'paystack',
    reference: 'T685312322670591',
    status: 'success',
    amountMinor: 15_000_000,
    currency: 'NGN',
    paidAt: daysAgo(10),
    refundedMinor: 0,
    refundedAt: null,
    refundReference: null,
    subscription: activePro,
    ...overrides,
  };
}

const rules = defaultPolicy.refund;

describe('refund eligibility (seed 004: within 30 days, no prior refund, subscription active)', () => {
  it.each([
    ['a payment 10 days old, never refunded, subscription active', payment(), undefined],
    ['exactly 30 days old', payment({ paidAt: daysAgo(30) }), undefined],
    ['a partial refund within what was paid', payment(), 5_000_000],
  ])('eligible: %s', (_what, p, amountMinor) => {
    expect(refundDecision(rules, p, { amountMinor }, NOW)).toEqual({
      eligible: true,
      amountMinor: amountMinor ?? 15_000_000,
      currency: 'NGN',
      full: amountMinor === undefined,
    });
  });

  it.each([
    [
      '31 days old',
      payment({ paidAt: daysAgo(31) }),
      'payment is 31 days old; refunds are allowed within 30 days',
    ],
    [
      '30 days and 5 hours old',
      payment({ paidAt: new Date(NOW - 30 * DAY - 5 * HOUR).toISOString() }),
      'payment is 30 days and 5 hours old; refunds are allowed within 30 days',
    ],
    [
      'refunded before',
      payment({ status: 'partially_refunded', refundedMinor: 5_000_000, refundedAt: daysAgo(2) }),
      'the payment was already refunded (NGN 50000.00 on 2026-11-20); only one refund per payment is allowed',
    ],
    [
      'subscription canceled',
      payment({ subscription: { ...activePro, status: 'canceled' } }),
      'the subscription is canceled; refunds are given on an active subscription only',
    ],
    [
      'no subscription at all',
      payment({ subscription: null }),
      'the account has no subscription; refunds are given on an active subscription only',
    ],
    [
      'a pending payment',
      payment({ status: 'pending' }),
      'the payment has not completed yet (it is still pending)',
    ],
    ['a failed payment', payment({ status: 'failed' }), 'the payment failed, so nothing was collected'],
  ] as const)('refused: %s', (_what, p, reason) => {
    expect(refundDecision(rules, p, {}, NOW)).toEqual({ eligible: false, reasons: [reason], reason });
  });

  it('gives every reason at once, joined so one sentence says all of why', () => {
    const decision = refundDecision(
      rules,
      payment({ paidAt: daysAgo(45), subscription: { ...activePro, status: 'past_due' } }),
      {},
      NOW,
    );
    expect(decision).toEqual({
      eligible: false,
      reasons: [
        'payment is 45 days old; refunds are allowed within 30 days',
        'the subscription is past_due; refunds are given on an active subscription only',
      ],
      reason:
        'payment is 45 days old; refunds are allowed within 30 days; ' +
        'the subscription is past_due; refunds are given on an active subscription only',
    });
  });

  it('refuses more than was paid, and amounts that are not whole minor units', () => {
    expect(refundDecision(rules, payment(), { amountMinor: 15_000_001 }, NOW)).toMatchObject({
      eligible: false,
      reason: 'NGN 150000.01 was asked for, but the payment was NGN 150000.00',
    });
    expect(refundDecision(rules, payment(), { amountMinor: 12.5 }, NOW)).toMatchObject({
      eligible: false,
      reason: 'a refund amount is a whole number of minor units above zero, got 12.5',
    });
  });

  it('follows the policy: a second refund when allowed, up to what is left; a longer window; no subscription rule', () => {
    const lenient = parsePolicy({
      refund: { windowDays: 60, allowAfterPriorRefund: true, requireActiveSubscription: false },
    }).refund;
    const halfRefunded = payment({
      status: 'partially_refunded',
      refundedMinor: 10_000_000,
      paidAt: daysAgo(45),
      subscription: null,
    });
    expect(refundDecision(lenient, halfRefunded, {}, NOW)).toEqual({
      eligible: true,
      amountMinor: 5_000_000,
      currency: 'NGN',
      full: true,
    });
    expect(refundDecision(lenient, halfRefunded, { amountMinor: 6_000_000 }, NOW)).toMatchObject({
      eligible: false,
      reason: 'NGN 60000.00 was asked for, but only NGN 50000.00 is left to refund',
    });
    expect(
      refundDecision(lenient, payment({ status: 'refunded', refundedMinor: 15_000_000 }), {}, NOW),
    ).toMatchObject({ eligible: false, reason: 'the payment was already refunded in full' });
  });

  it('has the runbook defaults and no approval threshold unless one is configured', () => {
    expect(defaultPolicy.refund).toEqual({
      windowDays: 30,
      allowAfterPriorRefund: false,
      requireActiveSubscription: true,
      approvalAboveMinor: {},
    });
    expect(
      parsePolicy({ refund: { approvalAboveMinor: { USD: 50_000 } } }).refund.approvalAboveMinor,
    ).toEqual({
      USD: 50_000,
    });
    expect(() => parsePolicy({ refund: { approvalAboveMinor: { usd: 10 } } })).toThrow(/ISO 4217/);
  });
});

describe('the refund request and its subscription change', () => {
  const request = {
    tenantId: 'pro-acme',
    reference: 'T1',
    reason: 'customer asked',
    subscriptionChange: 'none' as const,
  };

  it('names what an operator left out or got wrong', () => {
    expect(refundRequestProblem(request)).toBeNull();
    expect(refundRequestProblem({ ...request, tenantId: ' ' })).toBe('a refund names its tenant (tenantId)');
    expect(refundRequestProblem({ ...request, reference: undefined })).toBe(
      'a refund names the payment: transactionId or reference',
    );
    expect(refundRequestProblem({ ...request, reason: '' })).toBe('a refund needs a reason');
    expect(refundRequestProblem({ ...request, subscriptionChange: 'downgrade' })).toBe(
      'a downgrade names the tier to move to (downgradeTo: free, pro, enterprise)',
    );
  });

  it('a downgrade must go down; cancel needs a subscription', () => {
    expect(subscriptionChangeProblem('downgrade', 'free', activePro)).toBeNull();
    expect(subscriptionChangeProblem('downgrade', 'enterprise', activePro)).toBe(
      'enterprise is not a downgrade from pro',
    );
    expect(subscriptionChangeProblem('cancel_at_period_end', undefined, null)).toBe(
      'there is no subscription to cancel',
    );
    expect(subscriptionChangeProblem('none', undefined, null)).toBeNull();
  });

  it('tells the customer what happened to the subscription', () => {
    expect(subscriptionChangeText('none', null)).toBe('unchanged.');
    expect(subscriptionChangeText('downgrade', activePro, 'free')).toBe('moved from pro to free.');
    expect(subscriptionChangeText('cancel_at_period_end', activePro)).toBe(
      'it ends at the close of the current period (2026-12-01) and is not renewed; it stays active until then.',
    );
  });
});

describe('subscription activation rules', () => {
  const params = {
    tenantId: 'pro-acme',
    reference: 'T1',
    tier: 'pro' as const,
    billingCycle: 'monthly' as const,
  };

  it('activates only a paid tier on a known cycle', () => {
    expect(activationRequestProblem(defaultPolicy, params)).toBeNull();
    expect(activationRequestProblem(defaultPolicy, { ...params, tier: 'free' })).toBe(
      'the free tier has no payment processing: there is no paid subscription to activate',
    );
    expect(activationRequestProblem(defaultPolicy, { ...params, billingCycle: 'weekly' as 'monthly' })).toBe(
      'billingCycle must be one of monthly, annual, got weekly',
    );
    expect(activationRequestProblem(defaultPolicy, { ...params, reference: '' })).toBe(
      'an activation names the confirmed payment (reference)',
    );
  });

  it('is already active only on the same tier and cycle, within its period', () => {
    expect(alreadyActive(activePro, params, NOW)).toBe(true);
    expect(alreadyActive(activePro, { ...params, tier: 'enterprise' }, NOW)).toBe(false);
    expect(alreadyActive({ ...activePro, status: 'trialing' }, params, NOW)).toBe(false);
    expect(alreadyActive(activePro, params, Date.parse('2026-12-02T00:00:00Z'))).toBe(false);
    expect(alreadyActive(null, params, NOW)).toBe(false);
  });
});

describe('what a provider event reports', () => {
  const stripeEvent = (
    type: string,
    object: Record<string, unknown>,
    previous?: Record<string, unknown>,
  ) => ({
    id: 'evt_1',
    type,
    data: { object, ...(previous ? { previous_attributes: previous } : {}) },
  });

  it('reads a Stripe refund object; its charge.refunded twin and failed refunds open nothing', () => {
    expect(
      refundInEvent(
        'stripe',
        'refund.created',
        stripeEvent('refund.created', {
          object: 'refund',
          id: 're_1',
          amount: 4900,
          currency: 'usd',
          status: 'succeeded',
          charge: 'ch_1',
          payment_intent: 'pi_1',
          metadata: {},
        }),
      ),
    ).toEqual({
      processor: 'stripe',
      refundReference: 're_1',
      paymentReferences: ['pi_1', 'ch_1'],
      amountMinor: 4900,
      currency: 'USD',
      status: 'succeeded',
      requestedByBillops: false,
    });
    expect(
      refundInEvent(
        'stripe',
        'refund.created',
        stripeEvent('refund.created', {
          object: 'refund',
          id: 're_2',
          amount: 100,
          currency: 'usd',
          status: 'pending',
          charge: 'ch_2',
          metadata: { billops_workflow_id: 'incident-refund-x' },
        }),
      ),
    ).toMatchObject({ requestedByBillops: true, paymentReferences: ['ch_2'] });
    expect(
      refundInEvent(
        'stripe',
        'charge.refunded',
        stripeEvent('charge.refunded', { object: 'charge', id: 'ch_1' }),
      ),
    ).toEqual({
      ignored: "charge.refunded carries no refund object; the refund's own refund.* event opens the incident",
    });
    expect(
      refundInEvent(
        'stripe',
        'refund.failed',
        stripeEvent('refund.failed', {
          object: 'refund',
          id: 're_3',
          amount: 1,
          currency: 'usd',
          status: 'failed',
        }),
      ),
    ).toEqual({ ignored: 'Stripe refund re_3 is failed: no money went back' });
  });

  it('reads Paystack refund.processed (amount in kobo, as a number or digits) and only that event', () => {
    const body = {
      event: 'refund.processed',
      data: {
        id: 3018284,
        status: 'processed',
        transaction_reference: 'T685312322670591',
        amount: '10000',
        currency: 'NGN',
        merchant_note: 'billops incident-refund-x/refund',
      },
    };
    expect(refundInEvent('paystack', 'refund.processed', body)).toEqual({
      processor: 'paystack',
      refundReference: '3018284',
      paymentReferences: ['T685312322670591'],
      amountMinor: 10000,
      currency: 'NGN',
      status: 'processed',
      requestedByBillops: true,
    });
    expect(refundInEvent('paystack', 'refund.pending', body)).toEqual({
      ignored: 'Paystack refund.pending: the refund is not processed yet',
    });
  });

  it('reads a Stripe subscription that just became active: tier, cycle, latest invoice, trial conversion; renewals are not activations', () => {
    const subscription = {
      object: 'subscription',
      id: 'sub_1',
      status: 'active',
      metadata: { tier: 'pro' },
      latest_invoice: 'in_1',
      items: { data: [{ price: { recurring: { interval: 'year' } } }] },
    };
    expect(
      activationInEvent(
        'stripe',
        'customer.subscription.updated',
        stripeEvent('customer.subscription.updated', subscription, { status: 'trialing' }),
      ),
    ).toEqual({
      reference: 'in_1',
      tier: 'pro',
      billingCycle: 'annual',
      processor: 'stripe',
      trialConversion: true,
    });
    expect(
      activationInEvent(
        'stripe',
        'customer.subscription.updated',
        stripeEvent('customer.subscription.updated', { ...subscription, status: 'past_due' }),
      ),
    ).toEqual({ ignored: 'Stripe subscription sub_1 is past_due, not active' });
    expect(
      activationInEvent(
        'stripe',
        'customer.subscription.created',
        stripeEvent('customer.subscription.created', { ...subscription, metadata: {} }),
      ),
    ).toEqual({ ignored: 'Stripe subscription sub_1 does not say its tier (metadata.tier)' });
    // A renewal (the period moves, the status stays active) is no activation.
    expect(
      activationInEvent(
        'stripe',
        'customer.subscription.updated',
        stripeEvent('customer.subscription.updated', subscription, { current_period_end: 1 }),
      ),
    ).toEqual({ ignored: 'Stripe subscription sub_1 did not just become active' });
    expect(
      activationInEvent(
        'stripe',
        'customer.subscription.created',
        stripeEvent('customer.subscription.created', subscription),
      ),
    ).toEqual({ reference: 'in_1', tier: 'pro', billingCycle: 'annual', processor: 'stripe' });
    expect(activationInEvent('paystack', 'subscription.create', { data: {} })).toEqual({
      ignored: 'Paystack subscription.create names no payment; its charge.success settles the invoice',
    });
  });
});
