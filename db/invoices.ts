// The invoices repository: usage and rates read for invoicing, invoice lines and totals, delivery flags.
import type { ClientBase, Pool } from 'pg';
import { inTransaction } from './pool';
import type { BillingTier } from '../domain/policy';
import { parsePricing, toMinorNumber, type LineDraft, type Rate, type RateSubject } from '../domain/pricing';

type Db = Pick<ClientBase, 'query'>;

export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'void' | 'uncollectible';

// Usage and rates

export interface UsageRow {
  tenant_id: string;
  tier: BillingTier;
  currency: string;
  meter: string;
  quantity: string;
}

/** The period's quantity per tenant and meter, summed in SQL; numeric comes back as exact text. */
export async function usageInPeriod(
  db: Db,
  periodStart: Date,
  periodEnd: Date,
  tenants: string[] | null,
): Promise<UsageRow[]> {
  const { rows } = await db.query<UsageRow>(
    `SELECT u.tenant_id, t.tier, t.currency, u.meter, sum(u.quantity)::text AS quantity
     FROM usage_rollups u JOIN tenants t ON t.id = u.tenant_id
     WHERE u.hour >= $1 AND u.hour < $2 AND ($3::text[] IS NULL OR u.tenant_id = ANY($3))
     GROUP BY u.tenant_id, t.tier, t.currency, u.meter
     ORDER BY u.tenant_id, u.meter`,
    [periodStart, periodEnd, tenants],
  );
  return rows;
}

export interface RateRow {
  id: number;
  meter: string;
  tier: BillingTier | null;
  tenant_id: string | null;
  currency: string;
  effective_from: Date;
  pricing_model: string;
  unit_price_minor: string | null;
  tiers: unknown;
}

/** Every rate column, graduated tiers rebuilt with their numbers as text (never through a double); append WHERE/ORDER. */
export const RATES_SELECT = `SELECT r.id, r.meter, r.tier, r.tenant_id, r.currency, r.effective_from, r.pricing_model,
       r.unit_price_minor::text AS unit_price_minor,
       (SELECT jsonb_agg(jsonb_build_object('up_to', e ->> 'up_to', 'unit_price_minor', e ->> 'unit_price_minor')
                         ORDER BY n)
        FROM jsonb_array_elements(r.tiers) WITH ORDINALITY AS x (e, n)) AS tiers
FROM rates r`;

/** A rate row as the pricing code reads it; throws a PricingError when its pricing is not valid. */
export function rateFromRow(row: RateRow): Rate {
  return {
    id: row.id,
    meter: row.meter,
    tier: row.tier,
    tenantId: row.tenant_id,
    currency: row.currency,
    effectiveFrom: row.effective_from,
    pricing: parsePricing(row.pricing_model, row.unit_price_minor, row.tiers),
  };
}

/** Rate versions that can be in force at `at` for these meters and subjects, as rows (not yet validated). */
export async function rateRowsInForce(
  db: Db,
  meters: string[],
  at: Date,
  subjects: RateSubject[],
): Promise<RateRow[]> {
  const { rows } = await db.query<RateRow>(
    `${RATES_SELECT}
     WHERE r.meter = ANY($1) AND r.effective_from <= $2 AND (r.tenant_id = ANY($3) OR r.tier = ANY($4))`,
    [meters, at, [...new Set(subjects.map((s) => s.tenantId))], [...new Set(subjects.map((s) => s.tier))]],
  );
  return rows;
}

// Invoices and their lines

export interface InvoiceRow {
  id: string;
  tenant_id: string;
  status: InvoiceStatus;
  currency: string;
  period_start: Date;
  period_end: Date;
  total_minor: number;
  amount_paid_minor: number;
}

export const invoiceColumns = (alias = '') =>
  ['id', 'tenant_id', 'status', 'currency', 'period_start', 'period_end', 'total_minor', 'amount_paid_minor']
    .map((column) => alias + column)
    .join(', ');

export interface LineRow {
  meter: string;
  quantity: string;
  rate_id: number;
  amount_minor: number;
  description: string;
}

