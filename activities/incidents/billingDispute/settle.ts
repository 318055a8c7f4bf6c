// Settling a dispute: a credit for overbilling (Stripe credit note or customer balance, Paystack refund, or an internal
// credit) and an adjustment invoice for underbilling, each written once under its idempotency key.
import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { z } from 'zod';
import { inTransaction } from '../../../db/pool';
import { interpretStripeError, stripeFailure } from '../../../drivers/stripe';
import type { PaymentGateways } from '../../payments';
import {
  CREDIT_COLUMNS,
  insertCredit,
  settled,
  toCredit,
  type AdjustmentInvoice,
  type CreditRow,
  type DisputeCredit,
  type SettlementRequest,
} from './credits';
import { disputedInvoice, disputedTenant, invalid } from './facts';

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

export function createSettlementActivities(deps: { pool: Pool } & PaymentGateways) {
  const { pool } = deps;

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
    /**
     * Credits an overbilled tenant: on Stripe a credit note against the Stripe invoice (else a customer balance
     * credit), on Paystack a refund of the invoice's payment (POST /refund, kobo), otherwise an internal credit.
     * One credits_adjustments row per key; a retry finds it, or finds the provider's object by the same key.
     */
    async issueDisputeCredit(req: SettlementRequest): Promise<DisputeCredit> {
      assertAmount(req.amountMinor);
      const earlier = await settled(pool, req.idempotencyKey);
      if (earlier) return toCredit(earlier);
      const invoice = await disputedInvoice(pool, req.tenantId, req.invoiceId);
      if (invoice.currency !== req.currency) {
        invalid(`the credit is in ${req.currency}; invoice ${req.invoiceId} is in ${invoice.currency}`);
      }
      const tenant = await disputedTenant(pool, req.tenantId);
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
            await insertCredit(pool, pool, req, {
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
            await insertCredit(pool, pool, req, {
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
            return insertCredit(pool, client, req, {
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
        await insertCredit(pool, pool, req, {
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
      const original = await disputedInvoice(pool, req.tenantId, req.invoiceId);
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
        return insertCredit(pool, client, req, {
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
