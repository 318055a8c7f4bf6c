// Stuck transactions (seed 004): pending for over an hour, verified with the provider, updated only when it confirms.
import type { Pool } from 'pg';
import type { PaymentGateways } from '../payments';

export interface StuckTransaction {
  id: string;
  tenantId: string;
  invoiceId: string | null;
  processor: 'stripe' | 'paystack' | 'manual';
  reference: string;
  amountMinor: number;
  currency: string;
  createdAt: string;
}

export type ProviderVerdict =
  | { verdict: 'success'; paidAt: string; providerStatus: string }
  | { verdict: 'failed'; providerStatus: string; reason: string }
  | { verdict: 'unconfirmed'; providerStatus: string };

export interface SettledTransaction {
  id: string;
  reference: string;
  tenantId: string;
  providerStatus: string;
  /** The row's status after this step: changed only on the provider's word. */
  status: 'success' | 'failed' | 'pending';
  updated: boolean;
  note?: string;
}

// Provider states that mean "still in flight": nothing is written for them.
const STRIPE_FAILED = new Set(['canceled', 'failed']);

export function createStuckTransactionActivities(deps: { pool: Pool } & PaymentGateways) {
  const { pool } = deps;

  async function askProvider(tx: StuckTransaction): Promise<ProviderVerdict> {
    if (tx.processor === 'paystack') {
      if (!deps.paystack) return { verdict: 'unconfirmed', providerStatus: 'paystack not configured' };
      const found = await deps.paystack.verifyTransaction(tx.reference);
      if (!found) return { verdict: 'unconfirmed', providerStatus: 'unknown to Paystack' };
      if (found.amountMinor !== tx.amountMinor || found.currency !== tx.currency) {
        return {
          verdict: 'unconfirmed',
          providerStatus: `${found.status}, but Paystack reports ${found.amountMinor} ${found.currency} against our ${tx.amountMinor} ${tx.currency}`,
        };
      }
      if (found.status === 'success') {
        return {
          verdict: 'success',
          providerStatus: 'success',
          paidAt: (found.paidAt ?? new Date()).toISOString(),
        };
      }
      if (found.status === 'failed' || found.status === 'abandoned' || found.status === 'reversed') {
        return {
          verdict: 'failed',
          providerStatus: found.status,
          reason: found.gatewayResponse || found.status,
        };
      }
      return { verdict: 'unconfirmed', providerStatus: found.status };
    }
    if (tx.processor === 'stripe') {
      if (!deps.stripe) return { verdict: 'unconfirmed', providerStatus: 'stripe not configured' };
      // Our Stripe rows carry the PaymentIntent id (pi_...) or the charge id (ch_...) as their reference.
      const object = tx.reference.startsWith('ch_')
        ? await deps.stripe.sdk.charges.retrieve(tx.reference)
        : await deps.stripe.sdk.paymentIntents.retrieve(tx.reference);
      const status = object.status;
      if (object.amount !== tx.amountMinor || object.currency.toUpperCase() !== tx.currency) {
        return {
          verdict: 'unconfirmed',
          providerStatus: `${status}, but Stripe reports ${object.amount} ${object.currency.toUpperCase()} against our ${tx.amountMinor} ${tx.currency}`,
        };
      }
      if (status === 'succeeded') {
        return {
          verdict: 'success',
          providerStatus: status,
          paidAt: new Date(object.created * 1000).toISOString(),
        };
      }
      if (STRIPE_FAILED.has(status)) return { verdict: 'failed', providerStatus: status, reason: status };
      return { verdict: 'unconfirmed', providerStatus: status };
    }
    return { verdict: 'unconfirmed', providerStatus: 'a manual payment: confirm it by hand' };
  }

  return {
    /** The runbook's query: pending rows older than the threshold, oldest first. */
    async findStuckTransactions(req: {
      olderThanMinutes: number;
      processor?: 'stripe' | 'paystack';
      references?: string[];
    }): Promise<StuckTransaction[]> {
      const { rows } = await pool.query<{
        id: string;
        tenant_id: string;
        invoice_id: string | null;
        processor: StuckTransaction['processor'];
        reference: string;
        amount_minor: string;
        currency: string;
        created_at: Date;
      }>(
        `SELECT id, tenant_id, invoice_id, processor, reference, amount_minor, currency, created_at
         FROM payment_transactions
         WHERE status = 'pending' AND created_at < now() - make_interval(mins => $1)
           AND ($2::text IS NULL OR processor = $2)
           AND ($3::text[] IS NULL OR reference = ANY($3::text[]))
         ORDER BY created_at LIMIT 500`,
        [req.olderThanMinutes, req.processor ?? null, req.references ?? null],
      );
      return rows.map((r) => ({
        id: r.id,
        tenantId: r.tenant_id,
        invoiceId: r.invoice_id,
        processor: r.processor,
        reference: r.reference,
        amountMinor: Number(r.amount_minor),
        currency: r.currency,
        createdAt: r.created_at.toISOString(),
      }));
    },

    /** Verifies one transaction with its provider and writes the provider's verdict; a pending verdict writes nothing. */
    async verifyStuckTransaction(tx: StuckTransaction): Promise<SettledTransaction> {
      const answer = await askProvider(tx);
      const base = {
        id: tx.id,
        reference: tx.reference,
        tenantId: tx.tenantId,
        providerStatus: answer.providerStatus,
      };
      if (answer.verdict === 'unconfirmed') return { ...base, status: 'pending', updated: false };
      // `AND status = 'pending'` as in the runbook: a row someone else settled meanwhile is left alone.
      const updated =
        answer.verdict === 'success'
          ? await pool.query(
              `UPDATE payment_transactions SET status = 'success', paid_at = $2, gateway_response = $3
               WHERE id = $1 AND status = 'pending'`,
              [tx.id, answer.paidAt, answer.providerStatus],
            )
          : await pool.query(
              `UPDATE payment_transactions SET status = 'failed', gateway_response = $2
               WHERE id = $1 AND status = 'pending'`,
              [tx.id, answer.reason],
            );
      if (answer.verdict === 'success' && tx.invoiceId) {
        await pool.query(
          `UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = $2
           WHERE id = $1 AND status = 'open' AND total_minor = $3`,
          [tx.invoiceId, answer.paidAt, tx.amountMinor],
        );
      }
      return { ...base, status: answer.verdict, updated: (updated.rowCount ?? 0) > 0 };
    },
  };
}
export type StuckTransactionActivities = ReturnType<typeof createStuckTransactionActivities>;
