// Usage integrity checks of the metering-failure runbook: ingestion lag, and rollups spot-checked against raw events.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { ingestionLag, type IngestionLag, type Queryable } from '../../db/usage';
import { HOUR_MS } from '../../domain/vocabulary';

export { ingestionLag };
export type { IngestionLag, MeterLag, TenantMeterLag } from '../../db/usage';

/** Runbook "Validate data consistency (spot check known tenants)": name the tenants, or ask for a random sample. */
export interface SpotCheckRequest {
  /** Start of the range; widened down to the whole hour. */
  from: string | Date;
  /** End of the range (exclusive); widened up to the whole hour. */
  to: string | Date;
  /** Tenants to check; with sample, the sample is drawn from these. */
  tenants?: string[];
  /** How many tenants to draw at random; without tenants, from those with events or rollups in the range. */
  sample?: number;
}

/** missing_rollup: events but no rollup; stray_rollup: a rollup but no events; different: both, not equal. */
export type RollupMismatchKind = 'missing_rollup' | 'stray_rollup' | 'different';

export interface RollupMismatch {
  tenant: string;
  meter: string;
  /** Start of the UTC hour, ISO-8601. */
  hour: string;
  kind: RollupMismatchKind;
  rollupQuantity: string | null;
  rollupCount: number | null;
  /** The exact sum of the raw events' quantities, "0" when there are none. */
  rawQuantity: string;
  rawCount: number;
}

/** One tenant's meter and how many hours of it were compared (hours with events or with a rollup). */
export interface CheckedSeries {
  tenant: string;
  meter: string;
  hours: number;
}

export interface SpotCheckResult {
  /** The range actually compared, in whole hours. */
  from: string;
  to: string;
  /** The tenants checked, including those with nothing in the range. */
  tenants: string[];
  /** Named tenants that do not exist, so a typo never passes for a clean check. */
  unknownTenants: string[];
  checked: CheckedSeries[];
  mismatches: RollupMismatch[];
}

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidSpotCheckRequest');
}

function instant(value: string | Date, name: string): number {
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) invalid(`${name} must be an ISO-8601 date-time (got ${JSON.stringify(value)})`);
  return ms;
}

function range(req: SpotCheckRequest): { from: string; to: string } {
  const fromMs = Math.floor(instant(req.from, 'from') / HOUR_MS) * HOUR_MS;
  const toMs = Math.ceil(instant(req.to, 'to') / HOUR_MS) * HOUR_MS;
  if (toMs <= fromMs) invalid('to must be later than from');
  return { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() };
}

const SAMPLE_ACTIVE_TENANTS_SQL = `
SELECT t.id FROM tenants t
WHERE EXISTS (SELECT 1 FROM usage_events e WHERE e.tenant_id = t.id AND e.occurred_at >= $1 AND e.occurred_at < $2)
   OR EXISTS (SELECT 1 FROM usage_rollups r WHERE r.tenant_id = t.id AND r.hour >= $1 AND r.hour < $2)
ORDER BY random()
LIMIT $3`;

async function chooseTenants(
  db: Queryable,
  req: SpotCheckRequest,
  window: { from: string; to: string },
): Promise<{ tenants: string[]; unknownTenants: string[] }> {
  const { sample } = req;
  if (sample !== undefined && (!Number.isSafeInteger(sample) || sample <= 0)) {
    invalid(`sample must be a positive whole number (got ${sample})`);
  }
  if (req.tenants === undefined) {
    if (sample === undefined) invalid('name the tenants to check, or a sample size, or both');
    const { rows } = await db.query<{ id: string }>(SAMPLE_ACTIVE_TENANTS_SQL, [
      window.from,
      window.to,
      sample,
    ]);
    return { tenants: rows.map((r) => r.id).sort(), unknownTenants: [] };
  }
  const named = [...new Set(req.tenants)];
  const { rows } = await db.query<{ id: string }>('SELECT id FROM tenants WHERE id = ANY($1::text[])', [
    named,
  ]);
  const known = new Set(rows.map((r) => r.id));
  const existing = named.filter((id) => known.has(id));
  const chosen = sample === undefined ? existing : shuffled(existing).slice(0, sample);
  return { tenants: chosen.sort(), unknownTenants: named.filter((id) => !known.has(id)) };
}

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

