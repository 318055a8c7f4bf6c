// Reads a verified Stripe event (validated with zod at this edge) into what billops should do about it.
import { z } from 'zod';
import {
  MalformedEventError,
  type FailedProcessorInvoice,
  type TenantReference,
  type VerifiedEvent,
  type WebhookIntent,
} from '../../domain/paymentEvents';
import { describeIssues, eventKeyText, incidentCategory, pickTenantId, seconds } from './fields';

const metadata = z.record(z.string(), z.unknown()).nullish();
/** A Stripe reference that may or may not be expanded into its object. */
const expandable = z.union([z.string(), z.object({ id: z.string(), metadata }).passthrough()]).nullish();
type Expandable = z.infer<typeof expandable>;

/** What names a stored event: its id (the key of its row, so short enough for the unique index) and its type. */
const identitySchema = z.object({ id: eventKeyText, type: z.string().min(1) });

const eventSchema = identitySchema.extend({
  created: z.number().int().optional(),
  data: z.object({ object: z.record(z.string(), z.unknown()) }),
});

const invoiceSchema = z.object({
  id: z.string().min(1),
  customer: expandable,
  metadata,
  subscription: expandable.optional(),
  // Before API version 2025-03-31 the subscription's metadata sat here; since then under parent.
  subscription_details: z.object({ metadata }).nullish(),
  parent: z
    .object({ subscription_details: z.object({ metadata, subscription: expandable }).nullish() })
    .nullish(),
  amount_due: z.number().int().nonnegative(),
  currency: z.string().regex(/^[A-Za-z]{3}$/, 'must be a three-letter currency code'),
  created: z.number().int().optional(),
  period_start: z.number().int().optional(),
  period_end: z.number().int().optional(),
  lines: z
    .object({
      data: z.array(
        z.object({ period: z.object({ start: z.number().int(), end: z.number().int() }).nullish() }),
      ),
    })
    .optional(),
  due_date: z.number().int().nullish(),
  hosted_invoice_url: z.string().nullish(),
  status_transitions: z.object({ paid_at: z.number().int().nullish() }).nullish(),
});
type StripeInvoice = z.infer<typeof invoiceSchema>;
/** A paid invoice is only looked up, so its amount is not needed. */
const paidInvoiceSchema = invoiceSchema.partial({ amount_due: true, currency: true });

/** Refunds, disputes and subscriptions: only their tenant is read now; the incident workflows read the rest. */
const incidentObjectSchema = z.object({
  metadata,
  customer: expandable.optional(),
  charge: z.union([z.string(), z.object({ metadata, customer: expandable }).passthrough()]).nullish(),
});

export function readStripeEvent(body: unknown): VerifiedEvent {
  const parsed = eventSchema.safeParse(body);
  if (!parsed.success) throw new MalformedEventError(`not a Stripe event: ${describeIssues(parsed.error)}`);
  const event = parsed.data;
  return { provider: 'stripe', key: event.id, type: event.type, intent: intentOf(event) };
}

/**
 * The id and type of a body readStripeEvent refused, when it has them: a signed event whose content cannot be read is
 * still stored under its key, so a second delivery of it is a duplicate.
 */
export function identifyStripeEvent(body: unknown): { key: string; type: string } | undefined {
  const parsed = identitySchema.safeParse(body);
  return parsed.success ? { key: parsed.data.id, type: parsed.data.type } : undefined;
}

