// Running totals /metrics turns into counters: settled payments per processor and outcome, closed dunning lifecycles.
import type { Pool } from 'pg';

/** A payment attempt's outcome, counted once when it is known (a pending attempt is not counted until it settles). */
export type PaymentStatus = 'success' | 'failed';
/** How a dunning lifecycle ended: paid (from any phase), data deleted after suspension, or stopped by an operator. */
export type DunningCloseOutcome = 'recovered' | 'deleted' | 'canceled';

export interface SettledTotals {
  payments: { processor: 'stripe' | 'paystack'; status: PaymentStatus; count: number }[];
  dunningClosed: { outcome: DunningCloseOutcome; count: number }[];
}

/**
 * A payment counts as a success once it was paid (a later refund does not uncount it) and as failed once failed;
 * pending ones are not counted. Both only grow, so the counters built on them stay monotonic.
 */
export async function settledTotals(pool: Pool): Promise<SettledTotals> {
  const payments = await pool.query<{ processor: 'stripe' | 'paystack'; succeeded: string; failed: string }>(
    `SELECT processor,
            count(*) FILTER (WHERE paid_at IS NOT NULL) AS succeeded,
            count(*) FILTER (WHERE status = 'failed') AS failed
     FROM payment_transactions WHERE processor IN ('stripe', 'paystack') GROUP BY processor`,
  );
  const dunning = await pool.query<{ outcome: 'recovered' | 'deleted' | 'canceled'; n: string }>(
    `SELECT outcome, count(*) AS n FROM dunning_records
     WHERE outcome IN ('recovered', 'deleted', 'canceled') GROUP BY outcome`,
  );
  return {
    payments: payments.rows.flatMap((r) => [
      { processor: r.processor, status: 'success' as const, count: Number(r.succeeded) },
      { processor: r.processor, status: 'failed' as const, count: Number(r.failed) },
    ]),
    dunningClosed: dunning.rows.map((r) => ({ outcome: r.outcome, count: Number(r.n) })),
  };
}
