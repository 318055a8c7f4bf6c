// The dunning and incident activity groups against a real PostgreSQL: service controls, dunning records, decisions, tenant deletion.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { createDecisionActivities, type RecordDecisionRequest } from '../../activities/decisions';
import { createDunningRecordActivities } from '../../activities/dunningRecords';
import { createServiceControlActivities } from '../../activities/serviceControls';
import { createTenantDataActivities } from '../../activities/tenantData';
import { createPool } from '../../db/pool';
import { formatDecisionLine, parseDecisionLine } from '../../domain/decisions';

const envUrl = process.env.BILLOPS_TEST_DATABASE_URL;
if (!envUrl) {
  throw new Error(
    'BILLOPS_TEST_DATABASE_URL is not set: these tests need a real, migrated PostgreSQL database. ' +
      'Run them with `npm test` or `npx jest` (the globalSetup starts one) or set the variable yourself.',
  );
}
const databaseUrl: string = envUrl;

const suffix = () => randomBytes(4).toString('hex');
const DAY_MS = 24 * 60 * 60 * 1000;

let pool: Pool;
let tempDir: string;

beforeAll(() => {
  pool = createPool(databaseUrl, { max: 4 });
  tempDir = mkdtempSync(join(tmpdir(), 'billops-dunning-activities-'));
});

afterAll(async () => {
  await pool.end();
  rmSync(tempDir, { recursive: true, force: true });
});

