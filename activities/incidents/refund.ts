// Refund activities (seed 004 "Refund Processing"): find the payment, refund it through its provider once under the
// incident's key, and write the transaction and the refund row together.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { z } from 'zod';
import { inTransaction } from '../../db/pool';
import { normalizeCurrency } from '../../domain/money';
import type { BillingTier } from '../../domain/policy';
import {
  BILLOPS_MERCHANT_NOTE,
  BILLOPS_REFUND_MARK,
  type BillingCycle,
  type RefundablePayment,
  type RefundProcessor,
  type TenantSubscription,
} from '../../domain/refunds';
import type { PaymentGateways, PaystackGateway } from '../payments';
import { interpretStripeError } from '../../drivers/stripe';

export type FoundPayment = { found: true; payment: RefundablePayment } | { found: false; reason: string };

export interface RefundRequest {
  /** Workflow id + step: Stripe's Idempotency-Key, and the Paystack merchant note an earlier attempt is found by. */
  idempotencyKey: string;
  workflowId: string;
  tenantId: string;
  transactionId: string;
  processor: RefundProcessor;
  reference: string;
  amountMinor: number;
  currency: string;
  reason: string;
}

export type ProviderRefund =
  | {
      outcome: 'refunded';
      processor: 'stripe' | 'paystack';
      refundReference: string;
      amountMinor: number;
      currency: string;
      providerStatus: string;
      /** 'earlier_attempt': an attempt whose answer was lost had already refunded it. */
      answeredBy: 'refund' | 'earlier_attempt';
    }
  /** The provider refused, or billops cannot ask it: a person refunds by hand. */
  | { outcome: 'not_refunded'; reason: string };

export interface RecordRefundRequest {
  idempotencyKey: string;
  workflowId: string;
  transactionId: string;
  processor: 'stripe' | 'paystack';
  refundReference: string;
  amountMinor: number;
  currency: string;
  reason: string;
  operator: string;
}