export async function invoiceLines(db: Db, invoiceId: string): Promise<LineRow[]> {
  const { rows } = await db.query<LineRow>(
    'SELECT meter, quantity::text AS quantity, rate_id, amount_minor, description FROM invoice_lines WHERE invoice_id = $1',
    [invoiceId],
  );
  return rows;
}

export async function insertLines(db: Db, invoiceId: string, lines: LineDraft[]): Promise<void> {
  if (lines.length === 0) return;
  lines.forEach((l) => toMinorNumber(l.amountMinor, `the ${l.meter} line`));
  await db.query(
    `INSERT INTO invoice_lines (invoice_id, meter, quantity, rate_id, amount_minor, description)
     SELECT $1, * FROM unnest($2::text[], $3::numeric[], $4::bigint[], $5::bigint[], $6::text[])
     ON CONFLICT (invoice_id, meter) DO NOTHING`,
    [
      invoiceId,
      lines.map((l) => l.meter),
      lines.map((l) => l.quantity),
      lines.map((l) => l.rateId),
      lines.map((l) => l.amountMinor.toString()),
      lines.map((l) => l.description),
    ],
  );
}

/** Sets subtotal and total to the sum of the invoice's lines, summed by PostgreSQL over bigint. */
export async function totalFromLines(db: Db, invoiceId: string): Promise<number> {
  const { rows } = await db.query<{ total_minor: number }>(
    `UPDATE invoices i SET subtotal_minor = s.total, total_minor = s.total
     FROM (SELECT COALESCE(sum(amount_minor), 0) AS total FROM invoice_lines WHERE invoice_id = $1) s
     WHERE i.id = $1
     RETURNING i.total_minor`,
    [invoiceId],
  );
  return rows[0]?.total_minor ?? 0;
}

/** One transaction per tenant, serialised with any other generation or recalculation of the same tenant. */
export async function inTenantTransaction<T>(
  pool: Pool,
  tenantId: string,
  work: (db: Db) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('billops.invoicing'), hashtext($1))`, [
      tenantId,
    ]);
    return work(client);
  });
}

// Generation and recalculation

/** The tenant's usage invoices (not void) that overlap the period. */
export async function usageInvoicesOverlapping(
  db: Db,
  tenantId: string,
  start: Date,
  end: Date,
): Promise<InvoiceRow[]> {
  const { rows } = await db.query<InvoiceRow>(
    `SELECT ${invoiceColumns()} FROM invoices
     WHERE tenant_id = $1 AND generation_key IS NOT NULL AND status <> 'void'
       AND period_start < $3 AND period_end > $2`,
    [tenantId, start, end],
  );
  return rows;
}

export async function insertDraftInvoice(
  db: Db,
  draft: { tenantId: string; start: Date; end: Date; currency: string; key: string; held: boolean },
): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO invoices (tenant_id, period_start, period_end, status, currency, generation_key, generation_held)
     VALUES ($1, $2, $3, 'draft', $4, $5, $6) RETURNING id`,
    [draft.tenantId, draft.start, draft.end, draft.currency, draft.key, draft.held],
  );
  return rows[0]!.id;
}

export async function invoicedMeters(db: Db, invoiceId: string): Promise<string[]> {
  const { rows } = await db.query<{ meter: string }>(
    'SELECT meter FROM invoice_lines WHERE invoice_id = $1 ORDER BY meter',
    [invoiceId],
  );
  return rows.map((r) => r.meter);
}

export async function setGenerationHeld(db: Db, invoiceId: string, held: boolean): Promise<void> {
  await db.query('UPDATE invoices SET generation_held = $2 WHERE id = $1 AND generation_held <> $2', [
    invoiceId,
    held,
  ]);
}