/** A tenant of its own for each test, so suites sharing the database never collide. */
async function insertTenant(): Promise<string> {
  const id = `dunact-${suffix()}`;
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor, paystack_authorization_code)
     VALUES ($1, 'Dunning Activities Ltd', 'pro', 'ops@dunact.example', 'billing@dunact.example', 'USD', 'paystack',
             'AUTH_dunact')`,
    [id],
  );
  return id;
}

async function historyCount(tenantId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM service_control_changes WHERE tenant_id = $1',
    [tenantId],
  );
  return rows[0]?.n ?? 0;
}

async function latestHistory(tenantId: string) {
  const { rows } = await pool.query<{
    rate_limit_percent: number;
    api_blocked: boolean;
    suspended: boolean;
    read_only: boolean;
    reason: string | null;
    workflow_id: string | null;
    changed_by: string;
  }>(
    `SELECT rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, changed_by
     FROM service_control_changes WHERE tenant_id = $1 ORDER BY id DESC LIMIT 1`,
    [tenantId],
  );
  return rows[0];
}

/** Asserts the promise fails with a non-retryable ApplicationFailure of this type. */
async function expectNonRetryable(promise: Promise<unknown>, type: string): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type, nonRetryable: true });
}

describe('service control activities', () => {
  const activities = () => createServiceControlActivities({ pool });

  it('applies the soft limit (10% of normal capacity) and documents it in a history row with reason and workflow id', async () => {
    const tenantId = await insertTenant();
    const workflowId = `dunning-${tenantId}`;
    const before = await historyCount(tenantId);

    const controls = await activities().applyServiceControls({
      tenantId,
      workflowId,
      operator: 'billops',
      reason: 'Soft Limit: grace expired',
      rateLimitPercent: 10,
    });

    expect(controls).toMatchObject({
      tenantId,
      rateLimitPercent: 10,
      apiBlocked: false,
      suspended: false,
      readOnly: false,
      reason: 'Soft Limit: grace expired',
      workflowId,
      updatedBy: 'billops',
    });
    expect(await historyCount(tenantId)).toBe(before + 1);
    expect(await latestHistory(tenantId)).toEqual({
      rate_limit_percent: 10,
      api_blocked: false,
      suspended: false,
      read_only: false,
      reason: 'Soft Limit: grace expired',
      workflow_id: workflowId,
      changed_by: 'billops',
    });
    expect(await activities().getServiceControls(tenantId)).toEqual(controls);
  });

  it('adds no history row when the same state is applied twice (a retried activity)', async () => {
    const tenantId = await insertTenant();
    const req = {
      tenantId,
      workflowId: `dunning-${tenantId}`,
      operator: 'billops',
      reason: 'Hard Limit: grace + 3 days',
      apiBlocked: true,
    };
    await activities().applyServiceControls(req);
    const after = await historyCount(tenantId);

    const again = await activities().applyServiceControls(req);

    expect(again).toMatchObject({ apiBlocked: true, rateLimitPercent: 100 });
    expect(await historyCount(tenantId)).toBe(after);
  });

  it('sets only the fields given: a hard limit keeps the soft limit, a suspension keeps both', async () => {
    const tenantId = await insertTenant();
    const base = { tenantId, workflowId: `dunning-${tenantId}`, operator: 'billops' };
    await activities().applyServiceControls({ ...base, reason: 'Soft Limit', rateLimitPercent: 10 });
    await activities().applyServiceControls({ ...base, reason: 'Hard Limit', apiBlocked: true });
    const suspended = await activities().applyServiceControls({
      ...base,
      reason: 'Suspension',
      suspended: true,
    });

    expect(suspended).toMatchObject({
      rateLimitPercent: 10,
      apiBlocked: true,
      suspended: true,
      readOnly: false,
      reason: 'Suspension',
    });
  });

  it('restoreService removes suspension flags and clears rate limits, with its own history row', async () => {
    const tenantId = await insertTenant();
    const base = { tenantId, workflowId: `dunning-${tenantId}`, operator: 'billops' };
    await activities().applyServiceControls({
      ...base,
      reason: 'every restriction',
      rateLimitPercent: 10,
      apiBlocked: true,
      suspended: true,
      readOnly: true,
    });
    const before = await historyCount(tenantId);

    const restored = await activities().restoreService({
      ...base,
      operator: 'alice',
      reason: 'payment recovered',
    });

    expect(restored).toMatchObject({
      rateLimitPercent: 100,
      apiBlocked: false,
      suspended: false,
      readOnly: false,
      reason: 'payment recovered',
      updatedBy: 'alice',
    });
    expect(await historyCount(tenantId)).toBe(before + 1);
    expect(await latestHistory(tenantId)).toMatchObject({
      rate_limit_percent: 100,
      api_blocked: false,
      suspended: false,
      read_only: false,
      reason: 'payment recovered',
      workflow_id: base.workflowId,
      changed_by: 'alice',
    });
    await activities().restoreService({ ...base, reason: 'payment recovered' });
    expect(await historyCount(tenantId)).toBe(before + 1);
  });

  it('refuses an unknown tenant and an impossible rate limit without retrying', async () => {
    const tenantId = await insertTenant();
    const base = { workflowId: 'dunning-x', operator: 'billops', reason: 'test' };
    await expectNonRetryable(
      activities().applyServiceControls({ ...base, tenantId: `nobody-${suffix()}`, suspended: true }),
      'TenantUnknown',
    );
    await expectNonRetryable(
      activities().restoreService({ ...base, tenantId: `nobody-${suffix()}` }),
      'TenantUnknown',
    );
    await expectNonRetryable(activities().getServiceControls(`nobody-${suffix()}`), 'TenantUnknown');
    await expectNonRetryable(
      activities().applyServiceControls({ ...base, tenantId, rateLimitPercent: 150 }),
      'InvalidServiceControls',
    );
  });
});

describe('dunning record activities', () => {
  const activities = () => createDunningRecordActivities({ pool });

  async function openRecords(tenantId: string): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM dunning_records WHERE tenant_id = $1 AND closed_at IS NULL',
      [tenantId],
    );
    return rows[0]?.n ?? 0;
  }

  it('opens, updates and closes one record per lifecycle, each step idempotent, one open record per tenant', async () => {
    const tenantId = await insertTenant();
    const workflowId = `dunning-${tenantId}`;
    const startedAt = new Date('2026-11-01T10:00:00.000Z');
    const graceEndsAt = new Date(startedAt.getTime() + 7 * DAY_MS);
    const open = {
      tenantId,
      workflowId,
      invoiceIds: ['in_1'],
      startedAt: startedAt.toISOString(),
      graceEndsAt: graceEndsAt.toISOString(),
    };

    const id = await activities().openDunningRecord(open);
    // A retry, then a second failed invoice joining the running lifecycle: the same record.
    expect(await activities().openDunningRecord(open)).toBe(id);
    expect(await activities().openDunningRecord({ ...open, invoiceIds: ['in_2', 'in_1', 'in_2'] })).toBe(id);
    expect(await openRecords(tenantId)).toBe(1);

    // Another lifecycle for the same tenant is refused, by the activity and by the table itself.
    await expectNonRetryable(
      activities().openDunningRecord({ ...open, workflowId: `manual-${tenantId}` }),
      'DunningRecordConflict',
    );
    await expect(
      pool.query(
        `INSERT INTO dunning_records (tenant_id, workflow_id, phase) VALUES ($1, 'other', 'grace')`,
        [tenantId],
      ),
    ).rejects.toMatchObject({ code: '23505', constraint: 'dunning_records_one_open_per_tenant' });

    const softLimited = await activities().updateDunningRecord({
      tenantId,
      workflowId,
      phase: 'soft_limited',
    });
    expect(softLimited).toMatchObject({
      id,
      phase: 'soft_limited',
      invoiceIds: ['in_1', 'in_2'],
      startedAt: startedAt.toISOString(),
      graceEndsAt: graceEndsAt.toISOString(),
      closedAt: null,
      outcome: null,
    });
    const extended = new Date(graceEndsAt.getTime() + 3 * DAY_MS).toISOString();
    const update = {
      tenantId,
      workflowId,
      phase: 'grace' as const,
      invoiceIds: ['in_2'],
      graceEndsAt: extended,
    };
    await activities().updateDunningRecord(update);
    expect(await activities().updateDunningRecord(update)).toMatchObject({
      id,
      phase: 'grace',
      invoiceIds: ['in_2'],
      graceEndsAt: extended,
    });
    await expectNonRetryable(
      activities().updateDunningRecord({ ...update, graceEndsAt: '2026-10-01T00:00:00.000Z' }),
      'InvalidDunningRecord',
    );

    const close = { tenantId, workflowId, outcome: 'recovered' as const, phase: 'recovered' as const };
    const closed = await activities().closeDunningRecord(close);
    expect(closed).toMatchObject({ id, phase: 'recovered', outcome: 'recovered', invoiceIds: ['in_2'] });
    expect(closed.closedAt).not.toBeNull();
    expect(await activities().closeDunningRecord(close)).toEqual(closed);
    expect(await openRecords(tenantId)).toBe(0);
    await expectNonRetryable(activities().updateDunningRecord(update), 'DunningRecordNotOpen');

    // The next failed payment starts a new lifecycle under the same workflow id: a new record.
    const next = await activities().openDunningRecord({ ...open, invoiceIds: ['in_3'], graceEndsAt: null });
    expect(next).not.toBe(id);
    expect(await openRecords(tenantId)).toBe(1);
  });

  it('refuses an unknown tenant and a record it never opened', async () => {
    const tenantId = await insertTenant();
    await expectNonRetryable(
      activities().openDunningRecord({
        tenantId: `nobody-${suffix()}`,
        workflowId: 'dunning-nobody',
        invoiceIds: [],
        startedAt: new Date().toISOString(),
        graceEndsAt: null,
      }),
      'TenantUnknown',
    );
    await expectNonRetryable(
      activities().closeDunningRecord({
        tenantId,
        workflowId: `dunning-${tenantId}`,
        outcome: 'canceled',
        phase: 'grace',
      }),
      'DunningRecordNotFound',
    );
  });
});

describe('decision activities', () => {
  const RUNBOOK_LINE =
    /^\S+Z \| OPERATOR=[^|]+ \| ACTION=billing_incident \| TYPE=[^|]+ \| TENANTS=\d+ \| IMPACT=[^|]+ \| RESOLUTION=[^|]+ \| CREDITS=[^|]+ \| EXECUTOR=[^|]+$/;

  function request(
    key: string,
    resolution = 'Stripe recovered; retried failed charges',
  ): RecordDecisionRequest {
    return {
      idempotencyKey: key,
      workflowId: 'incident-payment_processor_outage-stripe',
      entry: {
        timestamp: '2026-11-21T23:02:00.000Z',
        operator: 'alice',
        incidentType: 'payment_processor_outage',
        tenants: 42,
        impact: 'revenue',
        resolution,
        credits: { amountMinor: 1250, currency: 'usd' },
        executor: 'Finance+Engineering',
      },
    };
  }

  function logPath(): string {
    return join(tempDir, suffix(), 'nested', 'DECISIONS.log');
  }

  async function rowsFor(key: string) {
    const { rows } = await pool.query<{ line: string; credits_minor: number; credits_currency: string }>(
      'SELECT line, credits_minor, credits_currency FROM decisions WHERE idempotency_key = $1',
      [key],
    );
    return rows;
  }

  it('writes one row and one runbook-format line, even when called twice with the same key', async () => {
    const path = logPath();
    const { recordDecision } = createDecisionActivities({ pool, decisionsLogPath: path });
    const key = `decision-${suffix()}`;
    const expectedLine = formatDecisionLine(request(key).entry);

    expect(await recordDecision(request(key))).toEqual({ line: expectedLine, appended: true });
    expect(await recordDecision(request(key))).toEqual({ line: expectedLine, appended: false });

    expect(readFileSync(path, 'utf8')).toBe(`${expectedLine}\n`);
    expect(expectedLine).toMatch(RUNBOOK_LINE);
    expect(parseDecisionLine(expectedLine).credits).toEqual({ amountMinor: 1250, currency: 'USD' });
    expect(await rowsFor(key)).toEqual([
      { line: expectedLine, credits_minor: 1250, credits_currency: 'USD' },
    ]);
  });

  it('writes two lines for two keys, and one line when two attempts with one key race', async () => {
    const path = logPath();
    const { recordDecision } = createDecisionActivities({ pool, decisionsLogPath: path });
    const [first, second] = [`decision-${suffix()}`, `decision-${suffix()}`];

    const raced = await Promise.all([recordDecision(request(first)), recordDecision(request(first))]);
    await recordDecision(request(second, 'rolled back the deploy'));

    expect(raced.map((r) => r.appended).sort()).toEqual([false, true]);
    expect(readFileSync(path, 'utf8')).toBe(
      `${formatDecisionLine(request(first).entry)}\n${formatDecisionLine(request(second, 'rolled back the deploy').entry)}\n`,
    );
    expect(await rowsFor(first)).toHaveLength(1);
    expect(await rowsFor(second)).toHaveLength(1);
  });

  it('rolls the row back when the line cannot be written, and does not write the line twice after a lost commit', async () => {
    const key = `decision-${suffix()}`;
    const line = formatDecisionLine(request(key).entry);
    // A file where the log's directory should be: the append fails, so the row must not stay.
    const blocker = join(tempDir, `blocker-${suffix()}`);
    writeFileSync(blocker, '');
    const broken = createDecisionActivities({ pool, decisionsLogPath: join(blocker, 'DECISIONS.log') });
    await expect(broken.recordDecision(request(key))).rejects.toThrow();
    expect(await rowsFor(key)).toEqual([]);

    // An earlier attempt of the same call appended its line and then lost its COMMIT.
    const path = logPath();
    const { recordDecision } = createDecisionActivities({ pool, decisionsLogPath: path });
    await recordDecision(request(`decision-${suffix()}`, 'an earlier incident'));
    const earlier = readFileSync(path, 'utf8');
    writeFileSync(path, `${earlier}${line}\n`);

    expect(await recordDecision(request(key))).toEqual({ line, appended: true });
    expect(readFileSync(path, 'utf8')).toBe(`${earlier}${line}\n`);
    expect(await rowsFor(key)).toHaveLength(1);
  });

  it('starts its line on a new line when the log ends in a torn line', async () => {
    const path = logPath();
    const { recordDecision } = createDecisionActivities({ pool, decisionsLogPath: path });
    await recordDecision(request(`decision-${suffix()}`, 'first'));
    const torn = `${readFileSync(path, 'utf8')}2026-11-21T23:02:00.000Z | OPERATOR=bo`;
    writeFileSync(path, torn);
    const key = `decision-${suffix()}`;

    const { line } = await recordDecision(request(key, 'second'));

    expect(readFileSync(path, 'utf8')).toBe(`${torn}\n${line}\n`);
  });

  it('refuses an entry that cannot make a runbook line without retrying', async () => {
    const { recordDecision } = createDecisionActivities({ pool, decisionsLogPath: logPath() });
    const bad = request(`decision-${suffix()}`);
    await expectNonRetryable(
      recordDecision({ ...bad, entry: { ...bad.entry, operator: ' ' } }),
      'InvalidDecision',
    );
  });
});

describe('tenant data activities', () => {
  const activities = () => createTenantDataActivities({ pool });

  async function countRows(table: string, tenantId: string): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0]?.n ?? 0;
  }

  async function seedTenantData(tenantId: string): Promise<void> {
    await pool.query(
      `INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, 'api_calls', 1000000)`,
      [tenantId],
    );
    await pool.query(
      `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key)
       VALUES ($1, 'api_calls', 10, '2026-08-01T10:15:00Z', 'ev-1'), ($1, 'api_calls', 5, '2026-08-01T10:45:00Z', 'ev-2')`,
      [tenantId],
    );
    await pool.query(
      `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count)
       VALUES ($1, 'api_calls', '2026-08-01T10:00:00Z', 15, 2)`,
      [tenantId],
    );
    await pool.query(
      `INSERT INTO dashboard_notifications (tenant_id, kind, message, idempotency_key)
       VALUES ($1, 'dunning.warning', 'Your account will be limited in 7 days', $2)`,
      [tenantId, `notice-${tenantId}`],
    );
    await pool.query(
      `INSERT INTO email_outbox (idempotency_key, tenant_id, to_address, subject, body_text, template)
       VALUES ($1, $2, 'billing@dunact.example', 'Payment Issue', 'We encountered an issue', 'paymentFailureNotice')`,
      [`email-${tenantId}`, tenantId],
    );
    const invoice = await pool.query<{ id: string }>(
      `INSERT INTO invoices (tenant_id, period_start, period_end, status, subtotal_minor, total_minor, currency)
       VALUES ($1, '2026-07-01T00:00:00Z', '2026-08-01T00:00:00Z', 'uncollectible', 4900, 4900, 'USD') RETURNING id`,
      [tenantId],
    );
    await pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'paystack', $3, 'failed', 4900, 'USD')`,
      [tenantId, invoice.rows[0]?.id, `ref-${tenantId}`],
    );
  }

  /** Suspended by its dunning lifecycle `days` ago, as the deletion guard requires (hold and its history row). */
  async function suspendedByDunning(tenantId: string, days: number): Promise<void> {
    await pool.query(
      `INSERT INTO service_control_holds
         (tenant_id, source, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, held_by, since)
       VALUES ($1, 'dunning', 0, true, true, false, 'Suspension', $2, 'billops', now() - make_interval(days => $3))`,
      [tenantId, `dunning-${tenantId}`, days],
    );
    const state = { rateLimitPercent: 0, apiBlocked: true, suspended: true, readOnly: false };
    await pool.query(
      `INSERT INTO service_control_hold_changes
         (tenant_id, source, before, after, enforced_before, enforced_after, reason, workflow_id, changed_by, changed_at)
       VALUES ($1, 'dunning', NULL, $2::jsonb, '{}'::jsonb, $2::jsonb, 'Suspension', $3, 'billops',
               now() - make_interval(days => $4))`,
      [tenantId, JSON.stringify(state), `dunning-${tenantId}`, days],
    );
  }

  it('deletes usage and personal data, keeps invoices and payments, scrubs the tenant; a second call is a no-op', async () => {
    const tenantId = await insertTenant();
    await seedTenantData(tenantId);
    await suspendedByDunning(tenantId, 91);
    const req = {
      tenantId,
      workflowId: `dunning-${tenantId}`,
      operator: 'billops',
      reason: 'Data Retention: 90 days after suspension',
      requiredSuspendedDays: 90,
    };

    const first = await activities().deleteTenantData(req);

    expect(first.deleted).toEqual({
      usage_events: 2,
      usage_rollups: 1,
      usage_caps: 1,
      dashboard_notifications: 1,
      email_outbox: 1,
    });
    for (const table of [
      'usage_events',
      'usage_rollups',
      'usage_caps',
      'dashboard_notifications',
      'email_outbox',
    ]) {
      expect(await countRows(table, tenantId)).toBe(0);
    }
    expect(await countRows('invoices', tenantId)).toBe(1);
    expect(await countRows('payment_transactions', tenantId)).toBe(1);

    const tenantRow = async () =>
      (
        await pool.query<{
          name: string;
          email: string;
          billing_email: string;
          paystack_authorization_code: string | null;
          deleted_at: Date | null;
        }>(
          'SELECT name, email, billing_email, paystack_authorization_code, deleted_at FROM tenants WHERE id = $1',
          [tenantId],
        )
      ).rows[0];
    const scrubbed = await tenantRow();
    expect(scrubbed).toMatchObject({
      name: 'deleted tenant',
      email: `deleted+${tenantId}@invalid`,
      billing_email: `deleted+${tenantId}@invalid`,
      paystack_authorization_code: null,
    });
    expect(scrubbed?.deleted_at).toBeInstanceOf(Date);

    const controls = createServiceControlActivities({ pool });
    expect(await controls.getServiceControls(tenantId)).toMatchObject({
      suspended: true,
      reason: req.reason,
      workflowId: req.workflowId,
    });
    const history = await historyCount(tenantId);

    const second = await activities().deleteTenantData(req);

    expect(Object.values(second.deleted)).toEqual([0, 0, 0, 0, 0]);
    expect(await tenantRow()).toEqual(scrubbed);
    expect(await historyCount(tenantId)).toBe(history);
    expect(await countRows('invoices', tenantId)).toBe(1);
    // Deletion is permanent: Restore Service is refused.
    await expectNonRetryable(controls.restoreService({ ...req, reason: 'oops' }), 'TenantDeleted');
  });

  it('refuses an unknown tenant without retrying', async () => {
    await expectNonRetryable(
      activities().deleteTenantData({
        tenantId: `nobody-${suffix()}`,
        workflowId: 'dunning-nobody',
        operator: 'billops',
        reason: 'Data Retention',
        requiredSuspendedDays: 90,
      }),
      'TenantUnknown',
    );
  });
});