export interface RecordedRefund {
  status: 'refunded' | 'partially_refunded';
  refundedMinor: number;
  /** False when this key (or this provider refund) was recorded before: nothing was written twice. */
  recorded: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface TransactionRow {
  id: string;
  tenant_id: string;
  processor: RefundProcessor;
  reference: string;
  status: RefundablePayment['status'];
  amount_minor: string;
  currency: string;
  paid_at: Date | null;
  refund_amount_minor: string | null;
  refunded_at: Date | null;
  refund_reference: string | null;
}

interface SubscriptionRow {
  id: string;
  status: string;
  tier: BillingTier;
  billing_cycle: BillingCycle;
  current_period_start: Date;
  current_period_end: Date;
  cancel_at_period_end: boolean;
}

/** The tenant's live subscription, else its latest (canceled) one; null when it never had one. */
export async function tenantSubscription(pool: Pool, tenantId: string): Promise<TenantSubscription | null> {
  const { rows } = await pool.query<SubscriptionRow>(
    `SELECT id, status, tier, billing_cycle, current_period_start, current_period_end, cancel_at_period_end
       FROM subscriptions WHERE tenant_id = $1
      ORDER BY (status <> 'canceled') DESC, created_at DESC LIMIT 1`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    id: row.id,
    status: row.status,
    tier: row.tier,
    billingCycle: row.billing_cycle,
    currentPeriodStart: row.current_period_start.toISOString(),
    currentPeriodEnd: row.current_period_end.toISOString(),
    cancelAtPeriodEnd: row.cancel_at_period_end,
  };
}

const paystackRefundSchema = z.object({
  id: z.union([z.number().int(), z.string().min(1)]),
  amount: z.union([z.number().int().positive(), z.string().regex(/^\d+$/).transform(Number)]),
  currency: z.string().length(3).nullish(),
  status: z.string().nullish(),
  merchant_note: z.string().nullish(),
});

export function createRefundActivities(deps: { pool: Pool } & PaymentGateways) {
  const { pool } = deps;

  /**
   * What Stripe refunds: the PaymentIntent or charge the row names, else (billops' own invoice payments carry a
   * reference of ours) the paid payment of the row's Stripe invoice.
   */
  async function stripeTarget(
    stripe: Stripe,
    req: RefundRequest,
  ): Promise<{ payment_intent: string } | { charge: string } | { problem: string }> {
    if (req.reference.startsWith('pi_')) return { payment_intent: req.reference };
    if (req.reference.startsWith('ch_')) return { charge: req.reference };
    const { rows } = await pool.query<{ processor_invoice_id: string | null }>(
      `SELECT i.processor_invoice_id FROM payment_transactions t JOIN invoices i ON i.id = t.invoice_id
        WHERE t.id = $1 AND i.processor = 'stripe'`,
      [req.transactionId],
    );
    const invoiceId = rows[0]?.processor_invoice_id;
    if (!invoiceId)
      return { problem: `payment ${req.reference} names no Stripe PaymentIntent, charge or invoice` };
    const payments = await stripe.invoicePayments.list({ invoice: invoiceId, status: 'paid', limit: 10 });
    const idOf = (ref: string | { id: string } | null | undefined) =>
      typeof ref === 'string' ? ref : ref?.id;
    for (const { payment } of payments.data) {
      const intent = idOf(payment.payment_intent);
      if (intent) return { payment_intent: intent };
      const charge = idOf(payment.charge);
      if (charge) return { charge };
    }
    return { problem: `Stripe lists no paid PaymentIntent or charge for invoice ${invoiceId}` };
  }

  async function refundWithStripe(stripe: Stripe, req: RefundRequest): Promise<ProviderRefund> {
    let refund: Stripe.Refund;
    try {
      const target = await stripeTarget(stripe, req);
      if ('problem' in target) return { outcome: 'not_refunded', reason: target.problem };
      refund = await stripe.refunds.create(
        {
          ...target,
          amount: req.amountMinor,
          reason: 'requested_by_customer',
          metadata: {
            tenant_id: req.tenantId,
            transaction_id: req.transactionId,
            [BILLOPS_REFUND_MARK]: req.workflowId,
          },
        },
        { idempotencyKey: req.idempotencyKey },
      );
    } catch (error) {
      if (!(error instanceof Stripe.errors.StripeError)) throw error;
      const meaning = interpretStripeError(error);
      if (meaning.kind === 'retryable')
        throw ApplicationFailure.retryable(meaning.message, 'ProcessorUnavailable');
      return { outcome: 'not_refunded', reason: meaning.message };
    }
    if (refund.status === 'failed' || refund.status === 'canceled') {
      return {
        outcome: 'not_refunded',
        reason: `Stripe refund ${refund.id} is ${refund.status}${refund.failure_reason ? ` (${refund.failure_reason})` : ''}`,
      };
    }
    return {
      outcome: 'refunded',
      processor: 'stripe',
      refundReference: refund.id,
      amountMinor: refund.amount,
      currency: normalizeCurrency(refund.currency),
      providerStatus: refund.status ?? 'pending',
      answeredBy: 'refund',
    };
  }

  /** Paystack keeps no idempotency key: a retry first looks for the refund an earlier attempt made, by its note. */
  async function earlierPaystackRefund(
    paystack: PaystackGateway,
    req: RefundRequest,
    note: string,
  ): Promise<ProviderRefund | null> {
    const verified = await paystack.request(
      'GET',
      `/transaction/verify/${encodeURIComponent(req.reference)}`,
    );
    const id = (verified.envelope.data as { id?: unknown } | undefined)?.id;
    if (!verified.envelope.status || (typeof id !== 'number' && typeof id !== 'string')) return null;
    const listed = await paystack.request('GET', `/refund?transaction=${encodeURIComponent(String(id))}`);
    const refunds = z.array(paystackRefundSchema).safeParse(listed.envelope.data);
    const earlier = refunds.success ? refunds.data.find((r) => r.merchant_note === note) : undefined;
    if (!earlier) return null;
    return {
      outcome: 'refunded',
      processor: 'paystack',
      refundReference: String(earlier.id),
      amountMinor: earlier.amount,
      currency: normalizeCurrency(earlier.currency ?? req.currency),
      providerStatus: earlier.status ?? 'pending',
      answeredBy: 'earlier_attempt',
    };
  }

  async function refundWithPaystack(paystack: PaystackGateway, req: RefundRequest): Promise<ProviderRefund> {
    if (!Number.isSafeInteger(req.amountMinor) || req.amountMinor <= 0) {
      throw ApplicationFailure.nonRetryable(
        `Paystack amounts are positive integers in minor units (kobo), got ${req.amountMinor}`,
        'InvalidAmount',
      );
    }
    const note = `${BILLOPS_MERCHANT_NOTE}${req.idempotencyKey}`;
    if (Context.current().info.attempt > 1) {
      const earlier = await earlierPaystackRefund(paystack, req, note);
      if (earlier) return earlier;
    }
    const answer = await paystack.request('POST', '/refund', {
      transaction: req.reference,
      amount: req.amountMinor,
      currency: req.currency,
      customer_note: req.reason,
      merchant_note: note,
    });
    if (!answer.envelope.status || answer.httpStatus >= 300) {
      return {
        outcome: 'not_refunded',
        reason: `Paystack refused the refund (HTTP ${answer.httpStatus}): ${answer.envelope.message}`,
      };
    }
    const data = paystackRefundSchema.safeParse(answer.envelope.data);
    if (!data.success) {
      throw ApplicationFailure.nonRetryable(
        `Paystack accepted the refund of ${req.reference} but its answer has no refund id: check the dashboard`,
        'ProcessorResponseInvalid',
      );
    }
    return {
      outcome: 'refunded',
      processor: 'paystack',
      refundReference: String(data.data.id),
      amountMinor: data.data.amount,
      currency: normalizeCurrency(data.data.currency ?? req.currency),
      providerStatus: data.data.status ?? 'pending',
      answeredBy: 'refund',
    };
  }

  return {
    /** Seed 004 "Verify Original Transaction": the payment by id or reference, with the tenant's subscription. */
    async findRefundablePayment(req: {
      tenantId: string;
      transactionId?: string;
      references: string[];
    }): Promise<FoundPayment> {
      const tenant = await pool.query('SELECT 1 FROM tenants WHERE id = $1', [req.tenantId]);
      if (tenant.rowCount === 0) {
        return { found: false, reason: `tenant ${req.tenantId} is not in the tenants table` };
      }
      const id = req.transactionId && UUID.test(req.transactionId) ? req.transactionId : null;
      const { rows } = await pool.query<TransactionRow>(
        `SELECT id, tenant_id, processor, reference, status, amount_minor, currency, paid_at, refund_amount_minor,
                refunded_at, refund_reference
           FROM payment_transactions
          WHERE ($1::uuid IS NOT NULL AND id = $1::uuid) OR reference = ANY($2::text[])
          ORDER BY created_at DESC LIMIT 1`,
        [id, req.references],
      );
      const row = rows[0];
      const named = [req.transactionId, ...req.references].filter(Boolean).join(' / ');
      if (!row) return { found: false, reason: `no payment ${named} in payment_transactions` };
      if (row.tenant_id !== req.tenantId) {
        return {
          found: false,
          reason: `payment ${named} belongs to tenant ${row.tenant_id}, not ${req.tenantId}`,
        };
      }
      return {
        found: true,
        payment: {
          transactionId: row.id,
          tenantId: row.tenant_id,
          processor: row.processor,
          reference: row.reference,
          status: row.status,
          amountMinor: Number(row.amount_minor),
          currency: row.currency,
          paidAt: row.paid_at?.toISOString() ?? null,
          refundedMinor: Number(row.refund_amount_minor ?? 0),
          refundedAt: row.refunded_at?.toISOString() ?? null,
          refundReference: row.refund_reference,
          subscription: await tenantSubscription(pool, row.tenant_id),
        },
      };
    },

    /** Seed 004 "Process Refund": through the payment's own provider, once under the key, in minor units. */
    async refundPayment(req: RefundRequest): Promise<ProviderRefund> {
      if (req.processor === 'stripe') {
        if (!deps.stripe) {
          return { outcome: 'not_refunded', reason: 'Stripe is not configured here (STRIPE_SECRET_KEY)' };
        }
        return refundWithStripe(deps.stripe.sdk, req);
      }
      if (req.processor === 'paystack') {
        if (!deps.paystack) {
          return { outcome: 'not_refunded', reason: 'Paystack is not configured here (PAYSTACK_SECRET_KEY)' };
        }
        return refundWithPaystack(deps.paystack, req);
      }
      return {
        outcome: 'not_refunded',
        reason: `payment ${req.reference} was accepted by hand (manual): pay it back by hand, then resolve the incident`,
      };
    },

    /**
     * Seed 004 "Update Database": the transaction's status, refund reference, amount and time, and a refund row in
     * credits_adjustments, in one transaction; a key or provider refund recorded before writes nothing again.
     */
    async recordRefund(req: RecordRefundRequest): Promise<RecordedRefund> {
      const { row, recorded } = await inTransaction(pool, async (client) => {
        const inserted = await client.query(
          `INSERT INTO credits_adjustments (tenant_id, invoice_id, kind, amount_minor, currency, reason, processor,
                                            processor_reference, idempotency_key, workflow_id, created_by)
           SELECT tenant_id, invoice_id, 'refund', $2, $3, $4, $5, $6, $7, $8, $9
             FROM payment_transactions WHERE id = $1
           ON CONFLICT DO NOTHING`,
          [
            req.transactionId,
            req.amountMinor,
            req.currency,
            req.reason,
            req.processor,
            req.refundReference,
            req.idempotencyKey,
            req.workflowId,
            req.operator,
          ],
        );
        const recorded = inserted.rowCount === 1;
        if (recorded) {
          await client.query(
            `UPDATE payment_transactions
                SET refund_amount_minor = LEAST(amount_minor, COALESCE(refund_amount_minor, 0) + $2),
                    status = CASE WHEN COALESCE(refund_amount_minor, 0) + $2 >= amount_minor
                                  THEN 'refunded' ELSE 'partially_refunded' END,
                    refund_reference = $3, refunded_at = now()
              WHERE id = $1`,
            [req.transactionId, req.amountMinor, req.refundReference],
          );
        }
        const { rows } = await client.query<{ status: string; refund_amount_minor: string | null }>(
          'SELECT status, refund_amount_minor FROM payment_transactions WHERE id = $1',
          [req.transactionId],
        );
        return { row: rows[0], recorded };
      });
      if (!row || (row.status !== 'refunded' && row.status !== 'partially_refunded')) {
        throw ApplicationFailure.nonRetryable(
          `payment ${req.transactionId} is ${row?.status ?? 'gone'} after recording refund ${req.refundReference}`,
          'RefundNotRecorded',
        );
      }
      return { status: row.status, refundedMinor: Number(row.refund_amount_minor ?? 0), recorded };
    },
  };
}
export type RefundActivities = ReturnType<typeof createRefundActivities>;
