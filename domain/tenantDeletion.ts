// What the deletion of a tenant's data answers, what it keeps for accounting and why, and its DECISIONS.log summary.
import { sanitizeDecisionValue } from './decisions';

export interface DeletedTenantData {
  /** Rows deleted per table; all zero when the tenant's data was already gone. */
  deleted: Record<string, number>;
  /** Rows whose personal data was removed per table (the rows themselves are kept). */
  scrubbed: Record<string, number>;
  /** The tables kept for accounting and audit, each with why. */
  kept: Array<{ table: string; why: string }>;
}

/** Kept after deletion, and why: what accounting, audits and replay protection need. */
export const KEPT_AFTER_DELETION: ReadonlyArray<{ table: string; why: string }> = [
  { table: 'invoices', why: 'tax and accounting records, kept 7 years (payment links removed)' },
  { table: 'payment_transactions', why: 'payment evidence for reconciliation, refunds and chargebacks' },
  { table: 'credits_adjustments', why: 'credits and refunds issued: accounting records' },
  { table: 'subscriptions', why: 'the contract the invoices were billed under' },
  { table: 'decisions', why: 'the append-only DECISIONS.log audit record' },
  { table: 'dunning_records', why: 'why the tenant was suspended and deleted' },
  {
    table: 'service_control_changes',
    why: 'audit of every restriction; the suspension stays enforced',
  },
  {
    table: 'webhook_events',
    why:
      'processor event ids, types, amounts, currency, status and times for reconciliation and replay protection; ' +
      'personal data removed',
  },
  {
    table: 'tenants',
    why: 'id, tier, currency and processor ids so kept records resolve; name and addresses replaced',
  },
];

const MAX_RESOLUTION = 400;

/**
 * One line for the DECISIONS.log RESOLUTION field: what was deleted and scrubbed (counts) and what was kept for
 * accounting and why. At most 400 characters; no '|' or line breaks (formatDecisionLine's rules).
 */
export function describeDeletion(result: DeletedTenantData): string {
  const counts = (rows: Record<string, number>) =>
    Object.entries(rows)
      .filter(([, n]) => n > 0)
      .map(([table, n]) => `${n} ${table}`)
      .join(', ');
  const deleted = counts(result.deleted);
  const scrubbed = counts(result.scrubbed);
  const kept = result.kept.map((k) => k.table).filter((t) => t !== 'tenants');
  const line = sanitizeDecisionValue(
    [
      deleted ? `deleted ${deleted}` : 'nothing left to delete',
      scrubbed ? `personal data scrubbed from ${scrubbed}` : 'nothing left to scrub',
      `kept ${kept.join(', ')} for tax, accounting and audit (7 years)`,
    ].join('; '),
  );
  return line.length > MAX_RESOLUTION ? `${line.slice(0, MAX_RESOLUTION - 3)}...` : line;
}
