// Usage backfill and the hourly rollup schedule on the dev server and real PostgreSQL: exact totals from 50k generated events, a worker killed mid-backfill.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection, ScheduleOverlapPolicy, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Pool, PoolClient } from 'pg';
import { latestRollupRuns } from '../../../db/usage';
import { ROLLUP_SCHEDULE_ID, ensureRollupSchedule, startBackfill } from '../../../temporal/usage';
import { createPool } from '../../../db/pool';
import { defaultPolicy, parsePolicy } from '../../../domain/policy';
import { rollupPolicyOf, type BackfillHeartbeat, type TimeWindow } from '../../../domain/rollups';
import { createBillopsWorker } from '../../../workers/createWorker';
import type { WorkerDependencies } from '../../../workers/dependencies';
import { backfillStatusQuery } from '../../../workflows/definitions';
import type { usageBackfillWorkflow } from '../../../workflows/usage/backfill';
import { insertTenant } from '../../support/dunningFixtures';
import { testEnv, workflowBundle } from '../../support/testRuntime';
import {
  expectedRollups,
  generateUsageEvents,
  insertUsageEvents,
  readRollups,
  type RollupRow,
  type TestUsageEvent,
} from '../../support/usageFixtures';
import { testWorkerDependencies } from '../../support/workerDeps';

const ROOT = resolve(__dirname, '../../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const WORKER_SCRIPT = join(ROOT, 'test/support/workerProcess.ts');
const HOUR = 3_600_000;
const WINDOW: TimeWindow = { from: '2026-10-05T00:00:00.000Z', to: '2026-10-08T00:00:00.000Z' };
const METERS = ['api.calls', 'compute.seconds', 'storage.gb_hours'];
const EVENT_COUNT = 50_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const hourAfterStart = (hours: number) => new Date(Date.parse(WINDOW.from) + hours * HOUR).toISOString();

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

/** A session holding one rollup row in an open transaction: any rollup of that row waits until it lets go. */
async function holdRollupRow(pool: Pool, row: RollupRow): Promise<{ release(): Promise<void> }> {
  const session: PoolClient = await pool.connect();
  await session.query('BEGIN');
  const { rowCount } = await session.query(
    'SELECT 1 FROM usage_rollups WHERE tenant_id = $1 AND meter = $2 AND hour = $3 FOR UPDATE',
    [row.tenantId, row.meter, row.hour],
  );
  expect(rowCount).toBe(1);
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      await session.query('ROLLBACK');
      session.release();
    },
  };
}

/** The backfill activity's last heartbeat as the server has it. */
async function lastHeartbeat(
  handle: WorkflowHandle<typeof usageBackfillWorkflow>,
): Promise<BackfillHeartbeat | undefined> {
  const { raw } = await handle.describe();
  const payload = raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload<BackfillHeartbeat>(payload as Payload) : undefined;
}

// ---- Worker processes: production wiring (test/support/workerProcess.ts), killed with SIGKILL ----

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
}

function spawnWorker(name: string, taskQueue: string, logDir: string): WorkerProcess {
  const logFile = join(logDir, `${name}.log`);
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [TSX, WORKER_SCRIPT], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_ADDRESS: testEnv('temporalAddress'),
      BILLOPS_TASK_QUEUE: taskQueue,
      DATABASE_URL: testEnv('databaseUrl'),
      SMTP_URL: testEnv('smtpUrl'),
      DECISIONS_LOG_PATH: join(logDir, 'DECISIONS.log'),
      BILLOPS_TEST_WORKFLOW_BUNDLE: testEnv('workflowBundle'),
    },
    stdio: ['ignore', out, out],
    // tsx runs the script in a second node process: killing the group reaches both.
    detached: true,
  });
  closeSync(out);
  const exited = new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    child.once('exit', () => done());
    child.once('error', () => done());
  });
  return { name, child, logFile, exited };
}

const logOf = (worker: WorkerProcess) =>
  existsSync(worker.logFile) ? readFileSync(worker.logFile, 'utf8') : '';

async function waitUntilReady(worker: WorkerProcess): Promise<void> {
  await eventually(
    `${worker.name} printing "worker ready"`,
    async () => {
      if (worker.child.exitCode !== null) throw new Error(`${worker.name} exited before it was ready`);
      return /worker ready pid=\d+/.test(logOf(worker)) ? true : undefined;
    },
    30_000,
  );
}

