// How money received is applied to an invoice: paid only when it covers the amount due in the invoice's currency,
// a partial payment recorded as partial, another currency recorded and not applied.
import type { Pool, PoolClient } from 'pg';
import { formatMinorUnits, normalizeCurrency } from '../domain/money';

/** bigint columns arrive as numbers through db/pool.ts, as strings through a plain pg Pool; both are read exactly. */
export function minorUnits(value: number | string | null): number {
  const amount = typeof value === 'string' ? Number(value) : (value ?? 0);
  if (!Number.isSafeInteger(amount)) throw new RangeError(`amount ${String(value)} is not a safe integer`);
  return amount;
}

/** How a payment met its invoice: paid in full, recorded as partial (the invoice stays open), or not applied and why. */
export type PaymentApplication =
  | { applied: 'paid'; invoiceId: string }
  | { applied: 'partial'; invoiceId: string; amountPaidMinor: number; totalMinor: number; currency: string }
  | { applied: 'none'; invoiceId: string; reason: string };

/** Money received for an invoice, in minor units. */
export interface ReceivedPayment {
  amountMinor: number;
  currency: string;
  /** `payment`: this one payment, added to what the invoice had; `invoiceTotal`: all the processor received for it. */
  counts: 'payment' | 'invoiceTotal';
  paidAt: Date;
}

interface AmountsRow {
  status: string;
  total_minor: number | string;
  amount_paid_minor: number | string;
  currency: string;
}

/** Why a payment in `currency` is not a payment of the invoice, or undefined when the currencies agree. */
export function currencyMismatch(
  invoiceId: string,
  invoiceCurrency: string,
  paid: ReceivedPayment,
): string | undefined {
  if (normalizeCurrency(paid.currency) === normalizeCurrency(invoiceCurrency)) return undefined;
  return (
    `${formatMinorUnits(paid.amountMinor, paid.currency)} was paid, but invoice ${invoiceId} is in ` +
    `${normalizeCurrency(invoiceCurrency)}: recorded, not applied; refund it or settle the invoice by hand`
  );
}

/**
 * Applies money received to the invoice (locked in the caller's transaction, or alone on a pool): it is paid only when
 * what it received covers its total in its currency; less is recorded as partial, another currency not at all.
 */
export async function applyPayment(
  db: Pool | PoolClient,
  invoiceId: string,
  paid: ReceivedPayment,
): Promise<PaymentApplication> {
  const { rows } = await db.query<AmountsRow>(
    'SELECT status, total_minor, amount_paid_minor, currency FROM invoices WHERE id = $1 FOR UPDATE',
    [invoiceId],
  );
  const row = rows[0];
  if (!row)
    return { applied: 'none', invoiceId, reason: `invoice ${invoiceId} is not in the invoices table` };
  if (row.status === 'paid') return { applied: 'paid', invoiceId };
  if (row.status === 'void') {
    return {
      applied: 'none',
      invoiceId,
      reason: `invoice ${invoiceId} is void: recorded, not applied; refund the payment or apply it by hand`,
    };
  }
  const mismatch = currencyMismatch(invoiceId, row.currency, paid);
  if (mismatch) return { applied: 'none', invoiceId, reason: mismatch };
  const total = minorUnits(row.total_minor);
  const before = minorUnits(row.amount_paid_minor);
  const received = paid.counts === 'payment' ? before + paid.amountMinor : Math.max(before, paid.amountMinor);
  if (received >= total) {
    await markInvoicePaid(db, invoiceId, paid.paidAt);
    return { applied: 'paid', invoiceId };
  }
  await db.query('UPDATE invoices SET amount_paid_minor = $2 WHERE id = $1', [invoiceId, received]);
  return {
    applied: 'partial',
    invoiceId,
    amountPaidMinor: received,
    totalMinor: total,
    currency: normalizeCurrency(row.currency),
  };
}

/** What a partial or unapplied payment leaves to do, for a note or a timeline. */
export function describeApplication(application: PaymentApplication): string {
  switch (application.applied) {
    case 'paid':
      return `invoice ${application.invoiceId} is paid`;
    case 'partial':
      return (
        `partial payment: invoice ${application.invoiceId} has received ` +
        `${formatMinorUnits(application.amountPaidMinor, application.currency)} of ` +
        `${formatMinorUnits(application.totalMinor, application.currency)} and stays open`
      );
    case 'none':
      return application.reason;
  }
}

/** Marks the invoice paid in full; a no-op when it already is, so a retry never counts a payment twice. */
export async function markInvoicePaid(db: Pool | PoolClient, invoiceId: string, paidAt: Date): Promise<void> {
  await db.query(
    `UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = coalesce(paid_at, $2)
      WHERE id = $1 AND status <> 'paid'`,
    [invoiceId, paidAt],
  );
}
