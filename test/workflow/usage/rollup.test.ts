// The hourly usage rollup job on the time-skipping server with the real policy: reruns every 2 hours for 48 hours, each attempt in rollup_runs.
import { randomUUID } from 'node:crypto';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import type { Pool, PoolClient } from 'pg';
import { createRollupActivities } from '../../../activities/usage/rollups';
import { createPool } from '../../../db/pool';
import { defaultPolicy } from '../../../domain/policy';
import {
  previousHours,
  rollupPolicyOf,
  type TimeWindow,
  type UsageRollupInput,
} from '../../../domain/rollups';
import { overageStatusQuery, rollupStatusQuery } from '../../../workflows/definitions';
import { usageRollupWorkflow } from '../../../workflows/usage/rollup';
import { insertTenant } from '../../support/dunningFixtures';
import { testEnv } from '../../support/testRuntime';
import { startTimeSkipping, type TimeSkipping } from '../../support/timeSkipping';
import {
  expectedRollups,
  generateUsageEvents,
  insertUsageEvents,
  readRollups,
  type TestUsageEvent,
} from '../../support/usageFixtures';

const HOUR = 3_600_000;
const WINDOW: TimeWindow = { from: '2026-11-01T10:00:00.000Z', to: '2026-11-01T12:00:00.000Z' };
const METERS = ['api.calls', 'storage.gb_hours'];

let ts: TimeSkipping;
let pool: Pool;

beforeAll(async () => {
  ts = await startTimeSkipping();
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
});

afterAll(async () => {
  await pool?.end();
  await ts?.close();
});

/** The rollup activities alone, waiting at most 200 ms for a locked row so a blocked attempt fails fast. */
async function rollupWorker(taskQueue: string): Promise<Worker> {
  return Worker.create({
    connection: ts.env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: ts.bundle,
    activities: createRollupActivities({ pool, lockTimeoutMs: 200 }),
  });
}

async function tenantWithEvents(): Promise<{ tenantId: string; events: TestUsageEvent[] }> {
  const { id } = await insertTenant(pool, 'pro');
  const events = generateUsageEvents({ tenants: [id], meters: METERS, window: WINDOW, count: 400, seed: 7 });
  await insertUsageEvents(pool, events);
  return { tenantId: id, events };
}