async function killWorker(worker: WorkerProcess): Promise<void> {
  const pid = worker.child.pid;
  if (pid === undefined || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  await worker.exited;
}

describe('usage backfill over 50k generated events', () => {
  const taskQueue = `backfill-${randomUUID()}`;
  const logDir = mkdtempSync(join(tmpdir(), 'billops-backfill-'));
  const processes: WorkerProcess[] = [];
  let pool: Pool;
  let deps: WorkerDependencies;
  let nativeConnection: NativeConnection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;
  let tenants: string[];
  let events: TestUsageEvent[];
  let expected: RollupRow[];
  let inWindow: number;

  beforeAll(async () => {
    pool = createPool(testEnv('databaseUrl'), { max: 4 });
    deps = testWorkerDependencies();
    nativeConnection = await NativeConnection.connect({ address: testEnv('temporalAddress') });
    client = new Client({ connection: await Connection.connect({ address: testEnv('temporalAddress') }) });
    worker = await createBillopsWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      deps,
      workflowBundle: workflowBundle(),
    });
    running = worker.run();

    tenants = [];
    for (let i = 0; i < 3; i++) tenants.push((await insertTenant(pool, 'pro')).id);
    events = generateUsageEvents({
      tenants,
      meters: METERS,
      window: WINDOW,
      count: EVENT_COUNT,
      seed: 20261005,
    });
    await insertUsageEvents(pool, events);
    expected = expectedRollups(events, WINDOW, tenants);
    inWindow = expected.reduce((n, r) => n + r.eventCount, 0);
  });

  afterAll(async () => {
    for (const child of processes) await killWorker(child);
    worker?.shutdown();
    await running;
    await client?.connection.close();
    await nativeConnection?.close();
    await deps?.close();
    await pool?.end();
    rmSync(logDir, { recursive: true, force: true });
  });

  it('recomputes the exact hourly totals, and a second run gives identical rollups', async () => {
    // Every hour has events, and the events on and just outside the edges are in the data set.
    expect(expected).toHaveLength(3 * 3 * 72);
    expect(inWindow).toBe(EVENT_COUNT + 3 * 3);

    const first = await startBackfill(client, taskQueue, { ...WINDOW, tenants, chunkHours: 6 });
    expect(await first.result()).toEqual({ window: WINDOW, chunks: 12, eventsProcessed: inWindow });
    expect(await first.query(backfillStatusQuery)).toMatchObject({
      state: 'succeeded',
      chunksDone: 12,
      chunksTotal: 12,
      percent: 100,
      eventsProcessed: inWindow,
      resumes: [],
    });
    const rollups = await readRollups(pool, tenants);
    expect(rollups).toEqual(expected);

    const second = await startBackfill(client, taskQueue, { ...WINDOW, tenants, chunkHours: 6 });
    expect(second.workflowId).toBe(first.workflowId);
    expect(second.firstExecutionRunId).not.toBe(first.firstExecutionRunId);
    expect(await second.result()).toEqual({ window: WINDOW, chunks: 12, eventsProcessed: inWindow });
    expect(await readRollups(pool, tenants)).toEqual(rollups);

    // "Verify aggregation job status": both backfills are rollup runs, succeeded, with their event counts.
    const runs = (await latestRollupRuns(pool, 100)).filter((r) => r.workflowId === first.workflowId);
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run).toMatchObject({
        windowStart: WINDOW.from,
        windowEnd: WINDOW.to,
        status: 'succeeded',
        attempt: 1,
        eventsProcessed: inWindow,
        error: null,
      });
    }
  }, 60_000);

  it('resumes from the last finished chunk after its worker is killed, and ends with the exact totals', async () => {
    const queue = `backfill-kill-${randomUUID()}`;
    const stuckAt = 44;
    const blocker = expected.find((r) => r.tenantId === tenants[0] && r.hour === hourAfterStart(stuckAt))!;
    // Chunk 44's statement waits on this row, so the kill lands in the middle of an activity call.
    const held = await holdRollupRow(pool, blocker);
    try {
      const workerA = spawnWorker('worker-a', queue, logDir);
      processes.push(workerA);
      await waitUntilReady(workerA);
      const request = { ...WINDOW, tenants, chunkHours: 1, chunksPerCall: 8 };
      const handle = await startBackfill(client, queue, request);

      // Chunks 40..43 belong to the call in flight: the status query knows 40 of 72, the heartbeat knows 44.
      const percents = new Set<number>();
      const heartbeat = await eventually(
        'worker A heartbeating chunk 44 as next',
        async () => {
          percents.add((await handle.query(backfillStatusQuery)).percent);
          const details = await lastHeartbeat(handle);
          return details?.chunksDone === stuckAt ? details : undefined;
        },
        30_000,
      );
      expect(heartbeat).toEqual({
        nextChunkStart: blocker.hour,
        chunksDone: stuckAt,
        chunksTotal: 72,
        eventsProcessed: expected.filter((r) => r.hour < blocker.hour).reduce((n, r) => n + r.eventCount, 0),
      });
      const during = await handle.query(backfillStatusQuery);
      expect(during).toMatchObject({ state: 'running', chunksDone: 40, chunksTotal: 72, percent: 55 });
      percents.add(during.percent);
      expect([...percents].some((p) => p > 0 && p < 100)).toBe(true);
      // Asking again for the same backfill while it runs reaches the running one.
      expect((await startBackfill(client, queue, request)).firstExecutionRunId).toBe(
        handle.firstExecutionRunId,
      );

      const killedAt = (await pool.query<{ now: Date }>('SELECT clock_timestamp() AS now')).rows[0]!.now;
      await killWorker(workerA);
      expect(workerA.child.signalCode).toBe('SIGKILL');
      await held.release();

      const workerB = spawnWorker('worker-b', queue, logDir);
      processes.push(workerB);
      await waitUntilReady(workerB);
      expect(await handle.result()).toEqual({ window: WINDOW, chunks: 72, eventsProcessed: inWindow });

      const status = await handle.query(backfillStatusQuery);
      expect(status).toMatchObject({
        state: 'succeeded',
        percent: 100,
        resumes: [{ chunk: stuckAt, attempt: 2 }],
      });
      expect(await readRollups(pool, tenants)).toEqual(expected);

      // Every rollup is this backfill's; the hours before chunk 44 were not redone after the kill, the rest were.
      const { rows } = await pool.query<{ hour: Date; run_id: string | number; after_kill: boolean }>(
        'SELECT hour, run_id, computed_at > $2 AS after_kill FROM usage_rollups WHERE tenant_id = ANY ($1)',
        [tenants, killedAt],
      );
      expect(new Set(rows.map((r) => Number(r.run_id)))).toEqual(new Set([status.runId]));
      const wrong = rows.filter((r) => r.after_kill !== r.hour.toISOString() >= blocker.hour);
      expect(wrong).toEqual([]);
    } catch (err) {
      for (const child of processes) console.log(`---- ${child.logFile} ----\n${logOf(child)}`);
      throw err;
    } finally {
      await held.release();
    }
  }, 90_000);

  it('for a tenant subset recomputes only those tenants: gone events, late events and a wrong total', async () => {
    const [repaired, untouched] = [tenants[1]!, tenants[2]!];
    const withdrawnHour = hourAfterStart(10);
    await pool.query(
      `DELETE FROM usage_events WHERE tenant_id = $1 AND meter = $2 AND occurred_at >= $3 AND occurred_at < $4`,
      [repaired, METERS[0], withdrawnHour, hourAfterStart(11)],
    );
    events = events.filter(
      (e) =>
        !(
          e.tenantId === repaired &&
          e.meter === METERS[0] &&
          e.occurredAt >= Date.parse(withdrawnHour) &&
          e.occurredAt < Date.parse(hourAfterStart(11))
        ),
    );
    const late: TestUsageEvent[] = [1, 2, 3].map((minute) => ({
      tenantId: repaired,
      meter: 'late.meter',
      milli: BigInt(minute * 1001),
      occurredAt: Date.parse(hourAfterStart(20)) + minute * 60_000,
      key: `late-${minute}`,
    }));
    await insertUsageEvents(pool, late);
    events.push(...late);
    const wrongHour = hourAfterStart(30);
    await pool.query(
      `UPDATE usage_rollups SET quantity = 0 WHERE tenant_id = ANY ($1) AND meter = $2 AND hour = $3`,
      [[repaired, untouched], METERS[1], wrongHour],
    );

    const handle = await startBackfill(client, taskQueue, { ...WINDOW, tenants: [repaired], chunkHours: 24 });
    const outcome = await handle.result();
    const repairedExpected = expectedRollups(events, WINDOW, [repaired]);
    expect(outcome).toEqual({
      window: WINDOW,
      chunks: 3,
      eventsProcessed: repairedExpected.reduce((n, r) => n + r.eventCount, 0),
    });
    expect(await readRollups(pool, [repaired])).toEqual(repairedExpected);
    expect(repairedExpected.some((r) => r.hour === withdrawnHour && r.meter === METERS[0])).toBe(false);
    expect(repairedExpected.filter((r) => r.meter === 'late.meter')).toEqual([
      { tenantId: repaired, meter: 'late.meter', hour: hourAfterStart(20), quantity: '6.006', eventCount: 3 },
    ]);
    // The other tenant keeps its wrong total: the backfill was not asked to touch it.
    expect(await readRollups(pool, [untouched])).toEqual(
      expectedRollups(events, WINDOW, [untouched]).map((r) =>
        r.meter === METERS[1] && r.hour === wrongHour ? { ...r, quantity: '0' } : r,
      ),
    );
  }, 60_000);

  it('a scheduled run rolls up the hours before the time it was due, even when it runs later', async () => {
    const tenant = tenants[0]!;
    const before = await readRollups(pool, [tenant]);
    const scheduleId = `usage-rollup-scoped-${randomUUID()}`;
    const handle = await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '1 hour', offset: '5 minutes' }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'usageRollupWorkflow',
        workflowId: scheduleId,
        taskQueue,
        args: [{ lookbackHours: 2, tenants: [tenant], policy: rollupPolicyOf(defaultPolicy) }],
      },
      policies: { overlap: ScheduleOverlapPolicy.ALLOW_ALL },
      state: { paused: true },
    });
    try {
      // Catch up the runs due at 05:05 and 06:05 on the first day of the data set.
      await handle.backfill({
        start: new Date(hourAfterStart(5)),
        end: new Date(Date.parse(hourAfterStart(6)) + 10 * 60_000),
        overlap: ScheduleOverlapPolicy.ALLOW_ALL,
      });
      const runs = await eventually(
        'both caught-up runs succeeding',
        async () => {
          const mine = (await latestRollupRuns(pool, 200)).filter((r) =>
            r.workflowId?.startsWith(scheduleId),
          );
          return mine.length === 2 && mine.every((r) => r.status === 'succeeded') ? mine : undefined;
        },
        30_000,
      );
      expect(runs.map((r) => `${r.windowStart}..${r.windowEnd}`).sort()).toEqual([
        `${hourAfterStart(3)}..${hourAfterStart(5)}`,
        `${hourAfterStart(4)}..${hourAfterStart(6)}`,
      ]);
      expect(await readRollups(pool, [tenant])).toEqual(before);
    } finally {
      await handle.delete();
    }
  }, 60_000);
});