/** The period's usage invoices (not void), by tenant. */
export async function usageInvoiceIds(
  db: Db,
  periodStart: Date,
  periodEnd: Date,
  tenants: string[] | null,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM invoices
     WHERE generation_key IS NOT NULL AND status <> 'void' AND period_start = $1 AND period_end = $2
       AND ($3::text[] IS NULL OR tenant_id = ANY($3))
     ORDER BY tenant_id, id`,
    [periodStart, periodEnd, tenants],
  );
  return rows.map((r) => r.id);
}

export async function invoiceTenant(db: Db, invoiceId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ tenant_id: string }>('SELECT tenant_id FROM invoices WHERE id = $1', [
    invoiceId,
  ]);
  return rows[0]?.tenant_id;
}

/** The invoice (not void) with its tenant's tier, locked for the rest of the transaction. */
export async function lockInvoiceForRecalculation(
  db: Db,
  invoiceId: string,
): Promise<(InvoiceRow & { tier: BillingTier }) | undefined> {
  const { rows } = await db.query<InvoiceRow & { tier: BillingTier }>(
    `SELECT ${invoiceColumns('i.')}, t.tier
     FROM invoices i JOIN tenants t ON t.id = i.tenant_id
     WHERE i.id = $1 AND i.status <> 'void' FOR UPDATE OF i`,
    [invoiceId],
  );
  return rows[0];
}

/** Replaces the invoice's lines and total; a corrected invoice is delivered again ("Updated invoice attached"). */
export async function replaceLines(db: Db, invoiceId: string, lines: LineDraft[]): Promise<void> {
  await db.query('DELETE FROM invoice_lines WHERE invoice_id = $1', [invoiceId]);
  await insertLines(db, invoiceId, lines);
  await totalFromLines(db, invoiceId);
  await db.query('UPDATE invoices SET delivered_at = NULL WHERE id = $1', [invoiceId]);
}

// Delivery

/** Sets the delivery hold of undelivered draft and open invoices; answers those now in that state, by id. */
export async function setDeliveryHeld(
  db: Db,
  held: boolean,
  change: { reason: string; operator: string; tenantId: string | null; invoiceIds: string[] | null },
): Promise<string[]> {
  await db.query(
    `UPDATE invoices
     SET delivery_held = $1, delivery_hold_reason = $2, delivery_hold_changed_by = $3, delivery_hold_changed_at = now()
     WHERE delivered_at IS NULL AND status IN ('draft', 'open') AND delivery_held <> $1
       AND ($4::text IS NULL OR tenant_id = $4) AND ($5::text[] IS NULL OR id = ANY($5))`,
    [held, change.reason, change.operator, change.tenantId, change.invoiceIds],
  );
  // Invoices already in the asked-for state count as done, so a retried call answers the same.
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM invoices
     WHERE delivered_at IS NULL AND status IN ('draft', 'open') AND delivery_held = $1
       AND ($2::text IS NULL OR tenant_id = $2) AND ($3::text[] IS NULL OR id = ANY($3))
     ORDER BY id`,
    [held, change.tenantId, change.invoiceIds],
  );
  return rows.map((r) => r.id);
}

/** Marks the open, undelivered usage invoices in scope delivered unless held; answers those delivered and those held. */
export async function markDelivered(
  db: Db,
  scope: {
    tenants: string[] | null;
    invoiceIds: string[] | null;
    periodStart: Date | null;
    periodEnd: Date | null;
  },
): Promise<{ delivered: InvoiceRow[]; held: InvoiceRow[] }> {
  const where = `status = 'open' AND delivered_at IS NULL AND generation_key IS NOT NULL
    AND ($1::text[] IS NULL OR tenant_id = ANY($1)) AND ($2::text[] IS NULL OR id = ANY($2))
    AND ($3::timestamptz IS NULL OR period_start >= $3) AND ($4::timestamptz IS NULL OR period_end <= $4)`;
  const params = [scope.tenants, scope.invoiceIds, scope.periodStart, scope.periodEnd];
  const { rows: delivered } = await db.query<InvoiceRow>(
    `UPDATE invoices SET delivered_at = now() WHERE ${where} AND NOT delivery_held RETURNING ${invoiceColumns()}`,
    params,
  );
  const { rows: held } = await db.query<InvoiceRow>(
    `SELECT ${invoiceColumns()} FROM invoices WHERE ${where} AND delivery_held ORDER BY tenant_id, id`,
    params,
  );
  return { delivered, held };
}
