// Invoicing activities: draft invoices from usage rollups × rates, recalculation, and holds on generation and delivery.
import { ApplicationFailure } from '@temporalio/activity';
import type { ClientBase, Pool } from 'pg';
import { z } from 'zod';
import { inTransaction } from '../db/pool';
import type { BillingTier } from '../domain/policy';
import {
  describeLine,
  effectiveRate,
  formatDecimal,
  parseDecimal,
  parsePricing,
  PricingError,
  priceUsage,
  type Rate,
  type RateSubject,
} from '../domain/pricing';

export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'void' | 'uncollectible';

export interface InvoicePeriodRequest {
  /** ISO-8601 on the hour (rollups are hourly); the rates in force at this instant price the period. */
  periodStart: string;
  /** ISO-8601 on the hour, exclusive. */
  periodEnd: string;
  /** Only these tenants; every tenant when left out. */
  tenants?: string[];
}

export interface GenerateInvoicesRequest extends InvoicePeriodRequest {
  /** Workflow id + step; recorded on the invoices this run creates. */
  idempotencyKey: string;
}

/** created: a new draft; extended: lines added to the draft for meters released from a hold; unchanged: nothing to add. */
export type GenerationOutcome = 'created' | 'extended' | 'unchanged';

export interface GeneratedInvoice {
  invoiceId: string;
  tenantId: string;
  status: InvoiceStatus;
  currency: string;
  totalMinor: number;
  /** Meters the invoice has a line for. */
  meters: string[];
  outcome: GenerationOutcome;
}

/**
 * held: an active billing hold covers it; no_rate: no rate in force for it; invoice_not_draft: the period's invoice
 * is already finalized (recalculate, or adjust); overlapping_invoice: another usage invoice covers part of the period.
 */
export type SkipReason = 'held' | 'no_rate' | 'invoice_not_draft' | 'overlapping_invoice';

export interface SkippedUsage {
  tenantId: string;
  /** null: the whole tenant. */
  meter: string | null;
  reason: SkipReason;
}

export interface GenerateInvoicesResult {
  invoices: GeneratedInvoice[];
  skipped: SkippedUsage[];
}

/** updated: a draft or open invoice now carries the new lines; needs_adjustment: finalized, so a credit or adjustment invoice settles the difference. */
export type RecalculationAction = 'updated' | 'needs_adjustment' | 'unchanged';

export interface RecalculatedLine {
  meter: string;
  oldQuantity: string | null;
  newQuantity: string | null;
  oldAmountMinor: number;
  newAmountMinor: number;
}

export interface RecalculatedInvoice {
  invoiceId: string;
  tenantId: string;
  status: InvoiceStatus;
  currency: string;
  oldTotalMinor: number;
  newTotalMinor: number;
  /** newTotalMinor − oldTotalMinor: positive means underbilled, negative overbilled. */
  differenceMinor: number;
  action: RecalculationAction;
  lines: RecalculatedLine[];
}

export interface RecalculateInvoicesResult {
  invoices: RecalculatedInvoice[];
  skipped: SkippedUsage[];
}

export interface GenerationHoldRequest {
  /** Left out: every tenant. */
  tenantId?: string | null;
  /** Left out: every meter. */
  meter?: string | null;
  reason: string;
  operator: string;
  idempotencyKey: string;
  workflowId?: string;
}

export interface GenerationHold {
  holdId: number;
  tenantId: string | null;
  meter: string | null;
  reason: string;
  heldBy: string;
  /** ISO-8601 UTC. */
  heldAt: string;
  releasedAt: string | null;
  releasedBy: string | null;
  releaseReason: string | null;
}

export interface DeliveryHoldRequest {
  /** With neither tenantId nor invoiceIds, every undelivered invoice. */
  tenantId?: string | null;
  invoiceIds?: string[];
  reason: string;
  operator: string;
}

export interface DeliveryHoldResult {
  /** The invoices now held (or released). */
  invoiceIds: string[];
  /** Requested ids that were not changed: unknown, already delivered, void or paid. */
  unmatched: string[];
}

export interface DeliverInvoicesRequest {
  tenants?: string[];
  invoiceIds?: string[];
  /** Only invoices whose period lies within these bounds (ISO-8601). */
  periodStart?: string;
  periodEnd?: string;
}

export interface InvoiceSummary {
  invoiceId: string;
  tenantId: string;
  currency: string;
  totalMinor: number;
}

