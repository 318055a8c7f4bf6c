// Over/underbilling disputes (seed 000 §4): the raw usage of the disputed period, a repricing with the correct rates,
// and the settlement: a credit (Stripe credit note or customer balance, Paystack refund, or an internal credit) for
// overbilling, an adjustment invoice for underbilling. Each settlement is written once under its idempotency key.
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import Stripe from 'stripe';
import { z } from 'zod';
import { inTransaction } from '../../db/pool';
import {
  describeLine,
  formatDecimal,
  parseDecimal,
  parsePricing,
  PricingError,
  priceUsage,
  type Pricing,
} from '../../domain/pricing';
import type { InvoiceStatus, RecalculatedInvoice } from '../invoicing';
import type { PaymentGateways } from '../payments';
import { interpretStripeError, stripeFailure } from '../../drivers/stripe';
import { spotCheckRollups } from '../usage/integrity';

type Processor = 'stripe' | 'paystack' | 'none';

export interface DisputeScope {
  tenantId: string;
  invoiceId: string;
  /** Only this meter is disputed; every meter of the invoice when left out. */
  meter?: string;
  /** The disputed period (ISO-8601), widened to whole hours. */
  from: string;
  to: string;
}

export interface DisputedInvoice {
  invoiceId: string;
  tenantId: string;
  status: InvoiceStatus;
  currency: string;
  periodStart: string;
  periodEnd: string;
  totalMinor: number;
  amountPaidMinor: number;
  processor: Processor;
  processorInvoiceId: string | null;
  /** Built from usage rollups (the invoicing recalculation applies to it). */
  usageInvoice: boolean;
}

/** One meter of the disputed period: what the raw events say, what the rollups say, what was invoiced. */
export interface DisputedMeterUsage {
  meter: string;
  rawQuantity: string;
  rawEvents: number;
  rollupQuantity: string;
  invoicedQuantity: string | null;
  invoicedAmountMinor: number | null;
}

export interface DisputeFacts {
  invoice: DisputedInvoice;
  tenantProcessor: Processor;
  /** The disputed period as read, in whole hours. */
  period: { from: string; to: string };
  usage: DisputedMeterUsage[];
  /** Hours of the invoice's period whose rollups differ from the raw events (recalculation must rebuild them first). */
  rollupMismatches: number;
}

export interface RepriceRequest {
  invoiceId: string;
  /** The meter to reprice with `rates`; with correctRateVersion, the rate's own meter. */
  meter?: string;
  /** The rates row (its id) that should have priced the meter. */
  correctRateVersion?: number;
  /** The correct per-unit prices in minor units (decimal text), by meter. */
  rates?: Record<string, string>;
}

export interface SettlementRequest {
  /** Workflow id + step: one credit or adjustment invoice per key, however often the activity runs. */
  idempotencyKey: string;
  workflowId: string;
  tenantId: string;
  /** The disputed invoice. */
  invoiceId: string;
  amountMinor: number;
  currency: string;
  reason: string;
  operator: string;
}

export type CreditMethod =
  | 'stripe_credit_note'
  | 'stripe_customer_balance'
  | 'paystack_refund'
  | 'internal_credit';

export interface DisputeCredit {
  creditId: string;
  kind: 'credit' | 'refund';
  method: CreditMethod;
  processor: 'stripe' | 'paystack' | 'manual';
  processorReference: string | null;
  amountMinor: number;
  currency: string;
}

export interface AdjustmentInvoice {
  creditId: string;
  /** The new invoice that bills the difference. */
  adjustmentInvoiceId: string;
  amountMinor: number;
  currency: string;
}

const DISPUTE_INVALID = 'DisputeInvalid';
const HOUR_MS = 3_600_000;

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, DISPUTE_INVALID);
}

function wholeHours(from: string, to: string): { from: string; to: string } {
  const [start, end] = [Date.parse(from), Date.parse(to)];
  if (Number.isNaN(start) || Number.isNaN(end))
    invalid(`from and to must be ISO-8601 times (${from}, ${to})`);
  if (end <= start) invalid(`the disputed period ${from}..${to} is empty`);
  return {
    from: new Date(Math.floor(start / HOUR_MS) * HOUR_MS).toISOString(),
    to: new Date(Math.ceil(end / HOUR_MS) * HOUR_MS).toISOString(),
  };
}

function assertAmount(amountMinor: number): void {
  if (!Number.isSafeInteger(amountMinor) || amountMinor <= 0) {
    invalid(`a settlement is a positive whole number of minor units, got ${amountMinor}`);
  }
}

