// Seed 004 "For missed webhooks": the events Stripe lists and the transactions Paystack verifies that our endpoint
// never stored, each applied once through the ingress's own claim → act path, under the key its delivery would carry.
import { ApplicationFailure } from '@temporalio/common';
import Stripe from 'stripe';
import { z } from 'zod';
import { MalformedEventError, type VerifiedEvent, type WebhookProvider } from '../domain/paymentEvents';
import { interpretStripeError, stripeFailure, type StripeGateway } from '../drivers/stripe';
import type { PaystackGateway } from '../drivers/paystack';
import type { ActionContext } from './act';
import { processEvent } from './process';
import { readPaystackEvent } from './read/paystack';
import { readStripeEvent } from './read/stripe';
import type { ReplayOutcome } from './replay';

/** One event the incident acted on, or tried to. */
export interface HandledEvent {
  provider: WebhookProvider;
  eventKey: string;
  eventType: string;
  outcome: ReplayOutcome | 'duplicate';
  tenantId?: string;
  workflowId?: string;
  reason?: string;
  attempts?: number;
  /** A payment the event confirmed, when it was acted on: for the customer's confirmation. */
  payment?: ConfirmedPayment;
}

export interface ConfirmedPayment {
  reference: string;
  amountMinor: number;
  currency: string;
}

export interface ReconcileResult {
  processor: 'stripe' | 'paystack';
  /** False when the processor has no credentials: nothing was asked. */
  configured: boolean;
  /** Events (Stripe) or transactions (Paystack) the provider was asked about. */
  checked: number;
  /** Missed by our webhook endpoint and applied now. */
  applied: HandledEvent[];
  /** Missed, and acting on them failed: stored as failed, so the retry rounds take them again. */
  failed: HandledEvent[];
  /** Paystack: our pending transactions the provider still reports as not successful. */
  notSuccessful: { reference: string; status: string }[];
}

/** The Stripe events billops acts on or keeps for an incident (at most 20, Stripe's limit for `types`). */
export const STRIPE_EVENT_TYPES = [
  'invoice.payment_failed',
  'invoice.paid',
  'invoice.payment_succeeded',
  'charge.refunded',
  'charge.refund.updated',
  'refund.created',
  'refund.updated',
  'refund.failed',
  'charge.dispute.created',
  'charge.dispute.updated',
  'charge.dispute.closed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'customer.subscription.paused',
  'customer.subscription.resumed',
] as const;

/** A page of GET /transaction as far as a missed charge.success needs it. */
const paystackListedSchema = z.object({
  reference: z.string().min(1),
  status: z.string(),
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  paid_at: z.string().nullish(),
});
const PAYSTACK_PAGE_SIZE = 100;
/** Far beyond a window's successes at 100 a page: a provider that keeps answering full pages is not followed. */
const PAYSTACK_MAX_PAGES = 100;
const STRIPE_MAX_EVENTS = 10_000;

/** Stores the event under its key and acts on it exactly as a delivery would: a stored, finished one is a duplicate. */
async function applyOnce(
  ctx: ActionContext,
  event: VerifiedEvent,
  body: unknown,
  rawBody: Buffer,
): Promise<HandledEvent> {
  const base = { provider: event.provider, eventKey: event.key, eventType: event.type };
  const processed = await processEvent(ctx, event, rawBody);
  switch (processed.kind) {
    case 'duplicate':
      return { ...base, outcome: 'duplicate', reason: processed.status };
    case 'in_progress':
      return { ...base, outcome: 'skipped', reason: 'a delivery is acting on it right now' };
    case 'failed':
      return { ...base, outcome: 'failed', reason: processed.reason, attempts: processed.attempt };
    case 'done': {
      const { done } = processed;
      const payment = done.status === 'processed' ? paymentIn(event.provider, event.type, body) : undefined;
      return {
        ...base,
        outcome: done.status,
        tenantId: done.tenantId,
        workflowId: done.workflowId,
        reason: done.note,
        attempts: processed.attempt,
        ...(payment ? { payment } : {}),
      };
    }
  }
}

/** Our keys among `keys` that webhook_events already holds for the provider. */
async function storedKeys(
  ctx: ActionContext,
  provider: WebhookProvider,
  keys: string[],
): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const { rows } = await ctx.pool.query<{ event_key: string }>(
    'SELECT event_key FROM webhook_events WHERE provider = $1 AND event_key = ANY($2::text[])',
    [provider, keys],
  );
  return new Set(rows.map((r) => r.event_key));
}

