// The usage repository: set-based ingestion of usage events with a verdict per item, the last event per tenant and
// meter, and the latest rollup runs.
import type { ClientBase } from 'pg';
import type { RollupAttemptStatus } from '../domain/rollups';
import {
  DEFAULT_MAX_FUTURE_SKEW_MS,
  MAX_BATCH_EVENTS,
  summarizeUsageResults,
  validateUsageBatch,
  type UsageBatchSummary,
  type UsageItemResult,
  type ValidatedUsageEvent,
} from '../domain/usageEvents';

/** A pool, or a client inside the caller's transaction. */
export type Queryable = Pick<ClientBase, 'query'>;

/** Who sends the events: the API key whose id scopes the idempotency keys, and the tenants it may name (null: all). */
export interface UsageProducer {
  keyId: string;
  tenants: readonly string[] | null;
}

export interface IngestOptions {
  producer: UsageProducer;
  /** Our clock for the future-timestamp check; now by default. */
  now?: Date;
  maxFutureSkewMs?: number;
  maxBatchEvents?: number;
}

/**
 * Validates a batch as sent (snake_case wire events) and records the valid events whose tenant exists, is one the
 * producer may name, and whose meter is known, in one statement; an event whose tenant and idempotency key this
 * producer already recorded is a duplicate. Every item gets a verdict, and a refused item leaves no trace while the
 * rest of the batch lands.
 */
export async function ingestUsageEvents(
  db: Queryable,
  items: readonly unknown[],
  opts: IngestOptions,
): Promise<UsageBatchSummary> {
  const { valid, rejected } = validateUsageBatch(items, {
    now: opts.now ?? new Date(),
    maxFutureSkewMs: opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS,
    maxBatchEvents: opts.maxBatchEvents ?? MAX_BATCH_EVENTS,
  });
  const allowed = opts.producer.tenants ? new Set(opts.producer.tenants) : undefined;
  const inScope = valid.filter((e) => !allowed || allowed.has(e.tenantId));
  // Named the same whether the tenant exists or not, so a key limited to some tenants cannot probe for others.
  const outOfScope: UsageItemResult[] = valid
    .filter((e) => allowed && !allowed.has(e.tenantId))
    .map((e) => ({
      index: e.index,
      status: 'rejected',
      reason: `tenant "${e.tenantId}" is outside this API key's tenants`,
    }));
  const recorded = await recordUsageEvents(db, opts.producer.keyId, inScope);
  return summarizeUsageResults([...rejected, ...outOfScope, ...recorded]);
}

interface VerdictRow {
  idx: number;
  tenant_known: boolean;
  tenant_deleted: boolean;
  meter_known: boolean;
  first_idx: number | null;
  inserted: boolean;
  differs_from_recorded: boolean;
  differs_from_first: boolean;
}

// A meter is known once any rate or any usage cap names it. That refuses typos ("api_cals") yet keeps usage of a
// meter priced for another tier or tenant, or not priced yet: refusing real usage loses revenue for good, while a
// recorded event without a rate is simply not billed until someone prices it.
// Within the batch the first item with a (tenant, key) pair stands for it; later ones are its duplicates.
// Idempotency keys are the producer's ($7): another producer's event under the same key is a different event. An
// event recorded before producers were known (no producer) still stands for its key, so a re-send is not counted twice.
// The `prior` join reads the table as it was before this statement, so it finds only earlier recordings.
const RECORD_USAGE_EVENTS_SQL = `
WITH input AS (
  SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::numeric[], $5::timestamptz[], $6::text[])
    AS i(idx, tenant_id, meter, quantity, occurred_at, idempotency_key)
),
known_meters AS (
  SELECT m.meter FROM (SELECT DISTINCT meter FROM input) m
  WHERE EXISTS (SELECT 1 FROM rates r WHERE r.meter = m.meter)
     OR EXISTS (SELECT 1 FROM usage_caps c WHERE c.meter = m.meter)
),
checked AS (
  SELECT i.*, t.id IS NOT NULL AS tenant_known, COALESCE(t.deleted_at IS NOT NULL, false) AS tenant_deleted,
         km.meter IS NOT NULL AS meter_known
  FROM input i
  LEFT JOIN tenants t ON t.id = i.tenant_id
  LEFT JOIN known_meters km ON km.meter = i.meter
),
candidates AS (
  SELECT DISTINCT ON (tenant_id, idempotency_key) *
  FROM checked ch
  WHERE tenant_known AND NOT tenant_deleted AND meter_known
    AND NOT EXISTS (SELECT 1 FROM usage_events l WHERE l.tenant_id = ch.tenant_id
                    AND l.idempotency_key = ch.idempotency_key AND l.producer_key_id IS NULL)
  ORDER BY tenant_id, idempotency_key, idx
),
inserted AS (
  INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key, producer_key_id)
  SELECT tenant_id, meter, quantity, occurred_at, idempotency_key, $7::text FROM candidates ORDER BY idx
  ON CONFLICT (tenant_id, idempotency_key, producer_key_id) DO NOTHING
  RETURNING tenant_id, idempotency_key
)
SELECT c.idx, c.tenant_known, c.tenant_deleted, c.meter_known, cand.idx AS first_idx,
       ins.tenant_id IS NOT NULL AS inserted,
       prior.id IS NOT NULL AND (prior.meter, prior.quantity, prior.occurred_at)
                                IS DISTINCT FROM (c.meter, c.quantity, c.occurred_at) AS differs_from_recorded,
       COALESCE(cand.idx <> c.idx AND (cand.meter, cand.quantity, cand.occurred_at)
                IS DISTINCT FROM (c.meter, c.quantity, c.occurred_at), false) AS differs_from_first
FROM checked c
LEFT JOIN candidates cand ON cand.tenant_id = c.tenant_id AND cand.idempotency_key = c.idempotency_key
LEFT JOIN inserted ins ON ins.tenant_id = c.tenant_id AND ins.idempotency_key = c.idempotency_key
LEFT JOIN LATERAL (
  SELECT p.id, p.meter, p.quantity, p.occurred_at FROM usage_events p
  WHERE p.tenant_id = c.tenant_id AND p.idempotency_key = c.idempotency_key
    AND (p.producer_key_id = $7::text OR p.producer_key_id IS NULL)
  ORDER BY p.producer_key_id NULLS FIRST
  LIMIT 1
) prior ON true
ORDER BY c.idx`;

