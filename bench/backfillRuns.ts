// The three ways the backfill benchmark rolls events up (bare statement, billops' activity, naive loop) and the check that two agree.
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Client } from 'pg';
import {
  createRollupActivities,
  type BackfillRollupsRequest,
  type BackfillRollupsResult,
} from '../activities/usage/rollups';
import { createPool } from '../db/pool';
import { chunkWindows } from '../domain/rollups';
import type { Plan } from './backfillPlan';
import type { MemorySampler } from './memory';
import { benchClient, progress } from './support';

/** One INSERT … SELECT … GROUP BY of every event into the empty usage_rollups: what PostgreSQL itself needs. */
export async function bareInsertSelect(url: string, sampler: MemorySampler, plan: Plan) {
  const bare = benchClient(url, 'billops-bench-bare');
  await bare.connect();
  try {
    await sampler.refresh();
    sampler.enter('bare');
    progress('bare INSERT … SELECT … GROUP BY over every event');
    const t0 = performance.now();
    const inserted = await bare.query(
      `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count)
       SELECT tenant_id, meter, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
              sum(quantity), count(*)
       FROM usage_events
       WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz
       GROUP BY 1, 2, 3`,
      [plan.window.from, plan.window.to],
    );
    const ms = performance.now() - t0;
    sampler.memoryOf('bare', ['billops-bench-bare']);
    return { ms, rollups: inserted.rowCount ?? 0 };
  } finally {
    await bare.end();
  }
}

/** billops' backfill activity over the whole window, through billops' own pool (db/pool.ts). */
export async function billopsBackfill(url: string, sampler: MemorySampler, plan: Plan): Promise<BillopsRun> {
  const pool = createPool(url, { max: 2 });
  try {
    await pool.query('SELECT 1');
    await sampler.refresh();
    sampler.enter('billops');
    progress(
      `billops backfill: ${plan['chunk-hours']} h chunks, ${plan['chunks-per-call']} chunks per activity call`,
    );
    const t0 = performance.now();
    const run = await runBackfill(pool, plan);
    run.ms = performance.now() - t0;
    await sampler.refresh();
    sampler.memoryOf('billops', ['billops']);
    return run;
  } finally {
    await pool.end();
  }
}

export interface BillopsRun {
  events: number;
  chunks: number;
  calls: number;
  ms: number;
}

/**
 * The backfill as usageBackfillWorkflow drives it: one rollup run, then `backfillRollups` activity calls of
 * `chunks-per-call` chunks each until every chunk is done, in Temporal's activity context (MockActivityEnvironment:
 * heartbeats go nowhere, nothing is retried), then the run is marked succeeded.
 */
async function runBackfill(pool: ReturnType<typeof createPool>, plan: Plan): Promise<BillopsRun> {
  const activities = createRollupActivities({ pool });
  const chunkHours = plan['chunk-hours'];
  const chunksTotal = chunkWindows(plan.window, chunkHours).length;
  const runId = await activities.startRollupRun({
    ...plan.window,
    workflowId: 'bench-backfill',
    attempt: 1,
    startedAt: new Date().toISOString(),
  });
  const logger = new DefaultLogger('WARN');
  let chunksDone = 0;
  let events = 0;
  let calls = 0;
  let lastReport = 0;
  while (chunksDone < chunksTotal) {
    const env = new MockActivityEnvironment({ activityType: 'backfillRollups' }, { logger });
    env.on('heartbeat', (details: { chunksDone: number; eventsProcessed: number }) => {
      if (Date.now() - lastReport < 5_000) return;
      lastReport = Date.now();
      progress(`billops: ${details.chunksDone}/${chunksTotal} chunks, ${details.eventsProcessed} events`);
    });
    const request: BackfillRollupsRequest = {
      ...plan.window,
      chunkHours,
      firstChunk: chunksDone,
      endChunk: chunksDone + plan['chunks-per-call'],
      eventsProcessed: events,
      runId,
    };
    const result = await env.run<
      [BackfillRollupsRequest],
      BackfillRollupsResult,
      typeof activities.backfillRollups
    >(activities.backfillRollups, request);
    calls += 1;
    chunksDone = result.chunksDone;
    events = result.eventsProcessed;
  }
  await activities.finishRollupRun({
    runId,
    status: 'succeeded',
    eventsProcessed: events,
    finishedAt: new Date().toISOString(),
  });
  return { events, chunks: chunksTotal, calls, ms: 0 };
}

/**
 * The naive way: read the events in id order through a cursor (1 000 a fetch) and, per event, add its quantity to
 * its hourly row with an UPDATE, or INSERT the row when there is none; each statement commits on its own.
 */
export async function naiveLoop(url: string, events: number, sampler: MemorySampler): Promise<number> {
  const reader = benchClient(url, 'billops-bench-naive');
  const writer = benchClient(url, 'billops-bench-naive');
  await reader.connect();
  await writer.connect();
  await sampler.refresh();
  const hour = `date_trunc('hour', $3::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`;
  try {
    const t0 = performance.now();
    await reader.query('BEGIN');
    await reader.query(
      `DECLARE naive_events NO SCROLL CURSOR FOR
       SELECT tenant_id, meter, quantity::text AS quantity, occurred_at::text AS occurred_at
       FROM usage_events WHERE id <= ${Math.trunc(events)} ORDER BY id`,
    );
    for (;;) {
      const { rows } = await reader.query<{
        tenant_id: string;
        meter: string;
        quantity: string;
        occurred_at: string;
      }>('FETCH 1000 FROM naive_events');
      if (rows.length === 0) break;
      for (const e of rows) {
        const params = [e.tenant_id, e.meter, e.occurred_at, e.quantity];
        const updated = await writer.query(
          `UPDATE usage_rollups SET quantity = quantity + $4::numeric, event_count = event_count + 1, computed_at = now()
           WHERE tenant_id = $1 AND meter = $2 AND hour = ${hour}`,
          params,
        );
        if (updated.rowCount === 0) {
          await writer.query(
            `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, ${hour}, $4::numeric, 1)`,
            params,
          );
        }
      }
    }
    await reader.query('COMMIT');
    return performance.now() - t0;
  } finally {
    await reader.end();
    await writer.end();
  }
}

/** Fails unless usage_rollups holds exactly the rows of `expected`: same keys, same sum, same count. */
export async function expectSameRollups(admin: Client, expected: string, what: string): Promise<void> {
  const { rows } = await admin.query<{ missing: string; extra: string; rollups: string; expected: string }>(
    `SELECT
       (SELECT count(*) FROM (SELECT tenant_id, meter, hour, quantity, event_count FROM ${expected}
                              EXCEPT ALL
                              SELECT tenant_id, meter, hour, quantity, event_count FROM usage_rollups) AS m) AS missing,
       (SELECT count(*) FROM (SELECT tenant_id, meter, hour, quantity, event_count FROM usage_rollups
                              EXCEPT ALL
                              SELECT tenant_id, meter, hour, quantity, event_count FROM ${expected}) AS x) AS extra,
       (SELECT count(*) FROM usage_rollups) AS rollups,
       (SELECT count(*) FROM ${expected}) AS expected`,
  );
  const row = rows[0]!;
  if (row.missing !== '0' || row.extra !== '0' || row.rollups !== row.expected || row.rollups === '0') {
    throw new Error(
      `${what}: rollups differ (${row.missing} expected rows missing, ${row.extra} unexpected, ${row.rollups} vs ${row.expected} rows)`,
    );
  }
}
