// Usage rollup activities: hourly rollups computed set-based inside PostgreSQL, a resumable chunked backfill, and rollup_runs bookkeeping.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import {
  RollupWindowError,
  chunkWindows,
  hourWindow,
  type BackfillHeartbeat,
  type TimeWindow,
} from '../../domain/rollups';
import { latestRollupRuns, type RollupRun } from '../../db/usage';

export interface StartRollupRunRequest extends TimeWindow {
  workflowId: string;
  attempt: number;
  /** ISO-8601, the workflow's clock: with the other fields it identifies the run, so a retry finds its row. */
  startedAt: string;
}

export type FinishRollupRunRequest = { runId: number; finishedAt: string } & (
  | { status: 'succeeded'; eventsProcessed: number }
  | { status: 'failed'; error: string }
);

export interface RollupWindowRequest extends TimeWindow {
  tenants?: string[];
  runId: number;
}

export interface RollupWindowResult {
  eventsProcessed: number;
  rollupsWritten: number;
  rollupsDeleted: number;
  /** Rollups of earlier hours recomputed because events of those hours arrived late (LATE_HOURS). */
  lateRollupsWritten?: number;
}

export interface BackfillRollupsRequest extends TimeWindow {
  tenants?: string[];
  chunkHours: number;
  /** Index of the first chunk of this call and the chunk after its last one. */
  firstChunk: number;
  endChunk: number;
  /** Events counted by earlier calls, so the heartbeat carries the backfill's running total. */
  eventsProcessed: number;
  runId: number;
}

export interface BackfillRollupsResult {
  chunksDone: number;
  eventsProcessed: number;
  /** The chunk this call resumed at from its previous attempt's heartbeat, else null. */
  resumedAt: number | null;
  attempt: number;
}

export interface RollupActivityOptions {
  pool: Pool;
  /** How long a rollup statement waits for a row another session holds before it fails (and is rerun later). */
  lockTimeoutMs?: number;
  /** How often a backfill reports it is alive while one chunk's statement runs. */
  keepAliveMs?: number;
}

/**
 * One statement per window: delete the window's rollups whose events are gone, upsert every (tenant, meter, hour)
 * from the raw events. Both see the same snapshot and touch disjoint rows, so the window is recomputed exactly.
 * $1 from, $2 to, $3 tenants or null for all, $4 the rollup run.
 */
const ROLLUP_WINDOW = `
  WITH deleted AS (
    DELETE FROM usage_rollups r
    WHERE r.hour >= $1::timestamptz AND r.hour < $2::timestamptz
      AND ($3::text[] IS NULL OR r.tenant_id = ANY ($3::text[]))
      AND NOT EXISTS (
        SELECT 1 FROM usage_events e
        WHERE e.tenant_id = r.tenant_id AND e.meter = r.meter
          AND e.occurred_at >= r.hour AND e.occurred_at < r.hour + interval '1 hour')
    RETURNING 1
  ), upserted AS (
    INSERT INTO usage_rollups AS r (tenant_id, meter, hour, quantity, event_count, run_id, computed_at)
    SELECT tenant_id, meter, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
           sum(quantity), count(*), $4::bigint, now()
    FROM usage_events
    WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz
      AND ($3::text[] IS NULL OR tenant_id = ANY ($3::text[]))
    GROUP BY 1, 2, 3
    -- One lock order for every writer; byte order lets PostgreSQL hash-aggregate and sort only the groups.
    ORDER BY tenant_id COLLATE "C", meter COLLATE "C", 3
    ON CONFLICT (tenant_id, meter, hour) DO UPDATE
      SET quantity = EXCLUDED.quantity, event_count = EXCLUDED.event_count,
          run_id = EXCLUDED.run_id, computed_at = EXCLUDED.computed_at
    RETURNING event_count
  )
  SELECT (SELECT count(*) FROM deleted)::bigint AS deleted, count(*)::bigint AS written,
         coalesce(sum(event_count), 0)::bigint AS events
  FROM upserted`;