function intentOf(event: z.infer<typeof eventSchema>): WebhookIntent {
  const object = event.data.object;
  const eventTime = event.created ?? Math.floor(Date.now() / 1000);
  switch (event.type) {
    case 'invoice.payment_failed': {
      const invoice = parseObject(invoiceSchema, object, event.type);
      return {
        kind: 'paymentFailed',
        tenant: invoiceTenant(invoice),
        invoice: failedInvoice(invoice, eventTime),
      };
    }
    case 'invoice.paid':
    case 'invoice.payment_succeeded': {
      const invoice = parseObject(paidInvoiceSchema, object, event.type);
      return {
        kind: 'paymentSucceeded',
        tenant: invoiceTenant(invoice),
        invoice: {
          processorInvoiceId: invoice.id,
          paidAt: seconds(invoice.status_transitions?.paid_at ?? eventTime),
          reference: `Stripe ${event.type} ${event.id}`,
        },
      };
    }
  }
  const category = incidentCategory('stripe', event.type);
  if (category) {
    const found = incidentObjectSchema.safeParse(object);
    return { kind: 'storeForIncident', category, tenant: found.success ? incidentTenant(found.data) : {} };
  }
  return { kind: 'ignore', reason: `billops does not act on Stripe ${event.type} events` };
}

function parseObject<T>(schema: z.ZodType<T, unknown>, object: unknown, type: string): T {
  const parsed = schema.safeParse(object);
  if (!parsed.success) {
    throw new MalformedEventError(
      `${type} without a usable invoice: ${describeIssues(parsed.error, 'data.object')}`,
    );
  }
  return parsed.data;
}

const idOf = (ref: Expandable) => (typeof ref === 'string' ? ref : (ref?.id ?? undefined));
const metadataOf = (ref: Expandable) => (typeof ref === 'object' && ref !== null ? ref.metadata : undefined);

/** DESIGN.md "Tenant identity": metadata on the invoice, its subscription or its customer, else the customer id. */
function invoiceTenant(invoice: Omit<StripeInvoice, 'amount_due' | 'currency'>): TenantReference {
  const subscription = invoice.parent?.subscription_details;
  return {
    metadataTenantId:
      pickTenantId(invoice.metadata) ??
      pickTenantId(subscription?.metadata) ??
      pickTenantId(metadataOf(subscription?.subscription)) ??
      pickTenantId(invoice.subscription_details?.metadata) ??
      pickTenantId(metadataOf(invoice.subscription)) ??
      pickTenantId(metadataOf(invoice.customer)),
    customerId: idOf(invoice.customer),
  };
}

function incidentTenant(object: z.infer<typeof incidentObjectSchema>): TenantReference {
  const charge = typeof object.charge === 'object' && object.charge !== null ? object.charge : undefined;
  return {
    metadataTenantId:
      pickTenantId(object.metadata) ??
      pickTenantId(metadataOf(object.customer)) ??
      pickTenantId(charge?.metadata) ??
      pickTenantId(metadataOf(charge?.customer)),
    customerId: idOf(object.customer) ?? idOf(charge?.customer),
  };
}

function failedInvoice(invoice: StripeInvoice, eventTime: number): FailedProcessorInvoice {
  const period = invoicePeriod(invoice, eventTime);
  return {
    processorInvoiceId: invoice.id,
    amountMinor: invoice.amount_due,
    currency: invoice.currency.toUpperCase(),
    periodStart: seconds(period.start),
    periodEnd: seconds(period.end),
    dueAt: invoice.due_date ? seconds(invoice.due_date) : undefined,
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? undefined,
  };
}

/** The service period the invoice bills: its lines' periods, else its own, never empty (our invoices require end > start). */
function invoicePeriod(invoice: StripeInvoice, eventTime: number): { start: number; end: number } {
  const lines = (invoice.lines?.data ?? []).flatMap((line) => (line.period ? [line.period] : []));
  if (lines.length > 0) {
    const start = Math.min(...lines.map((p) => p.start));
    const end = Math.max(...lines.map((p) => p.end));
    if (end > start) return { start, end };
  }
  const { period_start: start, period_end: end } = invoice;
  if (start !== undefined && end !== undefined && end > start) return { start, end };
  // A first subscription invoice has a zero-length period: one second keeps the row valid and honest about it.
  const at = start ?? invoice.created ?? eventTime;
  return { start: at, end: at + 1 };
}