/** Paystack's refund as much as billops reads of it. */
const paystackRefundSchema = z.object({
  id: z.union([z.number(), z.string()]).transform(String),
  amount: z.number().int().positive().optional(),
  merchant_note: z.string().nullish(),
});

interface CreditRow {
  id: string;
  kind: 'credit' | 'refund' | 'adjustment_invoice';
  amount_minor: number | string;
  currency: string;
  processor: 'stripe' | 'paystack' | 'manual' | null;
  processor_reference: string | null;
  invoice_id: string | null;
}

function toCredit(row: CreditRow): DisputeCredit {
  const reference = row.processor_reference;
  const method: CreditMethod =
    row.processor === 'paystack'
      ? 'paystack_refund'
      : row.processor === 'stripe'
        ? reference?.startsWith('cn_')
          ? 'stripe_credit_note'
          : 'stripe_customer_balance'
        : 'internal_credit';
  return {
    creditId: row.id,
    kind: row.kind === 'refund' ? 'refund' : 'credit',
    method,
    processor: row.processor ?? 'manual',
    processorReference: reference,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
  };
}

const CREDIT_COLUMNS = 'id, kind, amount_minor, currency, processor, processor_reference, invoice_id';

export function createDisputeActivities(deps: { pool: Pool } & PaymentGateways) {
  const { pool } = deps;

  async function settled(key: string): Promise<CreditRow | undefined> {
    const { rows } = await pool.query<CreditRow>(
      `SELECT ${CREDIT_COLUMNS} FROM credits_adjustments WHERE idempotency_key = $1`,
      [key],
    );
    return rows[0];
  }

  async function invoiceOf(tenantId: string, invoiceId: string): Promise<DisputedInvoice> {
    const { rows } = await pool.query<{
      id: string;
      tenant_id: string;
      status: InvoiceStatus;
      currency: string;
      period_start: Date;
      period_end: Date;
      total_minor: number | string;
      amount_paid_minor: number | string;
      processor: Processor;
      processor_invoice_id: string | null;
      generation_key: string | null;
    }>(
      `SELECT id, tenant_id, status, currency, period_start, period_end, total_minor, amount_paid_minor, processor,
              processor_invoice_id, generation_key
       FROM invoices WHERE id = $1`,
      [invoiceId],
    );
    const row = rows[0];
    if (!row || row.tenant_id !== tenantId) {
      throw ApplicationFailure.nonRetryable(
        `invoice ${invoiceId} is not an invoice of tenant ${tenantId}`,
        'InvoiceUnknown',
      );
    }
    return {
      invoiceId: row.id,
      tenantId: row.tenant_id,
      status: row.status,
      currency: row.currency,
      periodStart: row.period_start.toISOString(),
      periodEnd: row.period_end.toISOString(),
      totalMinor: Number(row.total_minor),
      amountPaidMinor: Number(row.amount_paid_minor),
      processor: row.processor,
      processorInvoiceId: row.processor_invoice_id,
      usageInvoice: row.generation_key !== null,
    };
  }

  async function tenantOf(
    tenantId: string,
  ): Promise<{ processor: Processor; stripeCustomerId: string | null; currency: string }> {
    const { rows } = await pool.query<{
      payment_processor: Processor;
      stripe_customer_id: string | null;
      currency: string;
    }>('SELECT payment_processor, stripe_customer_id, currency FROM tenants WHERE id = $1', [tenantId]);
    const row = rows[0];
    if (!row)
      throw ApplicationFailure.nonRetryable(
        `tenant ${tenantId} is not in the tenants table`,
        'TenantUnknown',
      );
    return {
      processor: row.payment_processor,
      stripeCustomerId: row.stripe_customer_id,
      currency: row.currency,
    };
  }

  async function insertCredit(
    db: Pick<PoolClient, 'query'>,
    req: SettlementRequest,
    fields: {
      kind: CreditRow['kind'];
      invoiceId: string;
      processor: CreditRow['processor'];
      processorReference: string | null;
    },
  ): Promise<CreditRow> {
    let inserted: CreditRow | undefined;
    try {
      const result = await db.query<CreditRow>(
        `INSERT INTO credits_adjustments (tenant_id, invoice_id, kind, amount_minor, currency, reason, processor,
                                        processor_reference, idempotency_key, workflow_id, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING ${CREDIT_COLUMNS}`,
        [
          req.tenantId,
          fields.invoiceId,
          fields.kind,
          req.amountMinor,
          req.currency,
          req.reason,
          fields.processor,
          fields.processorReference,
          req.idempotencyKey,
          req.workflowId,
          req.operator,
        ],
      );
      inserted = result.rows[0];
    } catch (err) {
      // The provider's object is already recorded under another key: a person has to look at both.
      if ((err as { code?: unknown }).code !== '23505') throw err;
      throw ApplicationFailure.nonRetryable(
        `${fields.processor} ${fields.processorReference} is already recorded in credits_adjustments under another key`,
        'CreditAlreadyRecorded',
      );
    }
    return inserted ?? (await settled(req.idempotencyKey))!;
  }

  /** A Stripe call under our idempotency key; Stripe's errors become retryable or typed non-retryable failures. */
  async function stripeCall<T>(call: (stripe: Stripe) => Promise<T>): Promise<T> {
    try {
      return await call(deps.stripe!.sdk);
    } catch (error) {
      if (!(error instanceof Stripe.errors.StripeError)) throw error;
      const meaning = interpretStripeError(error);
      throw stripeFailure(
        meaning.kind === 'declined' ? { kind: 'rejected', message: meaning.message } : meaning,
      );
    }
  }

  /** The original Paystack payment of the invoice, if it can still take a refund of this size. */
  async function refundablePaystackPayment(
    invoiceId: string,
    amountMinor: number,
  ): Promise<{ id: string; reference: string; amountMinor: number; currency: string } | undefined> {
    const { rows } = await pool.query<{
      id: string;
      reference: string;
      amount_minor: string;
      currency: string;
    }>(
      `SELECT id, reference, amount_minor, currency FROM payment_transactions
       WHERE invoice_id = $1 AND processor = 'paystack' AND status = 'success' AND refund_reference IS NULL
         AND amount_minor >= $2
       ORDER BY paid_at DESC NULLS LAST, created_at DESC LIMIT 1`,
      [invoiceId, amountMinor],
    );
    const row = rows[0];
    return row
      ? {
          id: row.id,
          reference: row.reference,
          amountMinor: Number(row.amount_minor),
          currency: row.currency,
        }
      : undefined;
  }

  /** POST /refund, unless an earlier attempt's refund (our key in merchant_note) is already at Paystack. */
  async function paystackRefund(
    req: SettlementRequest,
    payment: { reference: string; currency: string },
  ): Promise<string> {
    const paystack = deps.paystack!;
    // Paystack keeps no idempotency key: a retry looks for the refund an earlier attempt made, by its note.
    if (Context.current().info.attempt > 1) {
      const verified = await paystack.request(
        'GET',
        `/transaction/verify/${encodeURIComponent(payment.reference)}`,
      );
      const id = (verified.envelope.data as { id?: unknown } | undefined)?.id;
      if (verified.envelope.status && (typeof id === 'number' || typeof id === 'string')) {
        const listed = await paystack.request('GET', `/refund?transaction=${encodeURIComponent(String(id))}`);
        const refunds = z.array(paystackRefundSchema).safeParse(listed.envelope.data);
        const earlier = refunds.success
          ? refunds.data.find((r) => r.merchant_note === req.idempotencyKey)
          : undefined;
        if (earlier) return earlier.id;
      }
    }
    const answer = await paystack.request('POST', '/refund', {
      transaction: payment.reference,
      amount: req.amountMinor,
      currency: payment.currency,
      customer_note: req.reason,
      merchant_note: req.idempotencyKey,
    });
    if (answer.httpStatus >= 400 || !answer.envelope.status) {
      throw ApplicationFailure.nonRetryable(
        `Paystack refused the refund of ${payment.reference} (HTTP ${answer.httpStatus}): ${answer.envelope.message}`,
        'ProcessorRejected',
      );
    }
    const refund = paystackRefundSchema.safeParse(answer.envelope.data);
    if (!refund.success) {
      throw ApplicationFailure.retryable(
        'Paystack answered the refund without its id; verifying on the next attempt',
        'ProcessorResponseInvalid',
      );
    }
    return refund.data.id;
  }

  return {
    /** "Pull raw usage data for the disputed period", beside the rollups and what the invoice charged. */
    async pullDisputedUsage(scope: DisputeScope): Promise<DisputeFacts> {
      const invoice = await invoiceOf(scope.tenantId, scope.invoiceId);
      const tenant = await tenantOf(scope.tenantId);
      const period = wholeHours(scope.from, scope.to);
      const { rows } = await pool.query<{
        meter: string;
        raw_quantity: string;
        raw_events: string;
        rollup_quantity: string;
        invoiced_quantity: string | null;
        invoiced_amount_minor: string | null;
      }>(
        `WITH raw AS (
           SELECT meter, sum(quantity) AS quantity, count(*) AS events FROM usage_events
           WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ($4::text IS NULL OR meter = $4)
           GROUP BY meter
         ), rolled AS (
           SELECT meter, sum(quantity) AS quantity FROM usage_rollups
           WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND ($4::text IS NULL OR meter = $4)
           GROUP BY meter
         ), invoiced AS (
           SELECT meter, quantity, amount_minor FROM invoice_lines
           WHERE invoice_id = $5 AND ($4::text IS NULL OR meter = $4)
         )
         SELECT m.meter, COALESCE(raw.quantity, 0)::text AS raw_quantity, COALESCE(raw.events, 0)::text AS raw_events,
                COALESCE(rolled.quantity, 0)::text AS rollup_quantity, invoiced.quantity::text AS invoiced_quantity,
                invoiced.amount_minor::text AS invoiced_amount_minor
         FROM (SELECT meter FROM raw UNION SELECT meter FROM rolled UNION SELECT meter FROM invoiced) m
         LEFT JOIN raw USING (meter) LEFT JOIN rolled USING (meter) LEFT JOIN invoiced USING (meter)
         ORDER BY m.meter`,
        [scope.tenantId, period.from, period.to, scope.meter ?? null, scope.invoiceId],
      );
      const check = await spotCheckRollups(pool, {
        from: invoice.periodStart,
        to: invoice.periodEnd,
        tenants: [scope.tenantId],
      });
      return {
        invoice,
        tenantProcessor: tenant.processor,
        period,
        usage: rows.map((r) => ({
          meter: r.meter,
          rawQuantity: formatDecimal(parseDecimal(r.raw_quantity)),
          rawEvents: Number(r.raw_events),
          rollupQuantity: formatDecimal(parseDecimal(r.rollup_quantity)),
          invoicedQuantity:
            r.invoiced_quantity === null ? null : formatDecimal(parseDecimal(r.invoiced_quantity)),
          invoicedAmountMinor: r.invoiced_amount_minor === null ? null : Number(r.invoiced_amount_minor),
        })),
        rollupMismatches: check.mismatches.length,
      };
    },

    /**
     * Reprices the disputed meter(s) of an invoice from its period's rollups with the correct rate; the other lines
     * stand as invoiced. Writes nothing: an issued invoice is corrected by a credit or an adjustment invoice.
     */
    async repriceDisputedInvoice(req: RepriceRequest): Promise<RecalculatedInvoice> {
      const { rows: invoices } = await pool.query<{
        tenant_id: string;
        status: InvoiceStatus;
        currency: string;
        period_start: Date;
        period_end: Date;
        total_minor: string;
      }>(
        'SELECT tenant_id, status, currency, period_start, period_end, total_minor FROM invoices WHERE id = $1',
        [req.invoiceId],
      );
      const invoice = invoices[0] ?? invalid(`invoice ${req.invoiceId} does not exist`);
      const correct = new Map<string, { pricing: Pricing; rateId: number | null }>();
      if (req.correctRateVersion !== undefined) {
        const { rows } = await pool.query<{
          id: string;
          meter: string;
          tenant_id: string | null;
          currency: string;
          pricing_model: string;
          unit_price_minor: string | null;
          tiers: unknown;
        }>(
          `SELECT id, meter, tenant_id, currency, pricing_model, unit_price_minor::text AS unit_price_minor, tiers
           FROM rates WHERE id = $1`,
          [req.correctRateVersion],
        );
        const rate = rows[0] ?? invalid(`rate version ${req.correctRateVersion} does not exist`);
        if (req.meter && rate.meter !== req.meter) {
          invalid(`rate version ${rate.id} prices ${rate.meter}, not the disputed meter ${req.meter}`);
        }
        if (rate.currency !== invoice.currency) {
          invalid(`rate version ${rate.id} is in ${rate.currency}; the invoice is in ${invoice.currency}`);
        }
        if (rate.tenant_id !== null && rate.tenant_id !== invoice.tenant_id) {
          invalid(`rate version ${rate.id} is tenant ${rate.tenant_id}'s negotiated rate`);
        }
        correct.set(rate.meter, {
          pricing: pricingOf(rate.pricing_model, rate.unit_price_minor, rate.tiers, `rate ${rate.id}`),
          rateId: Number(rate.id),
        });
      }
      for (const [meter, price] of Object.entries(req.rates ?? {})) {
        if (req.meter && meter !== req.meter)
          invalid(`a rate for ${meter} given, but the dispute is about ${req.meter}`);
        correct.set(meter, {
          pricing: pricingOf('per_unit', price, null, `the ${meter} rate`),
          rateId: null,
        });
      }
      if (correct.size === 0) invalid('name the correct rate: correctRateVersion or rates');

      const { rows: lines } = await pool.query<{ meter: string; quantity: string; amount_minor: string }>(
        'SELECT meter, quantity::text AS quantity, amount_minor::text AS amount_minor FROM invoice_lines WHERE invoice_id = $1',
        [req.invoiceId],
      );
      const { rows: usage } = await pool.query<{ meter: string; quantity: string }>(
        `SELECT meter, sum(quantity)::text AS quantity FROM usage_rollups
         WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND meter = ANY($4) GROUP BY meter`,
        [invoice.tenant_id, invoice.period_start, invoice.period_end, [...correct.keys()]],
      );
      const used = new Map(usage.map((u) => [u.meter, u.quantity]));
      const meters = [...new Set([...lines.map((l) => l.meter), ...correct.keys()])].sort();
      const report = meters.map((meter) => {
        const old = lines.find((l) => l.meter === meter);
        const price = correct.get(meter);
        const oldQuantity = old ? formatDecimal(parseDecimal(old.quantity)) : null;
        const oldAmountMinor = old ? Number(old.amount_minor) : 0;
        if (!price)
          return {
            meter,
            oldQuantity,
            newQuantity: oldQuantity,
            oldAmountMinor,
            newAmountMinor: oldAmountMinor,
          };
        const quantity = formatDecimal(parseDecimal(used.get(meter) ?? '0'));
        const priced = priceUsage(quantity, price);
        if (priced.amountMinor > BigInt(Number.MAX_SAFE_INTEGER))
          invalid(`${describeLine(meter, priced)} is too large`);
        return {
          meter,
          oldQuantity,
          newQuantity: quantity,
          oldAmountMinor,
          newAmountMinor: Number(priced.amountMinor),
        };
      });
      const oldTotalMinor = Number(invoice.total_minor);
      const linesBefore = report.reduce((sum, l) => sum + l.oldAmountMinor, 0);
      // Any part of the total that is not a usage line (none today) stays as it was.
      const newTotalMinor =
        oldTotalMinor - linesBefore + report.reduce((sum, l) => sum + l.newAmountMinor, 0);
      const differenceMinor = newTotalMinor - oldTotalMinor;
      return {
        invoiceId: req.invoiceId,
        tenantId: invoice.tenant_id,
        status: invoice.status,
        currency: invoice.currency,
        oldTotalMinor,
        newTotalMinor,
        differenceMinor,
        action: differenceMinor === 0 ? 'unchanged' : 'needs_adjustment',
        lines: report,
      };
    },

    /**
     * Credits an overbilled tenant: on Stripe a credit note against the Stripe invoice (else a customer balance
     * credit), on Paystack a refund of the invoice's payment (POST /refund, kobo), otherwise an internal credit.
     * One credits_adjustments row per key; a retry finds it, or finds the provider's object by the same key.
     */
    async issueDisputeCredit(req: SettlementRequest): Promise<DisputeCredit> {
      assertAmount(req.amountMinor);
      const earlier = await settled(req.idempotencyKey);
      if (earlier) return toCredit(earlier);
      const invoice = await invoiceOf(req.tenantId, req.invoiceId);
      if (invoice.currency !== req.currency) {
        invalid(`the credit is in ${req.currency}; invoice ${req.invoiceId} is in ${invoice.currency}`);
      }
      const tenant = await tenantOf(req.tenantId);
      const metadata = { tenant_id: req.tenantId, invoice_id: req.invoiceId, workflow_id: req.workflowId };

      if (tenant.processor === 'stripe' && deps.stripe) {
        if (invoice.processor === 'stripe' && invoice.processorInvoiceId) {
          const invoiceId = invoice.processorInvoiceId;
          const note = await stripeCall((stripe) =>
            stripe.creditNotes.create(
              {
                invoice: invoiceId,
                amount: req.amountMinor,
                // A paid invoice's credit goes to the customer's balance, applied to the next invoice.
                ...(invoice.status === 'paid' ? { credit_amount: req.amountMinor } : {}),
                reason: 'order_change',
                memo: req.reason.slice(0, 500),
                metadata,
              },
              { idempotencyKey: req.idempotencyKey },
            ),
          );
          return toCredit(
            await insertCredit(pool, req, {
              kind: 'credit',
              invoiceId: req.invoiceId,
              processor: 'stripe',
              processorReference: note.id,
            }),
          );
        }
        if (tenant.stripeCustomerId) {
          const customerId = tenant.stripeCustomerId;
          // A negative balance transaction is a credit the next invoices draw on.
          const entry = await stripeCall((stripe) =>
            stripe.customers.createBalanceTransaction(
              customerId,
              {
                amount: -req.amountMinor,
                currency: req.currency.toLowerCase(),
                description: req.reason.slice(0, 350),
                metadata,
              },
              { idempotencyKey: req.idempotencyKey },
            ),
          );
          return toCredit(
            await insertCredit(pool, req, {
              kind: 'credit',
              invoiceId: req.invoiceId,
              processor: 'stripe',
              processorReference: entry.id,
            }),
          );
        }
      }

      if (tenant.processor === 'paystack' && deps.paystack) {
        const payment = await refundablePaystackPayment(req.invoiceId, req.amountMinor);
        if (payment) {
          const refundId = await paystackRefund(req, payment);
          const row = await inTransaction(pool, async (client) => {
            // Seed 004 "Update Database" after a Paystack refund.
            await client.query(
              `UPDATE payment_transactions
               SET status = CASE WHEN amount_minor = $2 THEN 'refunded' ELSE 'partially_refunded' END,
                   refund_reference = $3, refund_amount_minor = $2, refunded_at = now()
               WHERE id = $1 AND refund_reference IS NULL`,
              [payment.id, req.amountMinor, refundId],
            );
            return insertCredit(client, req, {
              kind: 'refund',
              invoiceId: req.invoiceId,
              processor: 'paystack',
              processorReference: refundId,
            });
          });
          return toCredit(row);
        }
      }

      // No processor object to credit against: an internal credit the next invoice draws on.
      return toCredit(
        await insertCredit(pool, req, {
          kind: 'credit',
          invoiceId: req.invoiceId,
          processor: 'manual',
          processorReference: null,
        }),
      );
    },

    /** Bills an underbilled difference on a new open invoice for the same period, recorded as an adjustment. */
    async issueAdjustmentInvoice(req: SettlementRequest): Promise<AdjustmentInvoice> {
      assertAmount(req.amountMinor);
      const original = await invoiceOf(req.tenantId, req.invoiceId);
      const row = await inTransaction(pool, async (client) => {
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('billops.disputes'), hashtext($1))`, [
          req.idempotencyKey,
        ]);
        const { rows: done } = await client.query<CreditRow>(
          `SELECT ${CREDIT_COLUMNS} FROM credits_adjustments WHERE idempotency_key = $1`,
          [req.idempotencyKey],
        );
        if (done[0]) return done[0];
        const adjustmentId = `adj_${createHash('sha256').update(req.idempotencyKey).digest('hex').slice(0, 20)}`;
        await client.query(
          `INSERT INTO invoices (id, tenant_id, processor, period_start, period_end, status, subtotal_minor,
                                 total_minor, currency)
           VALUES ($1, $2, 'none', $3, $4, 'open', $5, $5, $6)`,
          [
            adjustmentId,
            req.tenantId,
            original.periodStart,
            original.periodEnd,
            req.amountMinor,
            req.currency,
          ],
        );
        return insertCredit(client, req, {
          kind: 'adjustment_invoice',
          invoiceId: adjustmentId,
          processor: null,
          processorReference: null,
        });
      });
      return {
        creditId: row.id,
        adjustmentInvoiceId: row.invoice_id!,
        amountMinor: Number(row.amount_minor),
        currency: row.currency,
      };
    },
  };
}

function pricingOf(model: string, unitPriceMinor: unknown, tiers: unknown, what: string): Pricing {
  try {
    return parsePricing(model, unitPriceMinor, tiers);
  } catch (err) {
    if (err instanceof PricingError) invalid(`${what} is not a valid price: ${err.message}`);
    throw err;
  }
}