// Raw sums per UTC hour against the rollups, in one snapshot. The FULL OUTER JOIN keeps hours present on one side
// only: events without a rollup and rollups without events. A 0/0 rollup for an hour without events equals the
// raw sum over no events, so it is not a mismatch.
const SPOT_CHECK_SQL = `
WITH raw AS (
  SELECT tenant_id, meter, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
         sum(quantity) AS quantity, count(*) AS event_count
  FROM usage_events
  WHERE tenant_id = ANY($1::text[]) AND occurred_at >= $2 AND occurred_at < $3
  GROUP BY 1, 2, 3
),
rolled AS (
  SELECT tenant_id, meter, hour, quantity, event_count
  FROM usage_rollups
  WHERE tenant_id = ANY($1::text[]) AND hour >= $2 AND hour < $3
),
compared AS (
  SELECT COALESCE(raw.tenant_id, rolled.tenant_id) AS tenant_id,
         COALESCE(raw.meter, rolled.meter) AS meter,
         COALESCE(raw.hour, rolled.hour) AS hour,
         COALESCE(raw.quantity, 0) AS raw_quantity,
         COALESCE(raw.event_count, 0) AS raw_count,
         rolled.quantity AS rollup_quantity,
         rolled.event_count AS rollup_count,
         CASE WHEN rolled.tenant_id IS NULL THEN 'missing_rollup'
              WHEN raw.tenant_id IS NULL THEN 'stray_rollup'
              ELSE 'different' END AS kind,
         COALESCE(raw.quantity, 0) <> COALESCE(rolled.quantity, 0)
           OR COALESCE(raw.event_count, 0) <> COALESCE(rolled.event_count, 0) AS mismatch
  FROM raw
  FULL OUTER JOIN rolled
    ON rolled.tenant_id = raw.tenant_id AND rolled.meter = raw.meter AND rolled.hour = raw.hour
)
SELECT tenant_id, meter, count(*)::int AS hours,
       COALESCE(jsonb_agg(jsonb_build_object(
         'hour', to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
         'kind', kind,
         'rollupQuantity', rollup_quantity::text,
         'rollupCount', rollup_count,
         'rawQuantity', raw_quantity::text,
         'rawCount', raw_count
       ) ORDER BY hour) FILTER (WHERE mismatch), '[]'::jsonb) AS mismatches
FROM compared
GROUP BY tenant_id, meter
ORDER BY tenant_id, meter`;

interface SeriesRow {
  tenant_id: string;
  meter: string;
  hours: number;
  mismatches: Omit<RollupMismatch, 'tenant' | 'meter'>[];
}

/**
 * Compares usage_rollups with the sums of the raw usage_events, hour by hour, for the chosen tenants over [from, to),
 * and lists every hour where quantity or event count differ, or where one side is missing.
 */
export async function spotCheckRollups(db: Queryable, req: SpotCheckRequest): Promise<SpotCheckResult> {
  const window = range(req);
  const { tenants, unknownTenants } = await chooseTenants(db, req, window);
  const result: SpotCheckResult = { ...window, tenants, unknownTenants, checked: [], mismatches: [] };
  if (tenants.length === 0) return result;
  const { rows } = await db.query<SeriesRow>(SPOT_CHECK_SQL, [tenants, window.from, window.to]);
  for (const row of rows) {
    result.checked.push({ tenant: row.tenant_id, meter: row.meter, hours: row.hours });
    for (const m of row.mismatches) result.mismatches.push({ tenant: row.tenant_id, meter: row.meter, ...m });
  }
  return result;
}

/** The checks as activities, for the usage-metering-failure incident workflow. */
export function createUsageIntegrityActivities(deps: { pool: Pool }) {
  return {
    /** Runbook "Check usage_events ingestion (last event timestamp)". */
    async usageIngestionLag(): Promise<IngestionLag> {
      return ingestionLag(deps.pool);
    },

    /** Runbook "Validate data consistency (spot check known tenants)". */
    async spotCheckUsageRollups(req: SpotCheckRequest): Promise<SpotCheckResult> {
      return spotCheckRollups(deps.pool, req);
    },
  };
}
export type UsageIntegrityActivities = ReturnType<typeof createUsageIntegrityActivities>;
