// Benchmark: backfill of N usage events (10 million by default) through billops' real backfill activity, against one
// bare INSERT … SELECT … GROUP BY over the same rows on the same server and a naive per-event upsert loop.
import { loadavg } from 'node:os';
import type { Client } from 'pg';
import { generateEvents } from './backfillGenerate';
import { METERS, readPlan, type Plan } from './backfillPlan';
import {
  bareInsertSelect,
  billopsBackfill,
  expectSameRollups,
  naiveLoop,
  type BillopsRun,
} from './backfillRuns';
import { MemorySampler } from './memory';
import { openScratchDatabase, type ScratchDatabase } from './scratchDatabase';
import { benchClient, machine, progress, round } from './support';

export const GOALS = { billopsOverBare: 0.8, billopsOverNaive: 50 } as const;

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
  const plan = readPlan(argv);
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const db = await openScratchDatabase('billops_bench_backfill');
  let sampler: MemorySampler | undefined;
  try {
    sampler = await MemorySampler.start(db.url);
    const result = await measure(db, sampler, plan);
    const node = sampler.nodeOverall();
    const line = {
      bench: 'backfill',
      events: plan.events,
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

/** Flushes dirty pages between steps so no step pays for the previous one's; refused without the privilege, then skipped. */
async function checkpoint(admin: Client): Promise<void> {
  await admin.query('CHECKPOINT').catch(() => undefined);
}

if (require.main === module) {
  backfillBench(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