export interface DeliverInvoicesResult {
  delivered: InvoiceSummary[];
  /** Open, undelivered and on delivery hold: they wait for releaseInvoiceDelivery. */
  held: InvoiceSummary[];
}

// ---------------------------------------------------------------------------------------------------------------
// Edge validation
// ---------------------------------------------------------------------------------------------------------------

const HOUR_MS = 3_600_000;
const instant = z
  .string()
  .datetime({ offset: true })
  .transform((s) => new Date(s));
const meterName = z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/, 'meter must look like api_calls');
const present = z.string().trim().min(1);
const ids = z.array(present);

const periodSchema = z
  .object({ periodStart: instant, periodEnd: instant, tenants: ids.optional() })
  .refine((p) => p.periodEnd > p.periodStart, 'periodEnd must be after periodStart')
  .refine(
    (p) => p.periodStart.getTime() % HOUR_MS === 0 && p.periodEnd.getTime() % HOUR_MS === 0,
    'the period must start and end on the hour: usage rollups are hourly',
  );
const generateSchema = periodSchema.and(z.object({ idempotencyKey: present }));
const generationHoldSchema = z.object({
  tenantId: present.nullish(),
  meter: meterName.nullish(),
  reason: present,
  operator: present,
  idempotencyKey: present,
  workflowId: present.optional(),
});
const deliveryHoldSchema = z.object({
  tenantId: present.nullish(),
  invoiceIds: ids.optional(),
  reason: present,
  operator: present,
});
const deliverSchema = z.object({
  tenants: ids.optional(),
  invoiceIds: ids.optional(),
  periodStart: instant.optional(),
  periodEnd: instant.optional(),
});

