// Benchmark: backfill of N usage events (10 million by default) through billops' real backfill activity, against one
// bare INSERT … SELECT … GROUP BY over the same rows on the same server and a naive per-event upsert loop.
import { DefaultLogger } from '@temporalio/worker';
import { MockActivityEnvironment } from '@temporalio/testing';
import { loadavg } from 'node:os';
import type { Client } from 'pg';
import {
  createRollupActivities,
  type BackfillRollupsRequest,
  type BackfillRollupsResult,
} from '../activities/usage/rollups';
import { createPool } from '../db/pool';
import { DEFAULT_CHUNKS_PER_CALL, HOUR_MS, chunkWindows, type TimeWindow } from '../domain/rollups';
import {
  MemorySampler,
  benchClient,
  machine,
  openScratchDatabase,
  parseNumberOptions,
  progress,
  round,
  type ScratchDatabase,
} from './support';

export const GOALS = { billopsOverBare: 0.8, billopsOverNaive: 50 } as const;

/** 30 days of data ending where October 2026 starts; every event falls inside. */
const WINDOW_START = Date.parse('2026-09-01T00:00:00.000Z');
const METERS = ['api.calls', 'compute.seconds', 'storage.gb_hours', 'egress.gb'];
/** Events generated per INSERT statement; two statements run at once. */
const GENERATE_BATCH = 1_000_000;

const OPTIONS = {
  events: { min: 1_000, default: 10_000_000 },
  // Tenant ids are bench-t0000 … bench-t9999.
  tenants: { min: 1, max: 10_000, default: 100 },
  days: { min: 1, max: 3_650, default: 30 },
  'chunk-hours': { min: 1, default: 24 },
  'chunks-per-call': { min: 1, default: DEFAULT_CHUNKS_PER_CALL },
  'naive-events': { min: 100, default: 20_000 },
  repeat: { min: 1, default: 2 },
};

export const BACKFILL_USAGE =
  'npm run bench -- backfill [--events N] [--tenants N] [--days N] [--chunk-hours N] [--chunks-per-call N] [--naive-events N] [--repeat N]';

interface Timed {
  seconds: number;
  rowsPerSecond: number;
}

const timed = (events: number, ms: number): Timed => ({
  seconds: round(ms / 1000),
  rowsPerSecond: Math.round(events / (ms / 1000)),
});

