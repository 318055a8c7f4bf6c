// Overage enforcement on the time-skipping server with real PostgreSQL: Pro throttle/block, Free block, Enterprise review, reset.
import { createServiceControlActivities } from '../../../activities/serviceControls';
import { defaultPolicy, type BillingTier } from '../../../domain/policy';
import {
  overageDecisionSignal,
  overageStatusQuery,
  usageUpdatedSignal,
  type OverageStatus,
} from '../../../workflows/definitions';
import { overageWorkflow } from '../../../workflows/usage/overage';
import { insertTenant } from '../../support/dunningFixtures';
import { pollUntil } from '../../support/poll';
import { startTimeSkipping, type TimeSkipping } from '../../support/timeSkipping';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const METER = 'api.calls';

let ts: TimeSkipping;

beforeAll(async () => {
  ts = await startTimeSkipping();
});

afterAll(async () => {
  await ts?.close();
});

async function setUp(tier: BillingTier, capUnits: number) {
  const tenant = await insertTenant(ts.deps.pool, tier);
  await ts.deps.pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, $3)', [
    tenant.id,
    METER,
    capUnits,
  ]);
  const periodStart = new Date(Math.floor((await ts.env.currentTimeMs()) / HOUR) * HOUR);
  const periodEnd = new Date(periodStart.getTime() + 30 * DAY);
  const taskQueue = `overage-${tenant.id}`;
  const worker = await ts.newWorker(taskQueue);
  const handle = await ts.env.client.workflow.start(overageWorkflow, {
    workflowId: `overage-${tenant.id}-${periodStart.toISOString().slice(0, 7)}`,
    taskQueue,
    args: [
      {
        tenantId: tenant.id,
        tier,
        periodStart: periodStart.toISOString(),
        periodEnd: periodEnd.toISOString(),
        policy: defaultPolicy,
        measureEveryMinutes: 60,
      },
    ],
  });
  let hour = 0;
  /** Lands another hour of rollups and tells the workflow, as the rollup job does. */
  const addUsage = async (quantity: number) => {
    await ts.deps.pool.query(
      'INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, $4, 1)',
      [tenant.id, METER, new Date(periodStart.getTime() + hour++ * HOUR), quantity],
    );
    await handle.signal(usageUpdatedSignal);
  };
  const controls = async () =>
    (
      await ts.deps.pool.query(
        'SELECT rate_limit_percent, api_blocked FROM service_controls WHERE tenant_id = $1',
        [tenant.id],
      )
    ).rows[0] as { rate_limit_percent: number; api_blocked: boolean };
  return { tenant, worker, handle, addUsage, controls };
}

/** Polls the status query in real time until the predicate holds. */
function until(
  handle: { query: (q: typeof overageStatusQuery) => Promise<OverageStatus> },
  predicate: (s: OverageStatus) => boolean,
): Promise<OverageStatus> {
  return pollUntil(() => handle.query(overageStatusQuery), predicate, 'the overage status', {
    explain: (last) => `last status: ${JSON.stringify(last)}`,
  });
}