/** A missed event read by the ingress's parser and applied once; one the parser refuses is stored as failed, for a person. */
async function applyParsed(
  ctx: ActionContext,
  identity: Omit<VerifiedEvent, 'intent'>,
  body: unknown,
  read: (body: unknown, rawBody: Buffer) => VerifiedEvent,
): Promise<HandledEvent> {
  const rawBody = Buffer.from(JSON.stringify(body), 'utf8');
  let event: VerifiedEvent;
  try {
    event = { ...read(body, rawBody), key: identity.key };
  } catch (err) {
    if (!(err instanceof MalformedEventError)) throw err;
    const unreadable: VerifiedEvent = { ...identity, intent: { kind: 'ignore', reason: err.message } };
    await processEvent(ctx, unreadable, rawBody, { unreadable: err.message });
    return {
      provider: identity.provider,
      eventKey: identity.key,
      eventType: identity.type,
      outcome: 'failed',
      reason: err.message,
    };
  }
  return applyOnce(ctx, event, body, rawBody);
}

/** Seed 004 "For missed webhooks", Stripe: events since `from` our endpoint never stored, applied once now. */
export async function reconcileStripeEvents(
  ctx: ActionContext,
  stripe: StripeGateway,
  from: string,
): Promise<ReconcileResult> {
  const result = emptyReconcileResult('stripe', true);
  const since = Math.floor(Date.parse(from) / 1000);
  const wanted = new Set<string>(STRIPE_EVENT_TYPES);
  const events: { id: string; type: string; body: unknown }[] = [];
  try {
    for await (const event of stripe.sdk.events.list({
      created: { gte: since },
      types: [...STRIPE_EVENT_TYPES],
      limit: 100,
    })) {
      if (++result.checked > STRIPE_MAX_EVENTS) break;
      // Stripe filters by time and type already; an answer outside them (a mock's fixture) is not ours to act on.
      if (event.created < since || !wanted.has(event.type)) continue;
      events.push({ id: event.id, type: event.type, body: event });
    }
  } catch (error) {
    throw stripeReadFailure(error);
  }
  const known = await storedKeys(
    ctx,
    'stripe',
    events.map((e) => e.id),
  );
  for (const found of events) {
    if (known.has(found.id)) continue;
    sortInto(
      result,
      await applyParsed(ctx, { provider: 'stripe', key: found.id, type: found.type }, found.body, (body) =>
        readStripeEvent(body),
      ),
    );
  }
  return result;
}

/**
 * Seed 004 "For missed webhooks", Paystack: our pending transactions since `from` verified one by one, and the
 * successes Paystack lists for the window; a success with no stored charge.success is applied once, under the key
 * the real delivery would have had, so that delivery arriving later is a duplicate.
 */
