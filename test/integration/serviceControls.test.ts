// Service control holds against a real PostgreSQL: each source holds its own restriction, the enforced row is the most
// restrictive active hold, lifting one source's hold never lifts another's, and the history names the sources.
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { createServiceControlActivities } from '../../activities/serviceControls';
import { createPool } from '../../db/pool';

const envUrl = process.env.BILLOPS_TEST_DATABASE_URL;
if (!envUrl) {
  throw new Error(
    'BILLOPS_TEST_DATABASE_URL is not set: these tests need a real, migrated PostgreSQL database. ' +
      'Run them with `npm test` or `npx jest` (the globalSetup starts one) or set the variable yourself.',
  );
}
const databaseUrl: string = envUrl;

const suffix = () => randomBytes(4).toString('hex');

let pool: Pool;

beforeAll(() => {
  pool = createPool(databaseUrl, { max: 4 });
});

afterAll(async () => {
  await pool.end();
});

async function insertTenant(): Promise<string> {
  const id = `sctl-${suffix()}`;
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor)
     VALUES ($1, 'Service Controls Ltd', 'pro', 'ops@sctl.example', 'billing@sctl.example', 'USD', 'stripe')`,
    [id],
  );
  return id;
}

/** What the gateway reads: the service_controls row itself. */
async function enforced(tenantId: string) {
  const { rows } = await pool.query<{
    rate_limit_percent: number;
    api_blocked: boolean;
    suspended: boolean;
    read_only: boolean;
  }>(
    'SELECT rate_limit_percent, api_blocked, suspended, read_only FROM service_controls WHERE tenant_id = $1',
    [tenantId],
  );
  return rows[0];
}

const activities = () => createServiceControlActivities({ pool });

/** The calls the two workflows make today (workflows/dunning/, workflows/usage/overage.ts), with their ids. */
function callers(tenantId: string) {
  const dunning = { tenantId, workflowId: `dunning-${tenantId}`, operator: 'billops' };
  const overage = { tenantId, workflowId: `overage-${tenantId}-2026-12`, operator: 'billops' };
  return {
    dunningHardLimit: async () => {
      await activities().applyServiceControls({
        ...dunning,
        reason: 'dunning soft-limit: payment not collected',
        rateLimitPercent: 10,
      });
      return activities().applyServiceControls({
        ...dunning,
        reason: 'dunning hard-limit: payment not collected',
        apiBlocked: true,
      });
    },
    dunningRecovered: () => activities().restoreService({ ...dunning, reason: 'payment recovered' }),
    overage: (rateLimitPercent: number, apiBlocked: boolean, reason: string) =>
      activities().applyServiceControls({ ...overage, reason, rateLimitPercent, apiBlocked }),
  };
}

describe('service control holds compose', () => {
  it('dunning hard limit + overage block, then overage lifts at month end: the tenant stays hard-limited', async () => {
    const tenantId = await insertTenant();
    const call = callers(tenantId);
    await call.dunningHardLimit();
    await call.overage(10, true, 'api.calls at 150% of cap');
    expect(await enforced(tenantId)).toEqual({
      rate_limit_percent: 10,
      api_blocked: true,
      suspended: false,
      read_only: false,
    });

    // workflows/usage/overage.ts at the period's end: controlsFor('within_cap').
    const afterReset = await call.overage(100, false, 'billing period ended');

    expect(await enforced(tenantId)).toEqual({
      rate_limit_percent: 10,
      api_blocked: true,
      suspended: false,
      read_only: false,
    });
    expect(afterReset).toMatchObject({ rateLimitPercent: 10, apiBlocked: true });
    expect(await activities().getServiceControls(tenantId)).toMatchObject({
      rateLimitPercent: 10,
      apiBlocked: true,
    });
  });

  it('overage block + dunning recovery: the tenant stays blocked until overage lifts its own hold', async () => {
    const tenantId = await insertTenant();
    const call = callers(tenantId);
    await call.overage(10, true, 'api.calls at 150% of cap');
    await call.dunningHardLimit();

    const recovered = await call.dunningRecovered();

    expect(recovered).toMatchObject({ rateLimitPercent: 10, apiBlocked: true });
    expect(await enforced(tenantId)).toEqual({
      rate_limit_percent: 10,
      api_blocked: true,
      suspended: false,
      read_only: false,
    });

    // Only overage's own lift restores full service.
    await call.overage(100, false, 'billing period ended');
    expect(await enforced(tenantId)).toEqual({
      rate_limit_percent: 100,
      api_blocked: false,
      suspended: false,
      read_only: false,
    });
  });

  it('the most restrictive hold wins field by field: a dunning suspension outranks an overage throttle', async () => {
    const tenantId = await insertTenant();
    const base = { tenantId, operator: 'billops' };
    await activities().applyServiceControls({
      ...base,
      workflowId: `overage-${tenantId}-2026-12`,
      reason: 'api.calls at 120% of cap',
      rateLimitPercent: 25,
    });
    await activities().applyServiceControls({
      ...base,
      workflowId: `dunning-${tenantId}`,
      reason: 'dunning suspension: payment not collected',
      rateLimitPercent: 50,
      suspended: true,
    });
    expect(await enforced(tenantId)).toEqual({
      rate_limit_percent: 25,
      api_blocked: false,
      suspended: true,
      read_only: false,
    });
  });

  it('history rows name the source of each change, with its hold before and after and the workflow id', async () => {
    const tenantId = await insertTenant();
    const call = callers(tenantId);
    await call.dunningHardLimit();
    await call.overage(10, true, 'api.calls at 150% of cap');
    await call.overage(10, true, 'api.calls at 150% of cap'); // a retried activity: no second row
    await call.overage(100, false, 'billing period ended');

    const { rows } = await pool.query<{
      source: string;
      before: Record<string, unknown> | null;
      after: Record<string, unknown> | null;
      enforced_after: Record<string, unknown>;
      workflow_id: string;
      reason: string;
      changed_at: Date;
    }>(
      `SELECT source, before, after, enforced_after, workflow_id, reason, changed_at
       FROM service_control_hold_changes WHERE tenant_id = $1 ORDER BY id`,
      [tenantId],
    );
    expect(rows.map((r) => [r.source, r.workflow_id, r.reason])).toEqual([
      ['dunning', `dunning-${tenantId}`, 'dunning soft-limit: payment not collected'],
      ['dunning', `dunning-${tenantId}`, 'dunning hard-limit: payment not collected'],
      ['overage', `overage-${tenantId}-2026-12`, 'api.calls at 150% of cap'],
      ['overage', `overage-${tenantId}-2026-12`, 'billing period ended'],
    ]);
    expect(rows[1]?.before).toMatchObject({ rateLimitPercent: 10, apiBlocked: false });
    expect(rows[1]?.after).toMatchObject({ rateLimitPercent: 10, apiBlocked: true, level: 'blocked' });
    expect(rows[3]?.before).toMatchObject({ rateLimitPercent: 10, apiBlocked: true });
    expect(rows[3]?.after).toBeNull();
    // Overage's lift left the enforced state as dunning holds it.
    expect(rows[3]?.enforced_after).toMatchObject({ rateLimitPercent: 10, apiBlocked: true });
    expect(rows.every((r) => r.changed_at instanceof Date)).toBe(true);

    // The enforced-state history says which source's change produced each state.
    const enforcedHistory = await pool.query<{ source: string | null; api_blocked: boolean }>(
      `SELECT source, api_blocked FROM service_control_changes WHERE tenant_id = $1 AND source IS NOT NULL ORDER BY id`,
      [tenantId],
    );
    expect(enforcedHistory.rows).toEqual([
      { source: 'dunning', api_blocked: false },
      { source: 'dunning', api_blocked: true },
    ]);
  });
});