function parseRequest<S extends z.ZodTypeAny>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) =>
      i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message,
    );
    throw ApplicationFailure.nonRetryable(
      `invalid ${what}: ${problems.join('; ')}`,
      'InvalidInvoicingRequest',
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------------------------
// Reads: holds, usage, rates
// ---------------------------------------------------------------------------------------------------------------

interface ActiveHold {
  tenant_id: string | null;
  meter: string | null;
}

async function activeHolds(db: Pick<ClientBase, 'query'>): Promise<ActiveHold[]> {
  const { rows } = await db.query<ActiveHold>(
    'SELECT tenant_id, meter FROM billing_holds WHERE released_at IS NULL',
  );
  return rows;
}

/** A hold with no tenant covers every tenant, with no meter every meter; `meter` null asks about the whole tenant. */
function isHeld(holds: readonly ActiveHold[], tenantId: string | null, meter: string | null): boolean {
  return holds.some(
    (h) => (h.tenant_id === null || h.tenant_id === tenantId) && (h.meter === null || h.meter === meter),
  );
}

interface UsageRow {
  tenant_id: string;
  tier: BillingTier;
  currency: string;
  meter: string;
  quantity: string;
}

/** The period's quantity per tenant and meter, summed in SQL; numeric comes back as exact text. */
async function usageInPeriod(
  db: Pick<ClientBase, 'query'>,
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

/** Rate versions that can be in force at `at`; graduated tiers are rebuilt with their numbers as text, never a double. */
async function ratesInForce(
  db: Pick<ClientBase, 'query'>,
  meters: string[],
  at: Date,
  subjects: RateSubject[],
): Promise<Rate[]> {
  if (meters.length === 0 || subjects.length === 0) return [];
  const { rows } = await db.query<RateRow>(
    `${RATES_SELECT}
     WHERE r.meter = ANY($1) AND r.effective_from <= $2 AND (r.tenant_id = ANY($3) OR r.tier = ANY($4))`,
    [meters, at, [...new Set(subjects.map((s) => s.tenantId))], [...new Set(subjects.map((s) => s.tier))]],
  );
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

// ---------------------------------------------------------------------------------------------------------------
// Pricing and writing lines
// ---------------------------------------------------------------------------------------------------------------

interface LineDraft {
  meter: string;
  quantity: string;
  rateId: number;
  amountMinor: bigint;
  description: string;
}

function sumOf(lines: readonly LineDraft[]): bigint {
  return lines.reduce((sum, l) => sum + l.amountMinor, 0n);
}

/** The meter's invoice line priced with the rate in force at `at`, or undefined when no rate is. */
function priceMeter(
  rates: readonly Rate[],
  subject: RateSubject,
  at: Date,
  meter: string,
  quantity: string,
): LineDraft | undefined {
  const rate = effectiveRate(rates, meter, at, subject);
  if (!rate) return undefined;
  const priced = priceUsage(quantity, rate);
  return {
    meter,
    quantity: formatDecimal(parseDecimal(quantity)),
    rateId: rate.id,
    amountMinor: priced.amountMinor,
    description: describeLine(meter, priced),
  };
}

/** Amounts leave as numbers (activity results are JSON); one a double cannot hold exactly is refused. */
function toMinorNumber(amount: bigint, what: string): number {
  if (amount > BigInt(Number.MAX_SAFE_INTEGER) || amount < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw ApplicationFailure.nonRetryable(
      `${what} of ${amount} minor units is beyond what billops stores exactly`,
      'AmountOutOfRange',
    );
  }
  return Number(amount);
}

async function insertLines(
  db: Pick<ClientBase, 'query'>,
  invoiceId: string,
  lines: LineDraft[],
): Promise<void> {
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
async function totalFromLines(db: Pick<ClientBase, 'query'>, invoiceId: string): Promise<number> {
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
async function inTenantTransaction<T>(
  pool: Pool,
  tenantId: string,
  work: (db: Pick<ClientBase, 'query'>) => Promise<T>,
): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('billops.invoicing'), hashtext($1))`, [
      tenantId,
    ]);
    return work(client);
  });
}

interface InvoiceRow {
  id: string;
  tenant_id: string;
  status: InvoiceStatus;
  currency: string;
  period_start: Date;
  period_end: Date;
  total_minor: number;
  amount_paid_minor: number;
}

const invoiceColumns = (alias = '') =>
  ['id', 'tenant_id', 'status', 'currency', 'period_start', 'period_end', 'total_minor', 'amount_paid_minor']
    .map((column) => alias + column)
    .join(', ');

function toSummary(row: Pick<InvoiceRow, 'id' | 'tenant_id' | 'currency' | 'total_minor'>): InvoiceSummary {
  return { invoiceId: row.id, tenantId: row.tenant_id, currency: row.currency, totalMinor: row.total_minor };
}

// ---------------------------------------------------------------------------------------------------------------
// Holds
// ---------------------------------------------------------------------------------------------------------------

interface HoldRow {
  id: number;
  tenant_id: string | null;
  meter: string | null;
  reason: string;
  held_by: string;
  created_at: Date;
  released_at: Date | null;
  released_by: string | null;
  release_reason: string | null;
}

const HOLD_COLUMNS =
  'id, tenant_id, meter, reason, held_by, created_at, released_at, released_by, release_reason';

function toHold(row: HoldRow): GenerationHold {
  return {
    holdId: row.id,
    tenantId: row.tenant_id,
    meter: row.meter,
    reason: row.reason,
    heldBy: row.held_by,
    heldAt: row.created_at.toISOString(),
    releasedAt: row.released_at?.toISOString() ?? null,
    releasedBy: row.released_by,
    releaseReason: row.release_reason,
  };
}

function isForeignKeyViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23503';
}

// ---------------------------------------------------------------------------------------------------------------
// The activities
// ---------------------------------------------------------------------------------------------------------------

export function createInvoicingActivities(deps: { pool: Pool }) {
  const { pool } = deps;

  /** Generates or completes one tenant's draft for the period from its priced lines. */
  async function generateForTenant(
    subject: RateSubject,
    period: { start: Date; end: Date; key: string },
    lines: LineDraft[],
    heldMeters: boolean,
    skipped: SkippedUsage[],
  ): Promise<GeneratedInvoice | undefined> {
    return inTenantTransaction<GeneratedInvoice | undefined>(pool, subject.tenantId, async (db) => {
      const { rows: covering } = await db.query<InvoiceRow>(
        `SELECT ${invoiceColumns()} FROM invoices
         WHERE tenant_id = $1 AND generation_key IS NOT NULL AND status <> 'void'
           AND period_start < $3 AND period_end > $2`,
        [subject.tenantId, period.start, period.end],
      );
      const same = (r: InvoiceRow) =>
        r.period_start.getTime() === period.start.getTime() &&
        r.period_end.getTime() === period.end.getTime();
      if (covering.some((r) => !same(r))) {
        skipped.push({ tenantId: subject.tenantId, meter: null, reason: 'overlapping_invoice' });
        return undefined;
      }
      const existing = covering[0];
      if (!existing && lines.length === 0) return undefined;

      if (!existing) {
        toMinorNumber(sumOf(lines), 'the invoice total');
        const { rows } = await db.query<{ id: string }>(
          `INSERT INTO invoices (tenant_id, period_start, period_end, status, currency, generation_key, generation_held)
           VALUES ($1, $2, $3, 'draft', $4, $5, $6) RETURNING id`,
          [subject.tenantId, period.start, period.end, subject.currency, period.key, heldMeters],
        );
        const invoiceId = rows[0]!.id;
        await insertLines(db, invoiceId, lines);
        return {
          invoiceId,
          tenantId: subject.tenantId,
          status: 'draft',
          currency: subject.currency,
          totalMinor: await totalFromLines(db, invoiceId),
          meters: lines.map((l) => l.meter),
          outcome: 'created',
        };
      }

      const { rows: present } = await db.query<{ meter: string }>(
        'SELECT meter FROM invoice_lines WHERE invoice_id = $1 ORDER BY meter',
        [existing.id],
      );
      const invoiced = new Set(present.map((r) => r.meter));
      const missing = lines.filter((l) => !invoiced.has(l.meter));
      if (existing.status !== 'draft') {
        for (const l of missing)
          skipped.push({ tenantId: subject.tenantId, meter: l.meter, reason: 'invoice_not_draft' });
        return {
          ...toSummary(existing),
          status: existing.status,
          meters: [...invoiced],
          outcome: 'unchanged',
        };
      }
      toMinorNumber(BigInt(existing.total_minor) + sumOf(missing), 'the invoice total');
      await insertLines(db, existing.id, missing);
      await db.query('UPDATE invoices SET generation_held = $2 WHERE id = $1 AND generation_held <> $2', [
        existing.id,
        heldMeters,
      ]);
      return {
        invoiceId: existing.id,
        tenantId: subject.tenantId,
        status: existing.status,
        currency: existing.currency,
        totalMinor: missing.length ? await totalFromLines(db, existing.id) : existing.total_minor,
        meters: [...invoiced, ...missing.map((l) => l.meter)].sort(),
        outcome: missing.length ? 'extended' : 'unchanged',
      };
    });
  }

  /** Recomputes one invoice's lines from the rollups as they are now; updates it unless it is finalized. */
  async function recalculateInvoice(
    invoiceId: string,
    holds: readonly ActiveHold[],
    skipped: SkippedUsage[],
  ): Promise<RecalculatedInvoice | undefined> {
    const { rows: owner } = await pool.query<{ tenant_id: string }>(
      'SELECT tenant_id FROM invoices WHERE id = $1',
      [invoiceId],
    );
    if (!owner[0]) return undefined;
    return inTenantTransaction<RecalculatedInvoice | undefined>(pool, owner[0].tenant_id, async (db) => {
      const { rows } = await db.query<InvoiceRow & { tier: BillingTier }>(
        `SELECT ${invoiceColumns('i.')}, t.tier
         FROM invoices i JOIN tenants t ON t.id = i.tenant_id
         WHERE i.id = $1 AND i.status <> 'void' FOR UPDATE OF i`,
        [invoiceId],
      );
      const invoice = rows[0];
      if (!invoice) return undefined;
      const subject: RateSubject = {
        tenantId: invoice.tenant_id,
        tier: invoice.tier,
        currency: invoice.currency,
      };
      const { rows: oldRows } = await db.query<LineRow>(
        'SELECT meter, quantity::text AS quantity, rate_id, amount_minor, description FROM invoice_lines WHERE invoice_id = $1',
        [invoiceId],
      );
      const oldLines = new Map(oldRows.map((r) => [r.meter, r]));
      const usage = new Map(
        (await usageInPeriod(db, invoice.period_start, invoice.period_end, [invoice.tenant_id])).map((u) => [
          u.meter,
          u.quantity,
        ]),
      );
      // A hold stops billing a meter not yet invoiced; meters already on the invoice are corrected regardless.
      const meters = [...new Set([...oldLines.keys(), ...usage.keys()])]
        .filter((m) => oldLines.has(m) || !isHeld(holds, invoice.tenant_id, m))
        .sort();
      const rates = await ratesInForce(db, meters, invoice.period_start, [subject]);

      const newLines: LineDraft[] = [];
      for (const meter of meters) {
        const quantity = usage.get(meter);
        if (quantity === undefined) continue;
        const line = priceMeter(rates, subject, invoice.period_start, meter, quantity);
        const old = oldLines.get(meter);
        if (line) newLines.push(line);
        else if (old) newLines.push(fromRow(old));
        else skipped.push({ tenantId: invoice.tenant_id, meter, reason: 'no_rate' });
      }

      const oldTotal = BigInt(invoice.total_minor);
      const newTotal = sumOf(newLines);
      const newByMeter = new Map(newLines.map((l) => [l.meter, l]));
      const report = [...new Set([...oldLines.keys(), ...newByMeter.keys()])].sort().map((meter) => {
        const [old, line] = [oldLines.get(meter), newByMeter.get(meter)];
        return {
          meter,
          oldQuantity: old ? formatDecimal(parseDecimal(old.quantity)) : null,
          newQuantity: line?.quantity ?? null,
          oldAmountMinor: old?.amount_minor ?? 0,
          newAmountMinor: toMinorNumber(line?.amountMinor ?? 0n, `the ${meter} line`),
        };
      });
      const changed =
        newTotal !== oldTotal ||
        oldLines.size !== newLines.length ||
        newLines.some((l) => {
          const old = oldLines.get(l.meter);
          return (
            !old ||
            old.rate_id !== l.rateId ||
            BigInt(old.amount_minor) !== l.amountMinor ||
            formatDecimal(parseDecimal(old.quantity)) !== l.quantity
          );
        });

      let action: RecalculationAction = 'unchanged';
      if (changed) {
        // Finalized invoices, and open ones already paid beyond the new total, keep their lines: a credit or an
        // adjustment invoice settles the difference.
        const editable =
          (invoice.status === 'draft' || invoice.status === 'open') &&
          newTotal >= BigInt(invoice.amount_paid_minor);
        action = editable ? 'updated' : 'needs_adjustment';
        if (editable) {
          toMinorNumber(newTotal, 'the invoice total');
          await db.query('DELETE FROM invoice_lines WHERE invoice_id = $1', [invoiceId]);
          await insertLines(db, invoiceId, newLines);
          await totalFromLines(db, invoiceId);
          // A corrected invoice is delivered again ("Updated invoice attached").
          await db.query('UPDATE invoices SET delivered_at = NULL WHERE id = $1', [invoiceId]);
        }
      }
      return {
        invoiceId,
        tenantId: invoice.tenant_id,
        status: invoice.status,
        currency: invoice.currency,
        oldTotalMinor: toMinorNumber(oldTotal, 'the old total'),
        newTotalMinor: toMinorNumber(newTotal, 'the new total'),
        differenceMinor: toMinorNumber(newTotal - oldTotal, 'the difference'),
        action,
        lines: report,
      };
    });
  }

  async function setDeliveryHold(held: boolean, input: DeliveryHoldRequest): Promise<DeliveryHoldResult> {
    const req = parseRequest(deliveryHoldSchema, input, held ? 'delivery hold' : 'delivery release');
    await pool.query(
      `UPDATE invoices
       SET delivery_held = $1, delivery_hold_reason = $2, delivery_hold_changed_by = $3, delivery_hold_changed_at = now()
       WHERE delivered_at IS NULL AND status IN ('draft', 'open') AND delivery_held <> $1
         AND ($4::text IS NULL OR tenant_id = $4) AND ($5::text[] IS NULL OR id = ANY($5))`,
      [held, req.reason, req.operator, req.tenantId ?? null, req.invoiceIds ?? null],
    );
    // Invoices already in the asked-for state count as done, so a retried call answers the same.
    const { rows } = await pool.query<{ id: string }>(
      `SELECT id FROM invoices
       WHERE delivered_at IS NULL AND status IN ('draft', 'open') AND delivery_held = $1
         AND ($2::text IS NULL OR tenant_id = $2) AND ($3::text[] IS NULL OR id = ANY($3))
       ORDER BY id`,
      [held, req.tenantId ?? null, req.invoiceIds ?? null],
    );
    const matched = new Set(rows.map((r) => r.id));
    return {
      invoiceIds: rows.map((r) => r.id),
      unmatched: (req.invoiceIds ?? []).filter((id) => !matched.has(id)),
    };
  }

  return {
    /**
     * Builds a draft invoice per tenant for the period: each meter's rollups summed in SQL and priced with the rate
     * in force at the period start. Tenants and meters under an active billing hold are skipped (and reported);
     * a later run after their release adds them. Idempotent per tenant and period.
     */
    async generateInvoices(input: GenerateInvoicesRequest): Promise<GenerateInvoicesResult> {
      const req = parseRequest(generateSchema, input, 'invoice generation request');
      const holds = await activeHolds(pool);
      if (holds.some((h) => h.tenant_id === null && h.meter === null)) {
        throw ApplicationFailure.nonRetryable(
          'invoice generation is on hold for every tenant; release the hold first',
          'InvoiceGenerationHeld',
        );
      }
      const usage = await usageInPeriod(pool, req.periodStart, req.periodEnd, req.tenants ?? null);
      const subjects = new Map<string, RateSubject>();
      for (const u of usage)
        subjects.set(u.tenant_id, { tenantId: u.tenant_id, tier: u.tier, currency: u.currency });
      const rates = await ratesInForce(pool, [...new Set(usage.map((u) => u.meter))], req.periodStart, [
        ...subjects.values(),
      ]);

      const invoices: GeneratedInvoice[] = [];
      const skipped: SkippedUsage[] = [];
      for (const subject of subjects.values()) {
        if (isHeld(holds, subject.tenantId, null)) {
          skipped.push({ tenantId: subject.tenantId, meter: null, reason: 'held' });
          continue;
        }
        const lines: LineDraft[] = [];
        let heldMeters = false;
        for (const u of usage.filter((row) => row.tenant_id === subject.tenantId)) {
          if (isHeld(holds, subject.tenantId, u.meter)) {
            heldMeters = true;
            skipped.push({ tenantId: subject.tenantId, meter: u.meter, reason: 'held' });
            continue;
          }
          const line = priceMeter(rates, subject, req.periodStart, u.meter, u.quantity);
          if (line) lines.push(line);
          else skipped.push({ tenantId: subject.tenantId, meter: u.meter, reason: 'no_rate' });
        }
        const period = { start: req.periodStart, end: req.periodEnd, key: req.idempotencyKey };
        const invoice = await generateForTenant(subject, period, lines, heldMeters, skipped);
        if (invoice) invoices.push(invoice);
      }
      return { invoices, skipped };
    },

    /**
     * Recomputes the period's usage invoices from the rollups and rates as they are now and answers, per invoice,
     * the old total, the new total and the difference. Draft and open invoices are updated; paid or uncollectible
     * ones are left as they are and reported as needs_adjustment for a credit or adjustment invoice.
     */
    async recalculateInvoices(input: InvoicePeriodRequest): Promise<RecalculateInvoicesResult> {
      const req = parseRequest(periodSchema, input, 'recalculation request');
      const holds = await activeHolds(pool);
      const { rows } = await pool.query<{ id: string }>(
        `SELECT id FROM invoices
         WHERE generation_key IS NOT NULL AND status <> 'void' AND period_start = $1 AND period_end = $2
           AND ($3::text[] IS NULL OR tenant_id = ANY($3))
         ORDER BY tenant_id, id`,
        [req.periodStart, req.periodEnd, req.tenants ?? null],
      );
      const invoices: RecalculatedInvoice[] = [];
      const skipped: SkippedUsage[] = [];
      for (const { id } of rows) {
        const result = await recalculateInvoice(id, holds, skipped);
        if (result) invoices.push(result);
      }
      return { invoices, skipped };
    },

    /** "Stop invoice generation" / "stop further billing for affected meter/tenant": a billing hold, once per key. */
    async holdInvoiceGeneration(input: GenerationHoldRequest): Promise<GenerationHold> {
      const req = parseRequest(generationHoldSchema, input, 'generation hold');
      const tenantId = req.tenantId ?? null;
      const meter = req.meter ?? null;
      try {
        const { rows } = await pool.query<HoldRow>(
          `INSERT INTO billing_holds (tenant_id, meter, reason, workflow_id, idempotency_key, held_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING ${HOLD_COLUMNS}`,
          [tenantId, meter, req.reason, req.workflowId ?? null, req.idempotencyKey, req.operator],
        );
        if (rows[0]) return toHold(rows[0]);
      } catch (err) {
        if (!isForeignKeyViolation(err)) throw err;
        throw ApplicationFailure.nonRetryable(
          `tenant ${tenantId} is not in the tenants table`,
          'TenantUnknown',
        );
      }
      const { rows } = await pool.query<HoldRow>(
        `SELECT ${HOLD_COLUMNS} FROM billing_holds WHERE idempotency_key = $1`,
        [req.idempotencyKey],
      );
      const hold = rows[0]!;
      if (hold.tenant_id !== tenantId || hold.meter !== meter) {
        throw ApplicationFailure.nonRetryable(
          `idempotency key ${req.idempotencyKey} already placed a hold on tenant ${hold.tenant_id ?? '(all)'}, ` +
            `meter ${hold.meter ?? '(all)'}`,
          'IdempotencyKeyReused',
        );
      }
      return toHold(hold);
    },

    /**
     * Releases the active holds with exactly this scope (tenant and meter, either possibly "all"). A retry with the
     * same key answers the holds the first call released and releases nothing placed since.
     */
    async releaseInvoiceGeneration(input: GenerationHoldRequest): Promise<{ released: GenerationHold[] }> {
      const req = parseRequest(generationHoldSchema, input, 'generation release');
      const { rows: earlier } = await pool.query<HoldRow>(
        `SELECT ${HOLD_COLUMNS} FROM billing_holds WHERE release_idempotency_key = $1 ORDER BY id`,
        [req.idempotencyKey],
      );
      if (earlier.length > 0) return { released: earlier.map(toHold) };
      const { rows } = await pool.query<HoldRow>(
        `UPDATE billing_holds
         SET released_at = now(), released_by = $3, release_reason = $4, release_idempotency_key = $5
         WHERE released_at IS NULL AND tenant_id IS NOT DISTINCT FROM $1::text AND meter IS NOT DISTINCT FROM $2::text
         RETURNING ${HOLD_COLUMNS}`,
        [req.tenantId ?? null, req.meter ?? null, req.operator, req.reason, req.idempotencyKey],
      );
      return { released: rows.sort((a, b) => a.id - b.id).map(toHold) };
    },

    /** "Hold invoice delivery until validation complete": flags undelivered draft and open invoices. */
    async holdInvoiceDelivery(input: DeliveryHoldRequest): Promise<DeliveryHoldResult> {
      return setDeliveryHold(true, input);
    },

    async releaseInvoiceDelivery(input: DeliveryHoldRequest): Promise<DeliveryHoldResult> {
      return setDeliveryHold(false, input);
    },

    /**
     * Marks open usage invoices delivered, once each, except those on delivery hold, which are reported instead.
     * The mark is what keeps a retried delivery run from sending an invoice twice.
     */
    async deliverInvoices(input: DeliverInvoicesRequest = {}): Promise<DeliverInvoicesResult> {
      const req = parseRequest(deliverSchema, input, 'delivery request');
      const scope = `status = 'open' AND delivered_at IS NULL AND generation_key IS NOT NULL
        AND ($1::text[] IS NULL OR tenant_id = ANY($1)) AND ($2::text[] IS NULL OR id = ANY($2))
        AND ($3::timestamptz IS NULL OR period_start >= $3) AND ($4::timestamptz IS NULL OR period_end <= $4)`;
      const params = [
        req.tenants ?? null,
        req.invoiceIds ?? null,
        req.periodStart ?? null,
        req.periodEnd ?? null,
      ];
      const { rows: delivered } = await pool.query<InvoiceRow>(
        `UPDATE invoices SET delivered_at = now() WHERE ${scope} AND NOT delivery_held RETURNING ${invoiceColumns()}`,
        params,
      );
      const { rows: held } = await pool.query<InvoiceRow>(
        `SELECT ${invoiceColumns()} FROM invoices WHERE ${scope} AND delivery_held ORDER BY tenant_id, id`,
        params,
      );
      const byTenant = (a: InvoiceSummary, b: InvoiceSummary) =>
        a.tenantId.localeCompare(b.tenantId) || a.invoiceId.localeCompare(b.invoiceId);
      return { delivered: delivered.map(toSummary).sort(byTenant), held: held.map(toSummary) };
    },
  };
}

interface LineRow {
  meter: string;
  quantity: string;
  rate_id: number;
  amount_minor: number;
  description: string;
}

function fromRow(row: LineRow): LineDraft {
  return {
    meter: row.meter,
    quantity: formatDecimal(parseDecimal(row.quantity)),
    rateId: row.rate_id,
    amountMinor: BigInt(row.amount_minor),
    description: row.description,
  };
}

export type InvoicingActivities = ReturnType<typeof createInvoicingActivities>;