export async function reconcilePaystackTransactions(
  ctx: ActionContext,
  paystack: PaystackGateway,
  from: string,
): Promise<ReconcileResult> {
  const result = emptyReconcileResult('paystack', true);
  const missed: { reference: string; data: Record<string, unknown> }[] = [];

  // 1. The runbook's verify, for every payment of ours still pending.
  const { rows: pending } = await ctx.pool.query<{
    tenant_id: string;
    invoice_id: string | null;
    reference: string;
    amount_minor: string;
    currency: string;
  }>(
    `SELECT tenant_id, invoice_id, reference, amount_minor, currency FROM payment_transactions
      WHERE processor = 'paystack' AND status = 'pending' AND created_at >= $1
      ORDER BY created_at, id`,
    [from],
  );
  for (const tx of pending) {
    result.checked++;
    const found = await paystack.verifyTransaction(tx.reference);
    if (!found || found.status !== 'success') {
      result.notSuccessful.push({
        reference: tx.reference,
        status: found?.status ?? 'unknown to Paystack',
      });
      continue;
    }
    if (found.amountMinor !== Number(tx.amount_minor) || found.currency !== tx.currency) {
      result.notSuccessful.push({
        reference: tx.reference,
        status: `success, but Paystack reports ${found.amountMinor} ${found.currency} against our ${tx.amount_minor} ${tx.currency}`,
      });
      continue;
    }
    // Paystack's verify answer, with the tenant and invoice our own row records for the reference.
    missed.push({
      reference: tx.reference,
      data: {
        reference: found.reference,
        status: found.status,
        amount: found.amountMinor,
        currency: found.currency,
        gateway_response: found.gatewayResponse,
        paid_at: (found.paidAt ?? new Date()).toISOString(),
        metadata: { tenant_id: tx.tenant_id, ...(tx.invoice_id ? { invoice_id: tx.invoice_id } : {}) },
      },
    });
  }

  // 2. Successes in the window that no row of ours is pending for (a hosted checkout, a charge we never recorded).
  const seen = new Set(pending.map((t) => t.reference));
  for (let page = 1; page <= PAYSTACK_MAX_PAGES; page++) {
    const query = new URLSearchParams({
      status: 'success',
      from,
      to: new Date().toISOString(),
      perPage: String(PAYSTACK_PAGE_SIZE),
      page: String(page),
    });
    const answer = await paystack.request('GET', `/transaction?${query.toString()}`);
    if (!answer.envelope.status || answer.httpStatus >= 300) {
      throw ApplicationFailure.nonRetryable(
        `Paystack refused GET /transaction (HTTP ${answer.httpStatus}): ${answer.envelope.message}`,
        'ProcessorRejected',
      );
    }
    const data = Array.isArray(answer.envelope.data) ? answer.envelope.data : [];
    for (const item of data) {
      const listed = paystackListedSchema.safeParse(item);
      if (!listed.success || listed.data.status !== 'success' || seen.has(listed.data.reference)) continue;
      seen.add(listed.data.reference);
      result.checked++;
      missed.push({ reference: listed.data.reference, data: item as Record<string, unknown> });
    }
    if (data.length < PAYSTACK_PAGE_SIZE) break;
  }

  const known = await storedKeys(
    ctx,
    'paystack',
    missed.map((m) => `charge.success:${m.reference}`),
  );
  for (const m of missed) {
    if (known.has(`charge.success:${m.reference}`)) continue;
    const key = `charge.success:${m.reference}`;
    const body = { event: 'charge.success', data: m.data };
    sortInto(
      result,
      await applyParsed(ctx, { provider: 'paystack', key, type: 'charge.success' }, body, (b, raw) =>
        readPaystackEvent(b, raw),
      ),
    );
  }
  return result;
}

const stripePaidSchema = z.object({
  data: z.object({
    object: z.object({
      id: z.string().min(1),
      amount_paid: z.number().int().positive(),
      currency: z.string().regex(/^[A-Za-z]{3}$/),
    }),
  }),
});
const paystackPaidSchema = z.object({
  data: z.object({
    reference: z.string().min(1),
    amount: z.number().int().positive(),
    currency: z
      .string()
      .regex(/^[A-Za-z]{3}$/)
      .nullish(),
  }),
});

/** The payment a success event reports (amount in minor units), or undefined for any other event. */
export function paymentIn(
  provider: WebhookProvider,
  type: string,
  payload: unknown,
): ConfirmedPayment | undefined {
  if (provider === 'stripe' && (type === 'invoice.paid' || type === 'invoice.payment_succeeded')) {
    const parsed = stripePaidSchema.safeParse(payload);
    if (!parsed.success) return undefined;
    const invoice = parsed.data.data.object;
    return {
      reference: invoice.id,
      amountMinor: invoice.amount_paid,
      currency: invoice.currency.toUpperCase(),
    };
  }
  if (provider === 'paystack' && type === 'charge.success') {
    const parsed = paystackPaidSchema.safeParse(payload);
    if (!parsed.success) return undefined;
    const charge = parsed.data.data;
    // Paystack's default currency, as the ingress reads it.
    return {
      reference: charge.reference,
      amountMinor: charge.amount,
      currency: (charge.currency ?? 'NGN').toUpperCase(),
    };
  }
  return undefined;
}

/** A result with nothing checked yet; unconfigured, nothing will be. */
export function emptyReconcileResult(processor: 'stripe' | 'paystack', configured: boolean): ReconcileResult {
  return { processor, configured, checked: 0, applied: [], failed: [], notSuccessful: [] };
}

function sortInto(result: ReconcileResult, handled: HandledEvent): void {
  if (handled.outcome === 'failed') result.failed.push(handled);
  else if (handled.outcome !== 'duplicate' && handled.outcome !== 'skipped') result.applied.push(handled);
}

/** The payment activities' failure types for a Stripe read: a retry fixes an outage, not a bad key. */
function stripeReadFailure(error: unknown): unknown {
  if (!(error instanceof Stripe.errors.StripeError)) return error;
  const meaning = interpretStripeError(error);
  return stripeFailure(
    meaning.kind === 'declined' ? { kind: 'rejected', message: meaning.message } : meaning,
  );
}
