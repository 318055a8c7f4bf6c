// Reads a verified Paystack event (validated with zod at this edge) into what billops should do about it; amounts stay in kobo.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  MalformedEventError,
  type TenantReference,
  type VerifiedEvent,
  type WebhookIntent,
} from '../../domain/paymentEvents';
import {
  describeIssues,
  eventKeyText,
  incidentCategory,
  invoiceIdIn,
  MAX_EVENT_KEY_LENGTH,
  pickTenantId,
} from './fields';

/** Paystack's default currency: an event that names none is in naira, its amount in kobo. */
const DEFAULT_CURRENCY = 'NGN';

/** Paystack sends metadata as an object, a JSON string, or an empty string; anything unreadable reads as null. */
export const paystackMetadata = z
  .preprocess((value) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return null;
    }
  }, z.record(z.string(), z.unknown()).nullish())
  .catch(null);
const customer = z.object({ customer_code: z.string().nullish(), metadata: paystackMetadata }).nullish();
const currency = z.string().regex(/^[A-Za-z]{3}$/, 'must be a three-letter currency code');
const timestamp = z.string().nullish();

const eventSchema = z.object({ event: eventKeyText, data: z.record(z.string(), z.unknown()) });

const chargeSchema = z.object({
  reference: z.string().min(1),
  amount: z.number().int().nonnegative(),
  currency: currency.nullish(),
  metadata: paystackMetadata,
  customer,
  paid_at: timestamp,
  paidAt: timestamp,
  created_at: timestamp,
  createdAt: timestamp,
});

/** A subscription invoice (invoice.payment_failed): keyed by its invoice code. */
const invoiceSchema = z.object({
  invoice_code: z.string().min(1),
  amount: z.number().int().nonnegative(),
  currency: currency.nullish(),
  metadata: paystackMetadata,
  customer,
  subscription: z.object({ metadata: paystackMetadata }).nullish(),
  transaction: z.object({ reference: z.string().nullish() }).nullish(),
  period_start: timestamp,
  period_end: timestamp,
  created_at: timestamp,
});

const incidentObjectSchema = z.object({ metadata: paystackMetadata, customer });

export function readPaystackEvent(body: unknown, rawBody: Buffer): VerifiedEvent {
  const parsed = eventSchema.safeParse(body);
  if (!parsed.success) throw new MalformedEventError(`not a Paystack event: ${describeIssues(parsed.error)}`);
  const { event: type, data } = parsed.data;
  return { provider: 'paystack', key: eventKey(type, data, rawBody), type, intent: intentOf(type, data) };
}

/**
 * The key and event name of a body readPaystackEvent refused, when it has an event name: a signed event whose content
 * cannot be read is still stored under its key, so a second delivery of it is a duplicate.
 */
export function identifyPaystackEvent(
  body: unknown,
  rawBody: Buffer,
): { key: string; type: string } | undefined {
  const parsed = z.object({ event: eventKeyText, data: z.unknown() }).safeParse(body);
  if (!parsed.success) return undefined;
  const { event: type, data } = parsed.data;
  const fields = typeof data === 'object' && data !== null && !Array.isArray(data) ? data : {};
  return { key: eventKey(type, fields as Record<string, unknown>, rawBody), type };
}

/**
 * Paystack has no event id: the event name plus the object's reference (or id) identifies a delivery's content; a
 * reference too long for a key gives way to the digest of the body.
 */
function eventKey(type: string, data: Record<string, unknown>, rawBody: Buffer): string {
  const id = [data.reference, data.id, data.invoice_code].find(
    (v): v is string | number =>
      (typeof v === 'string' && v.trim() !== '' && v.length <= MAX_EVENT_KEY_LENGTH - type.length - 1) ||
      typeof v === 'number',
  );
  return `${type}:${id ?? `sha256-${createHash('sha256').update(rawBody).digest('hex')}`}`;
}

function intentOf(type: string, data: Record<string, unknown>): WebhookIntent {
  switch (type) {
    case 'charge.failed': {
      const charge = parseObject(chargeSchema, data, type);
      const at = when(charge.created_at ?? charge.createdAt);
      return {
        kind: 'paymentFailed',
        tenant: tenantOf(charge),
        invoice: {
          processorInvoiceId: charge.reference,
          ourInvoiceId: invoiceIdIn(charge.metadata),
          transactionReference: charge.reference,
          amountMinor: charge.amount,
          currency: (charge.currency ?? DEFAULT_CURRENCY).toUpperCase(),
          periodStart: at,
          // A one-off charge bills no period: one second keeps our invoice row valid (end after start).
          periodEnd: new Date(at.getTime() + 1000),
        },
      };
    }
    case 'invoice.payment_failed': {
      const invoice = parseObject(invoiceSchema, data, type);
      const start = when(invoice.period_start ?? invoice.created_at);
      const end = invoice.period_end ? when(invoice.period_end) : undefined;
      return {
        kind: 'paymentFailed',
        tenant: tenantOf(invoice, invoice.subscription?.metadata),
        invoice: {
          processorInvoiceId: invoice.invoice_code,
          ourInvoiceId: invoiceIdIn(invoice.metadata),
          transactionReference: invoice.transaction?.reference ?? undefined,
          amountMinor: invoice.amount,
          currency: (invoice.currency ?? DEFAULT_CURRENCY).toUpperCase(),
          periodStart: start,
          periodEnd: end && end > start ? end : new Date(start.getTime() + 1000),
        },
      };
    }
    case 'charge.success': {
      const charge = parseObject(chargeSchema, data, type);
      return {
        kind: 'paymentSucceeded',
        tenant: tenantOf(charge),
        invoice: {
          processorInvoiceId: charge.reference,
          ourInvoiceId: invoiceIdIn(charge.metadata),
          transactionReference: charge.reference,
          paidAt: when(charge.paid_at ?? charge.paidAt),
          reference: `Paystack ${charge.reference}`,
          paid: {
            amountMinor: charge.amount,
            currency: (charge.currency ?? DEFAULT_CURRENCY).toUpperCase(),
            counts: 'payment',
          },
        },
      };
    }
  }
  const category = incidentCategory('paystack', type);
  if (category) {
    const found = incidentObjectSchema.safeParse(data);
    return { kind: 'storeForIncident', category, tenant: found.success ? tenantOf(found.data) : {} };
  }
  return { kind: 'ignore', reason: `billops does not act on Paystack ${type} events` };
}

function parseObject<T>(schema: z.ZodType<T, unknown>, data: unknown, type: string): T {
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new MalformedEventError(`${type}: ${describeIssues(parsed.error, 'data')}`);
  return parsed.data;
}

type WithTenant = z.infer<typeof incidentObjectSchema>;

/** DESIGN.md "Tenant identity": metadata.tenant_id (object, subscription, customer), else the customer code. */
function tenantOf(
  object: WithTenant,
  subscriptionMetadata?: Record<string, unknown> | null,
): TenantReference {
  return {
    metadataTenantId:
      pickTenantId(object.metadata) ??
      pickTenantId(subscriptionMetadata) ??
      pickTenantId(object.customer?.metadata),
    customerId: object.customer?.customer_code ?? undefined,
  };
}

function when(value: string | null | undefined): Date {
  const ms = value ? Date.parse(value) : NaN;
  return Number.isNaN(ms) ? new Date() : new Date(ms);
}
