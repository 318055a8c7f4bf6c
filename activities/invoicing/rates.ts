// The rates in force for a period, read for generation and recalculation; a rate whose pricing is not valid stops the run.
import { ApplicationFailure } from '@temporalio/activity';
import type { ClientBase } from 'pg';
import { rateFromRow, rateRowsInForce } from '../../db/invoices';
import { PricingError, type Rate, type RateSubject } from '../../domain/pricing';

/** Rate versions that can be in force at `at`; graduated tiers are rebuilt with their numbers as text, never a double. */
export async function ratesInForce(
  db: Pick<ClientBase, 'query'>,
  meters: string[],
  at: Date,
  subjects: RateSubject[],
): Promise<Rate[]> {
  if (meters.length === 0 || subjects.length === 0) return [];
  const rows = await rateRowsInForce(db, meters, at, subjects);
  return rows.map((row) => {
    try {
      return rateFromRow(row);
    } catch (err) {
      if (!(err instanceof PricingError)) throw err;
      throw ApplicationFailure.nonRetryable(
        `rate ${row.id} (${row.meter}) is not valid: ${err.message}`,
        'InvalidRate',
      );
    }
  });
}