/** Runs the benchmark and prints its JSON line on stdout; progress goes to stderr. */
export async function backfillBench(argv: string[]): Promise<Record<string, unknown>> {
  const opts = parseNumberOptions(argv, OPTIONS);
  const naiveEvents = Math.min(opts['naive-events'], opts.events);
  const window: TimeWindow = {
    from: new Date(WINDOW_START).toISOString(),
    to: new Date(WINDOW_START + opts.days * 24 * HOUR_MS).toISOString(),
  };
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const db = await openScratchDatabase('billops_bench_backfill');
  let sampler: MemorySampler | undefined;
  try {
    sampler = await MemorySampler.start(db.url);
    const result = await measure(db, sampler, { ...opts, naiveEvents, window });
    const node = sampler.nodeOverall();
    const line = {
      bench: 'backfill',
      events: opts.events,
      ...result,
      peakRssMiB: node.sampledPeakRssMiB,
      maxRssMiB: node.maxRssMiB,
      goals: GOALS,
      database: { where: db.description, postgres: db.serverVersion, ...db.settings },
      machine: machine(loadAtStart),
      totalSeconds: round((Date.now() - started) / 1000, 1),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return line;
  } finally {
    await sampler?.stop();
    await db.close();
  }
}

interface Plan {
  events: number;
  tenants: number;
  'chunk-hours': number;
  'chunks-per-call': number;
  naiveEvents: number;
  repeat: number;
  window: TimeWindow;
}

async function measure(db: ScratchDatabase, sampler: MemorySampler, plan: Plan) {
  const admin = benchClient(db.url, 'billops-bench-admin');
  await admin.connect();
  try {
    sampler.enter('generate');
    const generateMs = await generateEvents(db.url, admin, plan);
    progress('VACUUM ANALYZE usage_events');
    await admin.query('VACUUM ANALYZE usage_events');
    await checkpoint(admin);

    // Bare statement and billops take turns, each on an empty usage_rollups; the best run of each is compared,
    // so a burst of load from elsewhere on the machine weighs on neither side alone.
    const bareMs: number[] = [];
    const billopsMs: number[] = [];
    let rollups = 0;
    let billopsRun: BillopsRun | undefined;
    for (let turn = 1; turn <= plan.repeat; turn++) {
      const bare = await bareInsertSelect(db.url, sampler, plan);
      bareMs.push(bare.ms);
      rollups = bare.rollups;
      progress(`bare run ${turn}: ${rollups} rollups in ${(bare.ms / 1000).toFixed(1)} s`);
      if (turn === 1) {
        await admin.query(
          `CREATE TABLE bench_baseline AS SELECT tenant_id, meter, hour, quantity, event_count FROM usage_rollups`,
        );
      }
      await admin.query('TRUNCATE usage_rollups');
      await checkpoint(admin);

      billopsRun = await billopsBackfill(db.url, sampler, plan);
      billopsMs.push(billopsRun.ms);
      progress(`billops run ${turn}: ${billopsRun.events} events in ${(billopsRun.ms / 1000).toFixed(1)} s`);
      sampler.enter('verify');
      if (billopsRun.events !== plan.events) {
        throw new Error(
          `billops reports ${billopsRun.events} events processed, ${plan.events} were generated`,
        );
      }
      await expectSameRollups(admin, 'bench_baseline', 'billops backfill vs bare INSERT … SELECT');
      progress('billops rollups equal the bare statement’s (sum and count of every tenant, meter and hour)');
      await admin.query('TRUNCATE usage_rollups');
      await checkpoint(admin);
    }

    // ---- Naive loop: one UPDATE (else INSERT) per event, on the first events ----
    sampler.enter('naive');
    progress(`naive per-event loop over the first ${plan.naiveEvents} events`);
    const naiveMs = await naiveLoop(db.url, plan.naiveEvents, sampler);
    const naiveMemory = sampler.memoryOf('naive', ['billops-bench-naive']);
    await admin.query(
      `CREATE TABLE bench_naive_expected AS
       SELECT tenant_id, meter, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
              sum(quantity) AS quantity, count(*) AS event_count
       FROM usage_events WHERE id <= ${Math.trunc(plan.naiveEvents)} GROUP BY 1, 2, 3`,
    );
    await expectSameRollups(admin, 'bench_naive_expected', 'naive loop vs GROUP BY of the same events');
    progress(`naive: ${plan.naiveEvents} events in ${(naiveMs / 1000).toFixed(1)} s, rollups verified`);

    const billops = timed(plan.events, Math.min(...billopsMs));
    const bareTimed = timed(plan.events, Math.min(...bareMs));
    const naive = timed(plan.naiveEvents, naiveMs);
    const ratios = {
      billopsOverBare: round(billops.rowsPerSecond / bareTimed.rowsPerSecond),
      billopsOverNaive: round(billops.rowsPerSecond / naive.rowsPerSecond, 1),
    };
    const runs = (ms: number[]) => ms.map((m) => round(m / 1000));
    return {
      window: plan.window,
      tenants: plan.tenants,
      meters: METERS.length,
      rollups,
      generateSeconds: round(generateMs / 1000, 1),
      billops: {
        ...billops,
        runsSeconds: runs(billopsMs),
        chunkHours: plan['chunk-hours'],
        chunks: billopsRun!.chunks,
        activityCalls: billopsRun!.calls,
        ...sampler.memoryOf('billops', ['billops']),
      },
      bareInsertSelect: {
        ...bareTimed,
        runsSeconds: runs(bareMs),
        ...sampler.memoryOf('bare', ['billops-bench-bare']),
      },
      naiveLoop: {
        events: plan.naiveEvents,
        ...naive,
        subset: `the first ${plan.naiveEvents} events by id (time order)`,
        comparedBy: 'rows per second (its subset vs billops over every event)',
        ...naiveMemory,
      },
      ratios,
      goalsMet: {
        billopsOverBare: ratios.billopsOverBare >= GOALS.billopsOverBare,
        billopsOverNaive: ratios.billopsOverNaive >= GOALS.billopsOverNaive,
      },
      verified: true,
      bestOf: plan.repeat,
      postgresMemoryReadable: sampler.procReadable,
    };
  } finally {
    await admin.end();
  }
}

/** One INSERT … SELECT … GROUP BY of every event into the empty usage_rollups: what PostgreSQL itself needs. */
async function bareInsertSelect(url: string, sampler: MemorySampler, plan: Plan) {
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
async function billopsBackfill(url: string, sampler: MemorySampler, plan: Plan): Promise<BillopsRun> {
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

/** Flushes dirty pages between steps so no step pays for the previous one's; refused without the privilege, then skipped. */
async function checkpoint(admin: Client): Promise<void> {
  await admin.query('CHECKPOINT').catch(() => undefined);
}

/**
 * Tenants × meters × timestamps, set-based with generate_series and deterministic: event i (id i + 1) happens at
 * window start + i/N of the window plus under a second of jitter; its tenant, meter and quantity (whole thousandths,
 * below 100) come from hashint8extended(i). Loaded like a bulk import: usage_events' secondary indexes and its
 * unique and foreign-key constraints are dropped, the rows inserted by two sessions at once, then everything is
 * rebuilt from its own catalog definition and checked to be exactly as the migrations made it.
 */
async function generateEvents(url: string, admin: Client, plan: Plan): Promise<number> {
  const t0 = performance.now();
  progress(
    `generating ${plan.events} events: ${plan.tenants} tenants × ${METERS.length} meters over ${plan.window.from}..${plan.window.to}`,
  );
  await admin.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email)
     SELECT 'bench-t' || lpad(t::text, 4, '0'), 'Bench tenant ' || t, 'pro',
            'ops+' || t || '@bench.example', 'billing+' || t || '@bench.example'
     FROM generate_series(0, $1::int - 1) AS t`,
    [plan.tenants],
  );
  const schemaBefore = await schemaOf(admin);
  const rebuild = await dropForLoad(admin);
  const spanMs = Date.parse(plan.window.to) - Date.parse(plan.window.from);
  const batches: Array<[number, number]> = [];
  for (let lo = 0; lo < plan.events; lo += GENERATE_BATCH) {
    batches.push([lo, Math.min(lo + GENERATE_BATCH, plan.events) - 1]);
  }
  let done = 0;
  await inParallel(url, 2, async (client) => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      await client.query(
        `INSERT INTO usage_events (id, tenant_id, meter, quantity, occurred_at, idempotency_key, received_at)
         OVERRIDING SYSTEM VALUE
         SELECT i + 1, 'bench-t' || lpad((h % $4)::text, 4, '0'), ($5::text[])[((h / 1000003) % $6)::int + 1],
                ((h / 7919) % 100000) * 0.001, at, 'bench-' || i, at + interval '2 seconds'
         FROM generate_series($1::bigint, $2::bigint) AS i,
              LATERAL (SELECT hashint8extended(i, 20261122) & 9223372036854775807 AS h) AS hashed,
              LATERAL (SELECT $7::timestamptz + interval '1 millisecond' *
                         least(i * $8::bigint / $3::bigint + (h / 13) % 1000, $8::bigint - 1) AS at) AS timed`,
        [batch[0], batch[1], plan.events, plan.tenants, METERS, METERS.length, plan.window.from, spanMs],
      );
      done += batch[1] - batch[0] + 1;
      progress(`generated ${done}/${plan.events} events`);
    }
  });
  await admin.query(`SELECT setval(pg_get_serial_sequence('usage_events', 'id'), $1)`, [plan.events]);
  progress(`rebuilding ${rebuild.indexes.length} indexes and ${rebuild.constraints.length} constraints`);
  const indexes = [...rebuild.indexes];
  await inParallel(url, 2, async (client) => {
    for (let sql = indexes.shift(); sql; sql = indexes.shift()) await client.query(sql);
  });
  for (const sql of rebuild.constraints) await admin.query(sql);
  const schemaAfter = await schemaOf(admin);
  if (schemaAfter !== schemaBefore) {
    throw new Error(
      `usage_events differs from its migrated definition after the load:\n${schemaBefore}\n---\n${schemaAfter}`,
    );
  }
  return performance.now() - t0;
}

/** Runs `work` on `sessions` connections at once. */
async function inParallel(
  url: string,
  sessions: number,
  work: (client: Client) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const client = benchClient(url, 'billops-bench-generate');
      await client.connect();
      try {
        await work(client);
      } finally {
        await client.end();
      }
    }),
  );
}

/** Every index and constraint of usage_events, as PostgreSQL prints them. */
async function schemaOf(admin: Client): Promise<string> {
  const { rows } = await admin.query<{ def: string }>(
    `SELECT 'index ' || pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = 'usage_events'::regclass
     UNION ALL
     SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END
     FROM pg_constraint WHERE conrelid = 'usage_events'::regclass
     ORDER BY 1`,
  );
  return rows.map((row) => row.def).join('\n');
}

/**
 * Drops what slows a bulk insert (every index but the primary key, unique and foreign-key constraints) and returns
 * the statements that put each back: indexes first (unique constraints as an index, then attached to it), then the
 * constraints. Anything that cannot be dropped (another table's key depends on it) stays.
 */
async function dropForLoad(admin: Client): Promise<{ indexes: string[]; constraints: string[] }> {
  const { rows } = await admin.query<{
    kind: 'index' | 'unique' | 'foreign';
    name: string;
    index_def: string | null;
    constraint_def: string | null;
  }>(
    `SELECT 'index' AS kind, c.relname AS name, pg_get_indexdef(i.indexrelid) AS index_def, NULL AS constraint_def
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'usage_events'::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
     UNION ALL
     SELECT CASE k.contype WHEN 'u' THEN 'unique' ELSE 'foreign' END, k.conname,
            CASE k.contype WHEN 'u' THEN pg_get_indexdef(k.conindid) END, pg_get_constraintdef(k.oid)
     FROM pg_constraint k
     WHERE k.conrelid = 'usage_events'::regclass AND k.contype IN ('u', 'f') AND k.convalidated`,
  );
  const indexes: string[] = [];
  const constraints: string[] = [];
  const attach: string[] = [];
  for (const row of rows) {
    const name = `"${row.name.replace(/"/g, '""')}"`;
    try {
      if (row.kind === 'index') {
        await admin.query(`DROP INDEX ${name}`);
        indexes.push(row.index_def!);
      } else {
        await admin.query(`ALTER TABLE usage_events DROP CONSTRAINT ${name}`);
        if (row.kind === 'unique') {
          indexes.push(row.index_def!);
          attach.push(`ALTER TABLE usage_events ADD CONSTRAINT ${name} UNIQUE USING INDEX ${name}`);
        } else {
          constraints.push(`ALTER TABLE usage_events ADD CONSTRAINT ${name} ${row.constraint_def!}`);
        }
      }
    } catch (err) {
      progress(
        `keeping ${row.kind} ${row.name} during the load: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  return { indexes, constraints: [...attach, ...constraints] };
}

interface BillopsRun {
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
async function naiveLoop(url: string, events: number, sampler: MemorySampler): Promise<number> {
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
async function expectSameRollups(admin: Client, expected: string, what: string): Promise<void> {
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

if (require.main === module) {
  backfillBench(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
