// The processors' side of `billops reconcile`: every Stripe charge or Paystack transaction created in a time range, read through their APIs and validated with zod.
import { ApplicationFailure } from '@temporalio/common';
import Stripe from 'stripe';
import { z } from 'zod';
import type { PaymentGateways } from '../drivers/gateways';
import type { PaystackGateway } from '../drivers/paystack';
import { interpretStripeError, stripeFailure, type StripeGateway } from '../drivers/stripe';
import { invoiceIdIn } from './read/fields';
import { paystackMetadata } from './read/paystack';
import { describeZodIssues } from '../domain/vocabulary';

export const RECONCILE_PROCESSORS = ['stripe', 'paystack'] as const;
export type ReconcileProcessor = (typeof RECONCILE_PROCESSORS)[number];

/** Whether money moved, in the words both sides can be compared in: our statuses and the processors' map onto it. */
export type MoneyState = 'collected' | 'refunded' | 'partially_refunded' | 'not_collected';

/** One transaction as the processor reports it; amounts in minor units (cents, kobo). */
export interface ProviderTransaction {
  processor: ReconcileProcessor;
  /** What an operator searches the processor's dashboard for: the charge id (ch_...) or the Paystack reference. */
  id: string;
  /** Values our payment_transactions.reference may hold for it, most specific first. */
  references: string[];
  /** Our invoices.id, when the transaction carries it in metadata (billops' own Paystack charges do). */
  ourInvoiceId?: string;
  /** The processor's invoice (in_...) or, for Paystack, the reference an event-recorded invoice is keyed by. */
  processorInvoiceId?: string;
  /** The Stripe payment intent, through which the invoice it paid can be found. */
  paymentIntentId?: string;
  amountMinor: number;
  /** ISO 4217, upper case. */
  currency: string;
  /** As the processor says it: succeeded, failed, abandoned, reversed, ... */
  status: string;
  moneyState: MoneyState;
  /** ISO-8601; unknown when the transaction was looked up by reference rather than listed. */
  createdAt?: string;
}

/** Read access to one processor's transactions: what reconciliation needs, nothing that moves money. */
export interface ProviderLedger {
  processor: ReconcileProcessor;
  /** Every transaction created in [from, to), all pages. */
  listTransactions(from: Date, to: Date): Promise<ProviderTransaction[]>;
  /** The processor's invoice a transaction paid, when only a further lookup can tell. */
  linkedInvoice?(transaction: ProviderTransaction): Promise<string | undefined>;
  /** One transaction by our reference, whatever day it was created; null when the processor does not know it. */
  findByReference?(reference: string): Promise<ProviderTransaction | null>;
}

export type ProviderLedgers = Partial<Record<ReconcileProcessor, ProviderLedger>>;

// ---------------------------------------------------------------------------------------------------------------
// Stripe: charges, with the SDK's auto-pagination
// ---------------------------------------------------------------------------------------------------------------