const DIFFERENT_CONTENT = ' with a different meter, quantity or timestamp: ignored';

/**
 * Records validated events of one producer (an API key id) in one statement; the verdicts say which landed, which
 * were duplicates, which were refused.
 */
export async function recordUsageEvents(
  db: Queryable,
  producerKeyId: string,
  events: readonly ValidatedUsageEvent[],
): Promise<UsageItemResult[]> {
  if (events.length === 0) return [];
  const { rows } = await db.query<VerdictRow>(RECORD_USAGE_EVENTS_SQL, [
    events.map((e) => e.index),
    events.map((e) => e.tenantId),
    events.map((e) => e.meter),
    events.map((e) => e.quantity),
    events.map((e) => e.occurredAt),
    events.map((e) => e.idempotencyKey),
    producerKeyId,
  ]);
  const byIndex = new Map(events.map((e) => [e.index, e]));
  return rows.map((row) => {
    const event = byIndex.get(row.idx);
    if (!event) throw new Error(`usage ingestion returned item ${row.idx}, which was not sent`);
    return verdict(row, event);
  });
}

function verdict(row: VerdictRow, event: ValidatedUsageEvent): UsageItemResult {
  const index = row.idx;
  if (!row.tenant_known) return { index, status: 'rejected', reason: `unknown tenant "${event.tenantId}"` };
  if (row.tenant_deleted)
    return { index, status: 'rejected', reason: `tenant "${event.tenantId}" is deleted` };
  if (!row.meter_known) {
    return {
      index,
      status: 'rejected',
      reason: `unknown meter "${event.meter}": no rate or usage cap names it`,
    };
  }
  if (row.first_idx !== null && row.first_idx !== index) {
    const suffix = row.differs_from_first ? DIFFERENT_CONTENT : '';
    return {
      index,
      status: 'duplicate',
      reason: `repeats the idempotency key of item ${row.first_idx}${suffix}`,
    };
  }
  if (row.inserted) return { index, status: 'accepted' };
  return {
    index,
    status: 'duplicate',
    reason: `already recorded${row.differs_from_recorded ? DIFFERENT_CONTENT : ''}`,
  };
}

/** The newest usage event of one tenant's meter, and how long ago it happened. */
export interface TenantMeterLag {
  tenant: string;
  meter: string;
  /** ISO-8601 UTC. */
  lastOccurredAt: string;
  /** Seconds from lastOccurredAt to asOf; 0 for an event stamped slightly ahead of our clock. */
  lagSeconds: number;
}

/** The newest usage event of a meter over all tenants. */
export interface MeterLag {
  meter: string;
  lastOccurredAt: string;
  lagSeconds: number;
  /** Tenants that ever sent this meter. */
  tenants: number;
}

/** Runbook "Check usage_events ingestion (last event timestamp)", per meter and per tenant and meter. */
export interface IngestionLag {
  /** The database clock the lags are measured against. */
  asOf: string;
  /** When any event last arrived, null when none ever did. */
  lastReceivedAt: string | null;
  meters: MeterLag[];
  tenantMeters: TenantMeterLag[];
}

