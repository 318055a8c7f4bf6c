// Realistic Stripe and Paystack webhook events in the shapes paymentEvents/read parses, for `billops trigger` (and
// anyone else who needs a lifelike delivery): made-up ids in each provider's format, the tenant in metadata.tenant_id.
import { randomBytes } from 'node:crypto';

/** The Stripe API version the events claim; the readers do not depend on it. */
export const SAMPLE_STRIPE_API_VERSION = '2025-09-30.clover';

export const SAMPLE_STRIPE_EVENTS = [
  'invoice.payment_failed',
  'invoice.paid',
  'charge.refunded',
  'charge.dispute.created',
  'customer.subscription.updated',
] as const;
export const SAMPLE_PAYSTACK_EVENTS = ['charge.failed', 'charge.success', 'refund.processed'] as const;

export type SampleStripeEvent = (typeof SAMPLE_STRIPE_EVENTS)[number];
export type SamplePaystackEvent = (typeof SAMPLE_PAYSTACK_EVENTS)[number];

/** Who pays, and what: amounts in minor units (cents, kobo). */
export interface SampleSubject {
  tenantId: string;
  tier: string;
  email: string;
  /** The tenant's Stripe customer id or Paystack customer code, when it has one; else one is made up. */
  customerId?: string;
  amountMinor: number;
  currency: string;
  /** The processor's id of the invoice (Stripe in_...) or charge reference (Paystack) the event is about. */
  processorInvoiceId?: string;
}

export interface SampleEvent {
  /** The exact bytes to sign and send. */
  body: string;
  /** The event id (Stripe) or the reference (Paystack) the ingress keys it by. */
  id: string;
  /** The processor invoice id or charge reference it names, so a later paid event can name the same one. */
  processorInvoiceId: string;
}

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** `in_1Q...`: a prefix and 24 base-62 characters, as Stripe's ids look. */
export function stripeId(prefix: string): string {
  return `${prefix}_1${[...randomBytes(23)].map((b) => ALPHABET[b % 62]).join('')}`;
}

/** A Paystack transaction reference, e.g. `T685312322670591`. */
export function paystackReference(): string {
  return `T${(randomBytes(8).readBigUInt64BE(0) % 10n ** 15n).toString().padStart(15, '0')}`;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);
const DAY = 86_400;