const expandableId = z.union([z.string(), z.object({ id: z.string() }).passthrough()]).nullish();
const stripeChargeSchema = z.object({
  id: z.string().min(1),
  amount: z.number().int().nonnegative(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  status: z.string().min(1),
  refunded: z.boolean().nullish(),
  amount_refunded: z.number().int().nonnegative().nullish(),
  created: z.number().int(),
  payment_intent: expandableId,
  // Gone from charges since API version 2025-03-31; read when an older account version still sends it.
  invoice: expandableId.optional(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});
type StripeCharge = z.infer<typeof stripeChargeSchema>;

/** Reads only: repeating one is harmless, so the SDK may retry a dropped connection itself (payments may not). */
const READ_OPTIONS = { maxNetworkRetries: 2 } as const;

/** Stripe's charges through the one configured Stripe client (drivers/stripe.ts). */
export function stripeLedger(gateway: StripeGateway): ProviderLedger {
  const stripe = gateway.sdk;
  return {
    processor: 'stripe',
    async listTransactions(from, to) {
      const found: ProviderTransaction[] = [];
      const created = { gte: epochSeconds(from), lt: epochSeconds(to) };
      try {
        for await (const charge of stripe.charges.list({ created, limit: 100 }, READ_OPTIONS)) {
          found.push(fromStripeCharge(readStripeCharge(charge)));
        }
      } catch (error) {
        throw stripeReadFailure(error);
      }
      return found;
    },

    async linkedInvoice(transaction) {
      if (!transaction.paymentIntentId) return undefined;
      try {
        const payments = await stripe.invoicePayments.list(
          {
            payment: { type: 'payment_intent', payment_intent: transaction.paymentIntentId },
            limit: 1,
          },
          READ_OPTIONS,
        );
        const invoice = payments.data[0]?.invoice;
        return typeof invoice === 'string' ? invoice : (invoice?.id ?? undefined);
      } catch (error) {
        throw stripeReadFailure(error);
      }
    },
  };
}

function readStripeCharge(charge: unknown): StripeCharge {
  const parsed = stripeChargeSchema.safeParse(charge);
  if (!parsed.success) {
    const id = (charge as { id?: unknown } | null)?.id;
    throw ApplicationFailure.retryable(
      `Stripe listed a charge ${typeof id === 'string' ? id : ''} billops cannot read: ` +
        describeZodIssues(parsed.error.issues),
      'ProcessorResponseInvalid',
    );
  }
  return parsed.data;
}

const idOf = (ref: z.infer<typeof expandableId>) => (typeof ref === 'string' ? ref : (ref?.id ?? undefined));

function fromStripeCharge(charge: StripeCharge): ProviderTransaction {
  const paymentIntentId = idOf(charge.payment_intent);
  return {
    processor: 'stripe',
    id: charge.id,
    references: [charge.id, ...(paymentIntentId ? [paymentIntentId] : [])],
    ourInvoiceId: invoiceIdIn(charge.metadata),
    processorInvoiceId: idOf(charge.invoice),
    paymentIntentId,
    amountMinor: charge.amount,
    currency: charge.currency.toUpperCase(),
    status: charge.status,
    moneyState: stripeMoneyState(charge),
    createdAt: new Date(charge.created * 1000).toISOString(),
  };
}

function stripeMoneyState(charge: StripeCharge): MoneyState {
  if (charge.status !== 'succeeded') return 'not_collected';
  if (charge.refunded) return 'refunded';
  return (charge.amount_refunded ?? 0) > 0 ? 'partially_refunded' : 'collected';
}

/** The same failures, with the same types, as the payment activities: a retry fixes an outage, not a bad key. */
function stripeReadFailure(error: unknown): unknown {
  if (!(error instanceof Stripe.errors.StripeError)) return error;
  const meaning = interpretStripeError(error);
  return stripeFailure(
    meaning.kind === 'declined' ? { kind: 'rejected', message: meaning.message } : meaning,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Paystack: GET /transaction?from=&to=&perPage=&page=, and the runbook's verify by reference
// ---------------------------------------------------------------------------------------------------------------

const paystackTransactionSchema = z.object({
  reference: z.string().min(1),
  status: z.string().min(1),
  amount: z.number().int().nonnegative(),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  created_at: z.string().nullish(),
  createdAt: z.string().nullish(),
  metadata: paystackMetadata.optional(),
});
type PaystackListed = z.infer<typeof paystackTransactionSchema>;

const paystackPageSchema = z.object({
  status: z.boolean(),
  message: z.string(),
  data: z.array(z.unknown()).nullish(),
  meta: z
    .object({ page: z.coerce.number().int().optional(), pageCount: z.coerce.number().int().optional() })
    .passthrough()
    .nullish(),
});

/** Far beyond any day's volume at 100 per page: a provider that keeps answering full pages is stopped, not followed. */
const MAX_PAGES = 10_000;

/**
 * Paystack's transactions through the one configured Paystack client (drivers/paystack.ts): its verify, and its
 * request for the listing. `pageSize` is perPage (Paystack's default is 50).
 */
export function paystackLedger(gateway: PaystackGateway, pageSize = 100): ProviderLedger {
  // The gateway's own call: the same key handling, retryable and non-retryable failures as every Paystack request.
  async function page(from: Date, to: Date, number: number): Promise<z.infer<typeof paystackPageSchema>> {
    const what = `Paystack GET /transaction (page ${number})`;
    const query = new URLSearchParams({
      from: from.toISOString(),
      to: to.toISOString(),
      perPage: String(pageSize),
      page: String(number),
    });
    const answer = await gateway.request('GET', `/transaction?${query.toString()}`);
    const parsed = paystackPageSchema.safeParse(answer.envelope);
    if (!parsed.success || !parsed.data.status || answer.httpStatus >= 300) {
      throw ApplicationFailure.nonRetryable(
        `${what} answered HTTP ${answer.httpStatus}: ${answer.envelope.message}`,
        'ProcessorRejected',
      );
    }
    return parsed.data;
  }

  return {
    processor: 'paystack',
    async listTransactions(from, to) {
      const found = new Map<string, ProviderTransaction>();
      for (let number = 1; number <= MAX_PAGES; number++) {
        const answer = await page(from, to, number);
        const data = answer.data ?? [];
        for (const item of data) {
          const transaction = fromPaystack(readPaystackTransaction(item));
          // `to` may be inclusive at Paystack: a transaction at the next midnight belongs to the next day.
          const at = transaction.createdAt ? Date.parse(transaction.createdAt) : NaN;
          if (Number.isFinite(at) && (at < from.getTime() || at >= to.getTime())) continue;
          // Offset pages shift when a transaction arrives meanwhile; a reference seen twice is one transaction.
          found.set(transaction.id, transaction);
        }
        const pageCount = answer.meta?.pageCount;
        const last = pageCount !== undefined ? number >= pageCount : data.length < pageSize;
        if (last || data.length === 0) return [...found.values()];
      }
      throw ApplicationFailure.nonRetryable(
        `Paystack GET /transaction still had pages after ${MAX_PAGES}: refusing to read further`,
        'ProcessorResponseInvalid',
      );
    },

    async findByReference(reference) {
      const verified = await gateway.verifyTransaction(reference);
      if (!verified) return null;
      return {
        processor: 'paystack',
        id: verified.reference,
        references: [verified.reference],
        processorInvoiceId: verified.reference,
        amountMinor: verified.amountMinor,
        currency: verified.currency,
        status: verified.status,
        moneyState: paystackMoneyState(verified.status),
      };
    },
  };
}

function readPaystackTransaction(item: unknown): PaystackListed {
  const parsed = paystackTransactionSchema.safeParse(item);
  if (!parsed.success) {
    const reference = (item as { reference?: unknown } | null)?.reference;
    throw ApplicationFailure.retryable(
      `Paystack listed a transaction ${typeof reference === 'string' ? reference : ''} billops cannot read: ` +
        describeZodIssues(parsed.error.issues),
      'ProcessorResponseInvalid',
    );
  }
  return parsed.data;
}

function fromPaystack(tx: PaystackListed): ProviderTransaction {
  const created = tx.created_at ?? tx.createdAt;
  const at = created ? Date.parse(created) : NaN;
  return {
    processor: 'paystack',
    id: tx.reference,
    references: [tx.reference],
    ourInvoiceId: invoiceIdIn(tx.metadata),
    // A charge.failed webhook records our invoice under the charge's reference.
    processorInvoiceId: tx.reference,
    amountMinor: tx.amount,
    currency: tx.currency.toUpperCase(),
    status: tx.status,
    moneyState: paystackMoneyState(tx.status),
    createdAt: Number.isFinite(at) ? new Date(at).toISOString() : undefined,
  };
}

/** success collected the money, reversed gave it back; abandoned, failed, pending, send_otp, ... collected nothing. */
function paystackMoneyState(status: string): MoneyState {
  if (status === 'success') return 'collected';
  if (status === 'reversed') return 'refunded';
  return 'not_collected';
}

// ---------------------------------------------------------------------------------------------------------------

const epochSeconds = (at: Date) => Math.floor(at.getTime() / 1000);

/** A ledger for each processor a gateway is configured for (drivers/gateways.ts createGatewaysFromConfig). */
export function ledgersOf(gateways: PaymentGateways): ProviderLedgers {
  const ledgers: ProviderLedgers = {};
  if (gateways.stripe) ledgers.stripe = stripeLedger(gateways.stripe);
  if (gateways.paystack) ledgers.paystack = paystackLedger(gateways.paystack);
  return ledgers;
}

/** The variable that configures a processor, for "not configured" messages. */
export const LEDGER_SECRET_VARIABLE: Record<ReconcileProcessor, string> = {
  stripe: 'STRIPE_SECRET_KEY',
  paystack: 'PAYSTACK_SECRET_KEY',
};