// A loose index scan over (tenant_id, meter, occurred_at): one index probe per pair and one for its newest event,
// instead of reading every event ever recorded. The clock row comes back even when no event exists.
const INGESTION_LAG_SQL = `
WITH RECURSIVE pairs AS (
  (SELECT tenant_id, meter FROM usage_events ORDER BY tenant_id, meter LIMIT 1)
  UNION ALL
  SELECT next.tenant_id, next.meter
  FROM pairs p
  CROSS JOIN LATERAL (
    SELECT e.tenant_id, e.meter FROM usage_events e
    WHERE (e.tenant_id, e.meter) > (p.tenant_id, p.meter)
    ORDER BY e.tenant_id, e.meter
    LIMIT 1
  ) next
),
newest AS (
  SELECT p.tenant_id, p.meter, last.occurred_at
  FROM pairs p
  CROSS JOIN LATERAL (
    SELECT e.occurred_at FROM usage_events e
    WHERE e.tenant_id = p.tenant_id AND e.meter = p.meter
    ORDER BY e.occurred_at DESC
    LIMIT 1
  ) last
)
SELECT clock.as_of, clock.last_received_at, newest.tenant_id, newest.meter, newest.occurred_at,
       GREATEST(0, extract(epoch FROM clock.as_of - newest.occurred_at))::float8 AS lag_seconds
FROM (SELECT now() AS as_of, (SELECT max(received_at) FROM usage_events) AS last_received_at) clock
LEFT JOIN newest ON true
ORDER BY newest.meter, newest.tenant_id`;

interface LagRow {
  as_of: Date;
  last_received_at: Date | null;
  tenant_id: string | null;
  meter: string | null;
  occurred_at: Date | null;
  lag_seconds: number | null;
}

export async function ingestionLag(db: Queryable): Promise<IngestionLag> {
  const { rows } = await db.query<LagRow>(INGESTION_LAG_SQL);
  const tenantMeters: TenantMeterLag[] = [];
  for (const r of rows) {
    if (r.tenant_id === null || r.meter === null || r.occurred_at === null || r.lag_seconds === null)
      continue;
    tenantMeters.push({
      tenant: r.tenant_id,
      meter: r.meter,
      lastOccurredAt: r.occurred_at.toISOString(),
      lagSeconds: r.lag_seconds,
    });
  }
  const meters = new Map<string, MeterLag>();
  for (const pair of tenantMeters) {
    const seen = meters.get(pair.meter);
    if (!seen) meters.set(pair.meter, { ...withoutTenant(pair), tenants: 1 });
    else {
      seen.tenants += 1;
      // toISOString is fixed-width UTC, so the later instant is the larger string.
      if (pair.lastOccurredAt > seen.lastOccurredAt) Object.assign(seen, withoutTenant(pair));
    }
  }
  const clock = rows[0];
  if (!clock) throw new Error('the ingestion lag query returned no clock row');
  return {
    asOf: clock.as_of.toISOString(),
    lastReceivedAt: clock.last_received_at?.toISOString() ?? null,
    meters: [...meters.values()],
    tenantMeters,
  };
}

function withoutTenant(pair: TenantMeterLag): Omit<MeterLag, 'tenants'> {
  return { meter: pair.meter, lastOccurredAt: pair.lastOccurredAt, lagSeconds: pair.lagSeconds };
}

/** A rollup_runs row, timestamps as ISO-8601 UTC: the answer to "verify aggregation job status". */
export interface RollupRun {
  id: number;
  windowStart: string;
  windowEnd: string;
  status: RollupAttemptStatus;
  attempt: number;
  workflowId: string | null;
  eventsProcessed: number | null;
  startedAt: string;
  finishedAt: string | null;
  error: string | null;
}

interface RollupRunRow {
  id: number | string;
  window_start: Date;
  window_end: Date;
  status: RollupAttemptStatus;
  attempt: number;
  workflow_id: string | null;
  events_processed: number | string | null;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
}

/** The latest rollup runs, newest first. */
export async function latestRollupRuns(db: Queryable, n: number): Promise<RollupRun[]> {
  const { rows } = await db.query<RollupRunRow>(
    `SELECT id, window_start, window_end, status, attempt, workflow_id, events_processed, started_at, finished_at, error
     FROM rollup_runs ORDER BY started_at DESC, id DESC LIMIT $1`,
    [n],
  );
  return rows.map((row) => ({
    id: Number(row.id),
    windowStart: row.window_start.toISOString(),
    windowEnd: row.window_end.toISOString(),
    status: row.status,
    attempt: row.attempt,
    workflowId: row.workflow_id,
    eventsProcessed: row.events_processed === null ? null : Number(row.events_processed),
    startedAt: row.started_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
    error: row.error,
  }));
}