/** A Stripe event of `type` about the subject, as Stripe sends it (pretty-printed, as Stripe's bodies are). */
export function stripeSampleEvent(type: SampleStripeEvent, subject: SampleSubject): SampleEvent {
  const created = nowSeconds();
  const id = stripeId('evt');
  const customer = subject.customerId ?? stripeId('cus');
  const metadata = { tenant_id: subject.tenantId };
  const invoiceId = subject.processorInvoiceId ?? stripeId('in');
  const currency = subject.currency.toLowerCase();
  const chargeId = stripeId('ch');
  const periodStart = created - 30 * DAY;
  const invoice = (paid: boolean) => ({
    id: invoiceId,
    object: 'invoice',
    customer,
    customer_email: subject.email,
    metadata,
    amount_due: subject.amountMinor,
    amount_paid: paid ? subject.amountMinor : 0,
    amount_remaining: paid ? 0 : subject.amountMinor,
    attempt_count: 1,
    billing_reason: 'subscription_cycle',
    collection_method: 'charge_automatically',
    currency,
    status: paid ? 'paid' : 'open',
    created: periodStart,
    period_start: periodStart,
    period_end: created,
    due_date: null,
    hosted_invoice_url: `https://invoice.stripe.com/i/acct_1Billops/test_${invoiceId}`,
    lines: {
      object: 'list',
      data: [
        {
          id: stripeId('il'),
          object: 'line_item',
          amount: subject.amountMinor,
          currency,
          description: `billops ${subject.tier} (monthly)`,
          period: { start: periodStart, end: created },
        },
      ],
    },
    status_transitions: { finalized_at: periodStart, paid_at: paid ? created : null },
  });
  const charge = {
    id: chargeId,
    object: 'charge',
    amount: subject.amountMinor,
    amount_refunded: subject.amountMinor,
    currency,
    customer,
    invoice: invoiceId,
    metadata,
    paid: true,
    refunded: true,
    status: 'succeeded',
    created: created - DAY,
  };
  const objects: Record<SampleStripeEvent, { object: Record<string, unknown>; previous?: object }> = {
    'invoice.payment_failed': { object: invoice(false) },
    'invoice.paid': { object: invoice(true) },
    'charge.refunded': { object: charge, previous: { amount_refunded: 0, refunded: false } },
    'charge.dispute.created': {
      object: {
        id: stripeId('dp'),
        object: 'dispute',
        amount: subject.amountMinor,
        currency,
        charge: { ...charge, amount_refunded: 0, refunded: false },
        metadata,
        reason: 'fraudulent',
        status: 'needs_response',
        created,
        evidence_details: { due_by: created + 7 * DAY, has_evidence: false },
      },
    },
    'customer.subscription.updated': {
      object: {
        id: stripeId('sub'),
        object: 'subscription',
        customer,
        status: 'active',
        metadata: { ...metadata, tier: subject.tier },
        latest_invoice: invoiceId,
        current_period_start: created,
        current_period_end: created + 30 * DAY,
        items: {
          object: 'list',
          data: [
            {
              id: stripeId('si'),
              object: 'subscription_item',
              price: {
                id: stripeId('price'),
                object: 'price',
                currency,
                unit_amount: subject.amountMinor,
                lookup_key: subject.tier,
                metadata: { tier: subject.tier },
                recurring: { interval: 'month', interval_count: 1 },
              },
            },
          ],
        },
      },
      previous: { status: 'incomplete' },
    },
  };
  const { object, previous } = objects[type];
  const event = {
    id,
    object: 'event',
    api_version: SAMPLE_STRIPE_API_VERSION,
    created,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object, ...(previous ? { previous_attributes: previous } : {}) },
  };
  return { body: JSON.stringify(event, null, 2), id, processorInvoiceId: invoiceId };
}

/** A Paystack event of `type` about the subject, as Paystack sends it (compact JSON, amounts in kobo). */
export function paystackSampleEvent(type: SamplePaystackEvent, subject: SampleSubject): SampleEvent {
  const reference = subject.processorInvoiceId ?? paystackReference();
  const now = new Date().toISOString();
  const customer = {
    id: Number(randomBytes(3).readUIntBE(0, 3)),
    email: subject.email,
    customer_code: subject.customerId ?? `CUS_${randomBytes(8).toString('hex').slice(0, 15)}`,
    metadata: { tenant_id: subject.tenantId },
  };
  const transaction = (status: 'failed' | 'success') => ({
    id: Number(randomBytes(4).readUInt32BE(0)),
    domain: 'test',
    status,
    reference,
    amount: subject.amountMinor,
    currency: subject.currency.toUpperCase(),
    channel: 'card',
    gateway_response: status === 'success' ? 'Approved' : 'Declined',
    message: status === 'success' ? null : 'Insufficient Funds',
    metadata: { tenant_id: subject.tenantId },
    customer,
    authorization: { channel: 'card', card_type: 'visa', last4: '4081', reusable: true },
    created_at: now,
    paid_at: status === 'success' ? now : null,
  });
  const refundId = Number(randomBytes(4).readUInt32BE(0));
  const data: Record<SamplePaystackEvent, Record<string, unknown>> = {
    'charge.failed': transaction('failed'),
    'charge.success': transaction('success'),
    'refund.processed': {
      id: refundId,
      status: 'processed',
      transaction_reference: reference,
      amount: subject.amountMinor,
      currency: subject.currency.toUpperCase(),
      refund_reference: `RF_${randomBytes(6).toString('hex')}`,
      merchant_note: 'Refund requested by the customer',
      customer,
      metadata: { tenant_id: subject.tenantId },
      refunded_at: now,
    },
  };
  return {
    body: JSON.stringify({ event: type, data: data[type] }),
    // The key the ingress gives it: the reference, else (a refund) the object's id.
    id: `${type}:${type === 'refund.processed' ? refundId : reference}`,
    processorInvoiceId: reference,
  };
}