/**
 * Hours before the window that received events late: events received (received_at, the ingestion transaction's
 * start) from an hour before the window's start to its end whose hour is before the window. Consecutive hourly
 * windows cover every arrival time, so an event accepted after its hour was rolled up is rolled up by the next hourly
 * run; the extra hour covers an ingestion transaction that committed after the previous run read the events. Each
 * such (tenant, meter, hour) is recomputed from all its events. $1 from, $2 tenants or null for all, $3 the run,
 * $4 to.
 */
const LATE_HOURS = `
  WITH late AS (
    SELECT DISTINCT tenant_id, meter, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour
    FROM usage_events
    WHERE received_at >= $1::timestamptz - interval '1 hour' AND received_at < $4::timestamptz
      AND occurred_at < $1::timestamptz
      AND ($2::text[] IS NULL OR tenant_id = ANY ($2::text[]))
  ), upserted AS (
    INSERT INTO usage_rollups AS r (tenant_id, meter, hour, quantity, event_count, run_id, computed_at)
    SELECT l.tenant_id, l.meter, l.hour, sum(e.quantity), count(*), $3::bigint, now()
    FROM late l
    JOIN usage_events e ON e.tenant_id = l.tenant_id AND e.meter = l.meter
      AND e.occurred_at >= l.hour AND e.occurred_at < l.hour + interval '1 hour'
    GROUP BY 1, 2, 3
    ORDER BY l.tenant_id COLLATE "C", l.meter COLLATE "C", 3
    ON CONFLICT (tenant_id, meter, hour) DO UPDATE
      SET quantity = EXCLUDED.quantity, event_count = EXCLUDED.event_count,
          run_id = EXCLUDED.run_id, computed_at = EXCLUDED.computed_at
    RETURNING 1
  )
  SELECT count(*)::bigint AS written FROM upserted`;

/** Finds the row of an earlier try of the same attempt, else inserts it. */
const START_RUN = `
  WITH existing AS (
    SELECT id FROM rollup_runs
    WHERE workflow_id = $3 AND attempt = $4 AND window_start = $1 AND window_end = $2 AND started_at = $5
  ), inserted AS (
    INSERT INTO rollup_runs (window_start, window_end, workflow_id, attempt, started_at, status)
    SELECT $1, $2, $3, $4, $5, 'running' WHERE NOT EXISTS (SELECT 1 FROM existing)
    RETURNING id
  )
  SELECT id FROM existing UNION ALL SELECT id FROM inserted`;