describe('ensureRollupSchedule', () => {
  let client: Client;

  beforeAll(async () => {
    client = new Client({ connection: await Connection.connect({ address: testEnv('temporalAddress') }) });
  });
  afterAll(async () => {
    await client?.connection.close();
  });

  it('creates the hourly schedule, and on a second call brings it up to date keeping an operator pause', async () => {
    // No worker polls this queue: a run started by the clock during the test would wait, not roll up.
    const taskQueue = `rollup-schedule-${randomUUID()}`;
    const handle = await ensureRollupSchedule(client, taskQueue);
    try {
      expect(handle.scheduleId).toBe(ROLLUP_SCHEDULE_ID);
      await handle.pause('paused by the test');
      let description = await handle.describe();
      expect(description.spec.intervals).toEqual([{ every: HOUR, offset: 5 * 60_000 }]);
      expect(description.policies.overlap).toBe(ScheduleOverlapPolicy.ALLOW_ALL);
      expect(description.action).toMatchObject({
        type: 'startWorkflow',
        workflowType: 'usageRollupWorkflow',
        taskQueue,
        args: [{ lookbackHours: 2, policy: rollupPolicyOf(defaultPolicy) }],
      });

      const policy = parsePolicy({
        version: 'test-policy',
        usageAggregationRetry: { everyHours: 3, forHours: 24 },
      });
      const again = await ensureRollupSchedule(client, taskQueue, { policy });
      expect(again.scheduleId).toBe(ROLLUP_SCHEDULE_ID);
      description = await handle.describe();
      expect(description.action).toMatchObject({
        args: [
          {
            lookbackHours: 2,
            policy: { version: 'test-policy', usageAggregationRetry: { everyHours: 3, forHours: 24 } },
          },
        ],
      });
      expect(description.state.paused).toBe(true);
    } finally {
      await handle.delete();
    }
  });
});