describe('overageWorkflow', () => {
  it('Pro: within cap at 110 %, throttled at 120 %, blocked at 150 %, lifted when the cap is raised and at period end', async () => {
    const { tenant, worker, handle, addUsage, controls } = await setUp('pro', 1000);
    const result = await worker.runUntil(async () => {
      await addUsage(1100);
      await until(handle, (s) => s.usage.some((u) => u.quantity === '1100'));
      expect((await handle.query(overageStatusQuery)).enforced).toBe('within_cap');

      await addUsage(100); // 1200 = 120 %
      await until(handle, (s) => s.enforced === 'throttled');
      expect(await controls()).toEqual({ rate_limit_percent: 10, api_blocked: false });

      await addUsage(300); // 1500 = 150 %
      await until(handle, (s) => s.enforced === 'blocked');
      expect(await controls()).toEqual({ rate_limit_percent: 10, api_blocked: true });

      await ts.deps.pool.query('UPDATE usage_caps SET cap_units = 2000 WHERE tenant_id = $1', [tenant.id]);
      await handle.signal(usageUpdatedSignal); // 75 % of the raised cap
      await until(handle, (s) => s.enforced === 'within_cap');
      expect(await controls()).toEqual({ rate_limit_percent: 100, api_blocked: false });

      await addUsage(1500); // 150 % of 2000 again
      await until(handle, (s) => s.enforced === 'blocked');
      return handle.result(); // time skips to the period's end
    });
    expect(result.enforced).toBe('within_cap');
    expect(result.timeline.at(-1)?.event).toBe('period ended');
    expect(await controls()).toEqual({ rate_limit_percent: 100, api_blocked: false });
    const history = await ts.deps.pool.query(
      'SELECT rate_limit_percent, api_blocked FROM service_control_changes WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY id',
      [tenant.id, handle.workflowId],
    );
    expect(history.rows).toEqual([
      { rate_limit_percent: 10, api_blocked: false },
      { rate_limit_percent: 10, api_blocked: true },
      { rate_limit_percent: 100, api_blocked: false },
      { rate_limit_percent: 10, api_blocked: true },
      { rate_limit_percent: 100, api_blocked: false },
    ]);
    const decisions = await ts.deps.pool.query(
      'SELECT resolution FROM decisions WHERE workflow_id = $1 ORDER BY id',
      [handle.workflowId],
    );
    expect(decisions.rows.map((r: { resolution: string }) => r.resolution.split(' (')[0])).toEqual([
      `${tenant.id}: within_cap -> throttled`,
      `${tenant.id}: throttled -> blocked`,
      `${tenant.id}: blocked -> within_cap`,
      `${tenant.id}: within_cap -> blocked`,
      `${tenant.id}: blocked -> within_cap`,
    ]);
  });

  it('Free: hard block at 100 % of cap', async () => {
    const { worker, handle, addUsage, controls } = await setUp('free', 500);
    await worker.runUntil(async () => {
      await addUsage(499);
      await until(handle, (s) => s.usage.some((u) => u.quantity === '499'));
      expect((await handle.query(overageStatusQuery)).enforced).toBe('within_cap');
      await addUsage(1);
      await until(handle, (s) => s.enforced === 'blocked');
      expect(await controls()).toEqual({ rate_limit_percent: 10, api_blocked: true });
      await handle.terminate('test done');
    });
  });

  it('Enterprise: never limited automatically; a manual review waits for an operator decision', async () => {
    const { worker, handle, addUsage, controls } = await setUp('enterprise', 1000);
    await worker.runUntil(async () => {
      await addUsage(3000); // 300 %
      const opened = await until(handle, (s) => s.review !== null);
      expect(opened.enforced).toBe('within_cap');
      expect(opened.review?.reason).toBe('api.calls at 300% of cap');
      await ts.env.sleep(3 * DAY);
      expect(await controls()).toEqual({ rate_limit_percent: 100, api_blocked: false });

      await handle.signal(overageDecisionSignal, {
        decision: 'throttled',
        operator: 'am@billops.test',
        reason: 'contract allows throttling',
      });
      const decided = await until(handle, (s) => s.enforced === 'throttled');
      expect(decided.timeline.find((e) => e.event === 'manual review decided')).toMatchObject({
        operator: 'am@billops.test',
      });
      expect(await controls()).toEqual({ rate_limit_percent: 10, api_blocked: false });
      await handle.terminate('test done');
    });
  });

  it('Pro: lifting the overage block at period end leaves the dunning hard limit in force', async () => {
    const { tenant, worker, handle, addUsage, controls } = await setUp('pro', 1000);
    // What workflows/dunning/ applies at grace + 3 days, under its own workflow id.
    await createServiceControlActivities({ pool: ts.deps.pool }).applyServiceControls({
      tenantId: tenant.id,
      workflowId: `dunning-${tenant.id}`,
      operator: 'billops',
      reason: 'dunning hard-limit: payment not collected',
      rateLimitPercent: 10,
      apiBlocked: true,
    });
    const result = await worker.runUntil(async () => {
      await addUsage(1500); // 150 %
      await until(handle, (s) => s.enforced === 'blocked');
      return handle.result(); // time skips to the period's end
    });
    expect(result.enforced).toBe('within_cap');
    expect(result.timeline.at(-1)?.event).toBe('period ended');
    expect(await controls()).toEqual({ rate_limit_percent: 10, api_blocked: true });
  });
});