export function createRollupActivities(opts: RollupActivityOptions) {
  const { pool } = opts;
  const lockTimeoutMs = opts.lockTimeoutMs ?? 30_000;
  const keepAliveMs = opts.keepAliveMs ?? 1_000;

  /**
   * Recomputes one window in its own transaction; with `lateHours`, also the earlier hours that received events late
   * (the hourly job's runs, not a backfill's chunks).
   */
  async function rollUp(
    window: TimeWindow,
    tenants: string[] | undefined,
    runId: number,
    lateHours = false,
  ): Promise<RollupWindowResult> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
      const { rows } = await client.query<{
        deleted: number | string;
        written: number | string;
        events: number | string;
      }>(ROLLUP_WINDOW, [window.from, window.to, tenants ?? null, runId]);
      const late = lateHours
        ? await client.query<{ written: number | string }>(LATE_HOURS, [
            window.from,
            tenants ?? null,
            runId,
            window.to,
          ])
        : undefined;
      await client.query('COMMIT');
      const row = rows[0]!;
      return {
        eventsProcessed: Number(row.events),
        rollupsWritten: Number(row.written),
        rollupsDeleted: Number(row.deleted),
        ...(late ? { lateRollupsWritten: Number(late.rows[0]!.written) } : {}),
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  return {
    async startRollupRun(req: StartRollupRunRequest): Promise<number> {
      const { rows } = await pool.query<{ id: number | string }>(START_RUN, [
        req.from,
        req.to,
        req.workflowId,
        req.attempt,
        req.startedAt,
      ]);
      return Number(rows[0]!.id);
    },

    async finishRollupRun(req: FinishRollupRunRequest): Promise<void> {
      await pool.query(
        `UPDATE rollup_runs SET status = $2, finished_at = $3, events_processed = $4, error = $5 WHERE id = $1`,
        [
          req.runId,
          req.status,
          req.finishedAt,
          req.status === 'succeeded' ? req.eventsProcessed : null,
          req.status === 'failed' ? req.error : null,
        ],
      );
    },

    /** Rolls up one hour-aligned window from the raw events, exactly, and the earlier hours that received late events. */
    async rollupWindow(req: RollupWindowRequest): Promise<RollupWindowResult> {
      return rollUp(validWindow(req), req.tenants, req.runId, true);
    },

    /**
     * Recomputes chunks [firstChunk, endChunk) of the range, one transaction each, heartbeating the progress after
     * every chunk. A retry after a worker crash starts at the chunk its previous attempt's last heartbeat names.
     */
    async backfillRollups(req: BackfillRollupsRequest): Promise<BackfillRollupsResult> {
      const ctx = Context.current();
      const chunks = chunksOf(req);
      const end = Math.min(req.endChunk, chunks.length);
      const previous = heartbeatFrom(ctx.info.heartbeatDetails);
      const resumed = previous !== undefined && previous.chunksDone > req.firstChunk;
      let done = resumed ? previous.chunksDone : req.firstChunk;
      let events = resumed ? previous.eventsProcessed : req.eventsProcessed;
      const details = (): BackfillHeartbeat => ({
        nextChunkStart: chunks[done]?.from ?? null,
        chunksDone: done,
        chunksTotal: chunks.length,
        eventsProcessed: events,
      });

      // Liveness while a chunk's statement runs; the details stay those of the last finished chunk.
      const keepAlive = setInterval(() => ctx.heartbeat(details()), keepAliveMs);
      try {
        ctx.heartbeat(details());
        while (done < end) {
          if (ctx.cancellationSignal.aborted) throw new CancelledFailure('backfill cancelled');
          const result = await rollUp(chunks[done]!, req.tenants, req.runId);
          done += 1;
          events += result.eventsProcessed;
          ctx.heartbeat(details());
        }
      } finally {
        clearInterval(keepAlive);
      }
      return {
        chunksDone: done,
        eventsProcessed: events,
        resumedAt: resumed ? previous.chunksDone : null,
        attempt: ctx.info.attempt,
      };
    },

    async latestRollupRuns(n: number): Promise<RollupRun[]> {
      return latestRollupRuns(pool, n);
    },
  };
}

function validWindow(window: TimeWindow): TimeWindow {
  try {
    return hourWindow(window.from, window.to);
  } catch (err) {
    if (err instanceof RollupWindowError)
      throw ApplicationFailure.nonRetryable(err.message, 'RollupWindowInvalid');
    throw err;
  }
}

function chunksOf(req: BackfillRollupsRequest): TimeWindow[] {
  try {
    return chunkWindows(req, req.chunkHours);
  } catch (err) {
    if (err instanceof RollupWindowError)
      throw ApplicationFailure.nonRetryable(err.message, 'RollupWindowInvalid');
    throw err;
  }
}

function heartbeatFrom(details: unknown): BackfillHeartbeat | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  const { chunksDone, eventsProcessed } = details as Partial<BackfillHeartbeat>;
  if (!Number.isInteger(chunksDone) || !Number.isInteger(eventsProcessed)) return undefined;
  return details as BackfillHeartbeat;
}
export type RollupActivities = ReturnType<typeof createRollupActivities>;
