// Usage events that arrive after their hour was rolled up: the next hourly rollup run recomputes that hour, so the
// late event reaches usage_rollups (and the invoices built from them) instead of being accepted and left out.
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { createRollupActivities } from '../../../activities/usage/rollups';
import { createPool } from '../../../db/pool';
import type { TimeWindow } from '../../../domain/rollups';
import { testEnv } from '../../support/testRuntime';

const HOUR_MS = 3_600_000;
const hex = () => randomBytes(4).toString('hex');

let pool: Pool;

beforeAll(() => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
});

afterAll(async () => {
  await pool.end();
});

async function insertTenant(id: string): Promise<string> {
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor)
     VALUES ($1, 'Late Usage Ltd', 'pro', 'ops@late.test', 'billing@late.test', 'USD', 'stripe')`,
    [id],
  );
  return id;
}

/** Raw events as ingestion writes them: received now, on the database clock. */
async function insertEvent(tenantId: string, meter: string, quantity: string, occurredAt: string) {
  await pool.query(
    `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key)
     VALUES ($1, $2, $3, $4, gen_random_uuid()::text)`,
    [tenantId, meter, quantity, occurredAt],
  );
}

async function rollupOf(tenantId: string, meter: string, hour: string) {
  const { rows } = await pool.query<{ quantity: string; event_count: string }>(
    `SELECT quantity::text, event_count::text FROM usage_rollups WHERE tenant_id = $1 AND meter = $2 AND hour = $3`,
    [tenantId, meter, hour],
  );
  return rows[0] ? { quantity: rows[0].quantity, eventCount: Number(rows[0].event_count) } : undefined;
}

describe('the hourly rollup and late usage events', () => {
  it('rolls up an event that arrives after its hour was rolled up in the next hourly run', async () => {
    const activities = createRollupActivities({ pool });
    const run = async (window: TimeWindow, attempt: number) => {
      const runId = await activities.startRollupRun({
        ...window,
        workflowId: `late-usage-${hex()}`,
        attempt,
        startedAt: new Date().toISOString(),
      });
      return activities.rollupWindow({ ...window, tenants: [tenant], runId });
    };
    const tenant = await insertTenant(`late-${hex()}`);
    const meter = `late_${hex()}.calls`;
    const currentHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const iso = (ms: number) => new Date(ms).toISOString();
    const lateHour = iso(currentHour - 3 * HOUR_MS);

    // The hour is rolled up by its own run, two hours ago.
    await insertEvent(tenant, meter, '5', iso(currentHour - 3 * HOUR_MS + 10 * 60_000));
    await run({ from: lateHour, to: iso(currentHour - 2 * HOUR_MS) }, 1);
    expect(await rollupOf(tenant, meter, lateHour)).toEqual({ quantity: '5', eventCount: 1 });

    // A producer sends an event of that hour late, now; the next hourly run (at the end of this hour) covers only
    // this hour.
    await insertEvent(tenant, meter, '7', iso(currentHour - 3 * HOUR_MS + 50 * 60_000));
    const next = await run({ from: iso(currentHour), to: iso(currentHour + HOUR_MS) }, 1);

    expect(await rollupOf(tenant, meter, lateHour)).toEqual({ quantity: '12', eventCount: 2 });
    expect(next.lateRollupsWritten).toBe(1);
  });

  it('leaves hours without late events as they are', async () => {
    const activities = createRollupActivities({ pool });
    const tenant = await insertTenant(`late-${hex()}`);
    const meter = `late_${hex()}.calls`;
    const currentHour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
    const iso = (ms: number) => new Date(ms).toISOString();
    const runId = await activities.startRollupRun({
      from: iso(currentHour),
      to: iso(currentHour + HOUR_MS),
      workflowId: `late-usage-${hex()}`,
      attempt: 1,
      startedAt: new Date().toISOString(),
    });
    // An event of the window itself is the window's, not a late one.
    await insertEvent(tenant, meter, '3', iso(currentHour + 1000));
    const result = await activities.rollupWindow({
      from: iso(currentHour),
      to: iso(currentHour + HOUR_MS),
      tenants: [tenant],
      runId,
    });
    expect(result).toMatchObject({ eventsProcessed: 1, rollupsWritten: 1, lateRollupsWritten: 0 });
  });
});