/** A session that holds one rollup row (a stale value) in an open transaction: the rollup blocks on it and fails. */
async function holdRollupRow(
  tenantId: string,
  meter: string,
  hour: string,
): Promise<{ release(): Promise<void> }> {
  await pool.query(
    `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, 1, 1)
     ON CONFLICT (tenant_id, meter, hour) DO UPDATE SET quantity = 1, event_count = 1`,
    [tenantId, meter, hour],
  );
  const session: PoolClient = await pool.connect();
  await session.query('BEGIN');
  await session.query(
    'SELECT 1 FROM usage_rollups WHERE tenant_id = $1 AND meter = $2 AND hour = $3 FOR UPDATE',
    [tenantId, meter, hour],
  );
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

interface RunRow {
  attempt: number;
  status: string;
  hoursAfterFirst: number;
  error: string | null;
  eventsProcessed: number | null;
}

async function runsOf(workflowId: string): Promise<RunRow[]> {
  const { rows } = await pool.query<{
    attempt: number;
    status: string;
    started_at: Date;
    error: string | null;
    events_processed: string | number | null;
  }>(
    'SELECT attempt, status, started_at, error, events_processed FROM rollup_runs WHERE workflow_id = $1 ORDER BY attempt',
    [workflowId],
  );
  const first = rows[0]?.started_at.getTime() ?? 0;
  return rows.map((r) => ({
    attempt: r.attempt,
    status: r.status,
    // Workflow-clock offsets carry the few real milliseconds a timer takes to fire: compare to the second.
    hoursAfterFirst: Math.round((r.started_at.getTime() - first) / 1000) / 3600,
    error: r.error,
    eventsProcessed: r.events_processed === null ? null : Number(r.events_processed),
  }));
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: never happened`);
}

const input = (tenantId: string, window?: TimeWindow): UsageRollupInput => ({
  ...(window ? { window } : {}),
  lookbackHours: 2,
  tenants: [tenantId],
  policy: rollupPolicyOf(defaultPolicy),
});

describe('usageRollupWorkflow on the time-skipping server', () => {
  it('reruns a failed rollup every 2 hours for 48 hours, records each attempt, then fails the job', async () => {
    const { tenantId } = await tenantWithEvents();
    const taskQueue = `rollup-${randomUUID()}`;
    const workflowId = `usage-rollup-exhausted-${tenantId}`;
    const worker = await rollupWorker(taskQueue);
    const held = await holdRollupRow(tenantId, METERS[0]!, WINDOW.from);
    try {
      const handle = await ts.env.client.workflow.start(usageRollupWorkflow, {
        workflowId,
        taskQueue,
        args: [input(tenantId, WINDOW)],
      });
      const { failure, status } = await worker.runUntil(async () => {
        const failure = await handle.result().then(
          () => undefined,
          (err: unknown) => err,
        );
        return { failure, status: await handle.query(rollupStatusQuery) };
      });

      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('RollupRerunsExhausted');
      expect(cause?.message).toMatch(
        /failed 25 attempts, rerun every 2 hours for 48 hours: canceling statement due to lock timeout/,
      );

      const runs = await runsOf(workflowId);
      expect(runs.map((r) => `#${r.attempt} ${r.status} @ ${r.hoursAfterFirst}h`)).toEqual(
        Array.from({ length: 25 }, (_, i) => `#${i + 1} failed @ ${2 * i}h`),
      );
      expect(new Set(runs.map((r) => r.error))).toEqual(new Set(['canceling statement due to lock timeout']));

      expect(status).toMatchObject({
        state: 'failed',
        nextRerunAt: null,
        window: WINDOW,
        tenants: [tenantId],
      });
      expect(status.attempts).toHaveLength(25);
      expect(status.attempts.every((a) => a.status === 'failed')).toBe(true);
      // A failed attempt changes nothing: the stale row is still there, and no other rollup was written.
      expect(await readRollups(pool, [tenantId])).toEqual([
        { tenantId, meter: METERS[0], hour: WINDOW.from, quantity: '1', eventCount: 1 },
      ]);
    } finally {
      await held.release();
    }
  });

  it('ends the job at the first rerun that succeeds, with the exact hourly totals', async () => {
    const { tenantId, events } = await tenantWithEvents();
    const taskQueue = `rollup-${randomUUID()}`;
    const workflowId = `usage-rollup-recovers-${tenantId}`;
    const worker = await rollupWorker(taskQueue);
    // A rollup whose events are gone must disappear on recompute.
    await pool.query(
      `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, 'gone.meter', $2, 5, 5)`,
      [tenantId, WINDOW.from],
    );
    const held = await holdRollupRow(tenantId, METERS[0]!, WINDOW.from);
    try {
      const handle = await ts.env.client.workflow.start(usageRollupWorkflow, {
        workflowId,
        taskQueue,
        args: [input(tenantId, WINDOW)],
      });
      const outcome = await worker.runUntil(async () => {
        // Time only skips while the test awaits the result: the first attempt fails in real time and the job waits.
        const waiting = await eventually('the first attempt failing', async () => {
          const status = await handle.query(rollupStatusQuery);
          return status.state === 'waiting_to_rerun' ? status : undefined;
        });
        const first = waiting.attempts[0]!;
        expect(first).toMatchObject({
          attempt: 1,
          status: 'failed',
          error: 'canceling statement due to lock timeout',
        });
        expect(Date.parse(waiting.nextRerunAt!) - Date.parse(first.startedAt)).toBe(2 * HOUR);

        await held.release();
        return handle.result();
      });

      const expected = expectedRollups(events, WINDOW, [tenantId]);
      const inWindow = expected.reduce((n, r) => n + r.eventCount, 0);
      expect(outcome).toEqual({ window: WINDOW, attempts: 2, eventsProcessed: inWindow });
      expect(await runsOf(workflowId)).toEqual([
        {
          attempt: 1,
          status: 'failed',
          hoursAfterFirst: 0,
          error: 'canceling statement due to lock timeout',
          eventsProcessed: null,
        },
        { attempt: 2, status: 'succeeded', hoursAfterFirst: 2, error: null, eventsProcessed: inWindow },
      ]);
      expect(await readRollups(pool, [tenantId])).toEqual(expected);
    } finally {
      await held.release();
    }
  });

  it('without a window, rolls up the lookback hours before the hour it started in', async () => {
    const { id: tenantId } = await insertTenant(pool, 'pro');
    const now = await ts.env.currentTimeMs();
    const hourStart = Math.floor(now / HOUR) * HOUR;
    // Two events in each of the last three hours and this one; only the two hours before this one count.
    const events: TestUsageEvent[] = [-3, -2, -1, 0].flatMap((h, i) =>
      [0, HOUR / 2].map((offset, j) => ({
        tenantId,
        meter: 'api.calls',
        milli: BigInt(1000 * (i + 1) + j),
        occurredAt: hourStart + h * HOUR + offset,
        key: `now-${i}-${j}`,
      })),
    );
    await insertUsageEvents(pool, events);
    const taskQueue = `rollup-${randomUUID()}`;
    const worker = await rollupWorker(taskQueue);
    const handle = await ts.env.client.workflow.start(usageRollupWorkflow, {
      workflowId: `usage-rollup-lookback-${tenantId}`,
      taskQueue,
      args: [input(tenantId)],
    });
    const outcome = await worker.runUntil(handle.result());
    const startedAt = (await handle.describe()).startTime.getTime();

    expect(outcome.window).toEqual(previousHours(startedAt, 2));
    expect(await readRollups(pool, [tenantId])).toEqual(expectedRollups(events, outcome.window, [tenantId]));
    expect(await readRollups(pool, [tenantId])).toHaveLength(2);
    expect(outcome).toMatchObject({ attempts: 1, eventsProcessed: 4 });
  });

  it("hands new rollups to each capped tenant's overage enforcement for the month, which limits the tenant", async () => {
    // The shared time-skipping clock may be anywhere by now: work in the two hours before its current time.
    const window = previousHours(await ts.env.currentTimeMs(), 2);
    const { id: tenantId } = await insertTenant(pool, 'pro');
    await insertUsageEvents(
      pool,
      generateUsageEvents({ tenants: [tenantId], meters: METERS, window, count: 50, seed: 11 }),
    );
    const month = new Date(window.from);
    const periodEnd = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1)).toISOString();
    await pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, 1)', [
      tenantId,
      METERS[0],
    ]);
    const taskQueue = `rollup-overage-${tenantId}`;
    const worker = await ts.newWorker(taskQueue);
    const overageId = `overage-${tenantId}-${window.from.slice(0, 7)}`;
    const status = await worker.runUntil(async () => {
      await ts.env.client.workflow.execute(usageRollupWorkflow, {
        workflowId: `rollup-overage-${tenantId}`,
        taskQueue,
        args: [
          {
            window,
            lookbackHours: 2,
            tenants: [tenantId],
            policy: rollupPolicyOf(defaultPolicy),
            overage: { policy: defaultPolicy, measureEveryMinutes: 60 },
          },
        ],
      });
      const overage = ts.env.client.workflow.getHandle(overageId);
      let last: unknown;
      for (let i = 0; i < 600; i++) {
        const current = await overage
          .query(overageStatusQuery)
          .catch((err: Error) => void (last = err.message));
        if (current) last = current;
        if (current?.enforced === 'blocked') {
          await overage.terminate('test done');
          return current;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${overageId} never blocked the tenant: ${JSON.stringify(last)}`);
    });
    expect(status).toMatchObject({ tenantId, tier: 'pro', periodEnd, enforced: 'blocked' });
    const controls = await pool.query('SELECT api_blocked FROM service_controls WHERE tenant_id = $1', [
      tenantId,
    ]);
    expect(controls.rows).toEqual([{ api_blocked: true }]);
  });
});
