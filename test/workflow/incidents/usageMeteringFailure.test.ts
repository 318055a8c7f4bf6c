// The usage-metering-failure incident on the time-skipping server with the real policy: a failing backfill is rerun
// every 2 hours (for up to 48 hours), each attempt a rollup_runs row; a P1 waits for an operator to release invoice
// delivery, paging the next level each 30 minutes nobody answers; after 48 hours of failures the holds stay.
import { randomUUID } from 'node:crypto';
import { createInvoicingActivities } from '../../../activities/invoicing';
import { parseDecisionLine } from '../../../domain/decisions';
import type { IncidentStatus } from '../../../domain/incident';
import type { TimeWindow } from '../../../domain/rollups';
import {
  acknowledgeUpdate,
  approveStepUpdate,
  incidentStatusQuery,
  recordRootCauseUpdate,
  resolveUpdate,
} from '../../../workflows/definitions';
import { usageMeteringFailureWorkflow } from '../../../workflows/incidents/usageMeteringFailure';
import { insertTenant } from '../../support/dunningFixtures';
import { privateDatabase, type PrivateDatabase } from '../../support/privateDatabase';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import { startTimeSkipping, type TimeSkipping } from '../../support/timeSkipping';
import {
  expectedRollups,
  generateUsageEvents,
  insertUsageEvents,
  readRollups,
} from '../../support/usageFixtures';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const WINDOW: TimeWindow = { from: '2026-06-01T00:00:00.000Z', to: '2026-06-01T06:00:00.000Z' };

let ts: TimeSkipping;
let receivers: IncidentReceivers;
// The broken tenants' triggers are DDL on usage_rollups: an ACCESS EXCLUSIVE lock that would queue every other suite's
// rollups behind any transaction holding a row there. They live in a database of this suite's own.
let database: PrivateDatabase;

beforeAll(async () => {
  receivers = await startIncidentReceivers();
  database = await privateDatabase('umf_wf');
  ts = await startTimeSkipping({ incidents: receivers.incidents, databaseUrl: database.url });
  await ts.deps.pool.query(
    `CREATE OR REPLACE FUNCTION billops_test_refuse_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION 'rollup storage unavailable (test)'; END $$`,
  );
});

afterAll(async () => {
  await ts?.close();
  await receivers?.close();
  await database?.drop();
});

/**
 * A tenant whose rollups lost half their hours: its open invoice was priced from what was left. A per-unit rate of
 * 2 minor units on a meter of its own. Writing its rollups fails until the returned `repair` is called.
 */
async function brokenTenant(): Promise<{
  tenantId: string;
  invoiceId: string;
  expectedTotal: number;
  repair(): Promise<void>;
}> {
  const { pool } = ts.deps;
  const { id: tenantId } = await insertTenant(pool, 'pro');
  const meter = `ts_calls_${randomUUID().slice(0, 8)}`;
  await pool.query(
    `INSERT INTO rates (meter, tier, effective_from, pricing_model, unit_price_minor, currency)
     VALUES ($1, 'pro', '2026-01-01T00:00:00Z', 'per_unit', 2, 'USD')`,
    [meter],
  );
  const events = generateUsageEvents({
    tenants: [tenantId],
    meters: [meter],
    window: WINDOW,
    count: 60,
    seed: 11,
  });
  await insertUsageEvents(pool, events);
  const rollups = expectedRollups(events, WINDOW, [tenantId]);
  for (const r of rollups.filter((_, i) => i % 2 === 0)) {
    await pool.query(
      'INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, $4, $5)',
      [r.tenantId, r.meter, r.hour, r.quantity, r.eventCount],
    );
  }
  const generated = await createInvoicingActivities({ pool }).generateInvoices({
    periodStart: WINDOW.from,
    periodEnd: WINDOW.to,
    tenants: [tenantId],
    idempotencyKey: `before-incident-${tenantId}`,
  });
  const invoiceId = generated.invoices[0]!.invoiceId;
  await pool.query(`UPDATE invoices SET status = 'open' WHERE id = $1`, [invoiceId]);
  const milli = events
    .filter((e) => e.occurredAt >= Date.parse(WINDOW.from) && e.occurredAt < Date.parse(WINDOW.to))
    .reduce((sum, e) => sum + e.milli, 0n);
  // 2 minor units per unit, rounded half up once for the line.
  const expectedTotal = Number((milli * 2n + 500n) / 1000n);
  const trigger = `refuse_${tenantId.replace(/[^a-z0-9]/g, '_')}`;
  await pool.query(
    `CREATE TRIGGER ${trigger} BEFORE INSERT OR UPDATE ON usage_rollups FOR EACH ROW
     WHEN (NEW.tenant_id = '${tenantId}') EXECUTE FUNCTION billops_test_refuse_rollup()`,
  );
  return {
    tenantId,
    invoiceId,
    expectedTotal,
    repair: async () => {
      await pool.query(`DROP TRIGGER IF EXISTS ${trigger} ON usage_rollups`);
    },
  };
}

const attemptsDone = (s: IncidentStatus) =>
  s.stepsDone.filter((x) => x.name.startsWith('backfill rollups')).length;

async function runsOf(workflowId: string) {
  const { rows } = await ts.deps.pool.query<{
    attempt: number;
    status: string;
    started_at: Date;
    error: string | null;
  }>('SELECT attempt, status, started_at, error FROM rollup_runs WHERE workflow_id = $1 ORDER BY attempt', [
    workflowId,
  ]);
  const first = rows[0]?.started_at.getTime() ?? 0;
  return rows.map((r) => ({
    attempt: r.attempt,
    status: r.status,
    // Workflow-clock offsets carry the few real milliseconds between timers: compare to the second.
    hoursAfterFirst: Math.round((r.started_at.getTime() - first) / 1000) / 3600,
    error: r.error,
  }));
}

const minutesAfter = (status: IncidentStatus, event: string, from: string) =>
  status.timeline
    .filter((e) => e.event === event)
    .map((e) => Math.round((Date.parse(e.at) - Date.parse(from)) / MINUTE));

jest.setTimeout(300_000);

describe('usage metering failure on the time-skipping server', () => {
  it('reruns the failed backfill at 0, 2 and 4 hours; a P1 waits for approval, escalating every 30 minutes unanswered; then delivery is released', async () => {
    const taskQueue = `metering-p1-${randomUUID().slice(0, 8)}`;
    const worker = await ts.newWorker(taskQueue);
    const broken = await brokenTenant();
    await worker.runUntil(async () => {
      const handle = await ts.env.client.workflow.start(usageMeteringFailureWorkflow, {
        workflowId: `incident-usage_metering_failure-ts-${broken.tenantId}`,
        taskQueue,
        args: [
          incidentInput(
            'usage_metering_failure',
            { ...WINDOW, tenantIds: [broken.tenantId] },
            { key: `ts-${broken.tenantId}`, tenantIds: [broken.tenantId] },
          ),
        ],
      });
      let status = await untilIncident(
        handle,
        (s) => s.currentStep?.startsWith('waiting to rerun') ?? false,
        'attempt 1',
      );
      expect(status.severity).toBe('P1');
      expect(status.stepsDone.map((s) => s.name)).toEqual([
        'stop invoice generation',
        'hold invoice delivery',
        'check usage_events ingestion',
        'verify aggregation job status',
        'spot check tenants',
        'backfill rollups from raw events (attempt 1 of 25)',
      ]);
      expect(status.stepsDone[4]?.detail).toMatch(
        /^1 tenants checked, [1-9]\d* hours differ from the raw events$/,
      );
      expect(status.stepsDone[5]?.detail).toContain('failed: rollup storage unavailable (test)');
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });

      await ts.env.sleep(2 * HOUR);
      await untilIncident(
        handle,
        (s) => attemptsDone(s) === 2 && !s.currentStep?.startsWith('backfill'),
        'attempt 2',
      );
      await broken.repair();
      await ts.env.sleep(2 * HOUR);
      status = await untilIncident(handle, (s) => s.waitingForApproval !== null, 'approval requested');
      expect(await runsOf(handle.workflowId)).toEqual([
        {
          attempt: 1,
          status: 'failed',
          hoursAfterFirst: 0,
          error: expect.stringContaining('unavailable (test)'),
        },
        {
          attempt: 2,
          status: 'failed',
          hoursAfterFirst: 2,
          error: expect.stringContaining('unavailable (test)'),
        },
        { attempt: 3, status: 'succeeded', hoursAfterFirst: 4, error: null },
      ]);
      expect(status.waitingForApproval?.step).toBe('release invoice delivery');
      expect(status.stepsDone.slice(6).map((s) => s.name)).toEqual([
        'backfill rollups from raw events (attempt 2 of 25)',
        'backfill rollups from raw events (attempt 3 of 25)',
        'validate: spot check rollups against raw events',
        'resume invoice generation',
        'recalculate affected invoices',
        'hold delivery of the recalculated invoices',
      ]);
      // Corrected from the raw events, and held until someone approves.
      const invoice = async () =>
        (
          await ts.deps.pool.query<{
            total_minor: number;
            delivery_held: boolean;
            delivery_hold_changed_by: string;
          }>('SELECT total_minor, delivery_held, delivery_hold_changed_by FROM invoices WHERE id = $1', [
            broken.invoiceId,
          ])
        ).rows[0]!;
      expect(await invoice()).toMatchObject({
        total_minor: broken.expectedTotal,
        delivery_held: true,
      });

      // Nobody answers: the next level is paged at 30 and 60 minutes after the question.
      const asked = status.waitingForApproval!.since;
      await ts.env.sleep(29 * MINUTE);
      expect((await handle.query(incidentStatusQuery)).escalationLevel).toBe(0);
      await ts.env.sleep(32 * MINUTE);
      status = await untilIncident(handle, (s) => s.escalationLevel === 2, 'second escalation');
      expect(minutesAfter(status, 'approval_overdue', asked)).toEqual([30, 60]);
      const levels = receivers
        .pagerDutyEvents(handle.workflowId)
        .filter((e) => e.event_action === 'trigger')
        .map(
          (e) =>
            (e.payload as { custom_details: { escalation_level: number } }).custom_details.escalation_level,
        );
      expect(levels).toEqual([0, 1, 2]);

      await handle.executeUpdate(approveStepUpdate, {
        args: [
          { step: 'release invoice delivery', approved: true, operator: 'ada', reason: 'totals checked' },
        ],
      });
      status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'resolved and closing',
      );
      expect(await invoice()).toMatchObject({ delivery_held: false, delivery_hold_changed_by: 'ada' });
      expect(status.resolution?.by).toBe('billops');
      const { rows } = await ts.deps.pool.query<{ line: string }>(
        'SELECT line FROM decisions WHERE workflow_id = $1',
        [handle.workflowId],
      );
      expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
        operator: 'billops',
        incidentType: 'usage_metering_failure',
        tenants: 1,
        credits: null,
      });
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'rollup tablespace full' }],
      });
      expect((await handle.result()).status.phase).toBe('closed');
    });
  });

  it('stops rerunning after 48 hours: 25 attempts, the holds stay, and an operator resolves it', async () => {
    const taskQueue = `metering-exhausted-${randomUUID().slice(0, 8)}`;
    const worker = await ts.newWorker(taskQueue);
    const broken = await brokenTenant();
    await worker.runUntil(async () => {
      const handle = await ts.env.client.workflow.start(usageMeteringFailureWorkflow, {
        workflowId: `incident-usage_data_corruption-ts-${broken.tenantId}`,
        taskQueue,
        args: [
          incidentInput(
            'usage_data_corruption',
            { ...WINDOW, tenantIds: [broken.tenantId] },
            { key: `ts-${broken.tenantId}`, tenantIds: [broken.tenantId], severity: 'P3' },
          ),
        ],
      });
      await untilIncident(handle, (s) => s.currentStep?.startsWith('waiting to rerun') ?? false, 'attempt 1');
      for (let attempt = 2; attempt <= 25; attempt++) {
        await ts.env.sleep(2 * HOUR);
        await untilIncident(handle, (s) => attemptsDone(s) === attempt, `attempt ${attempt}`);
      }
      const status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for an operator to resolve',
        'waiting for an operator',
      );
      const runs = await runsOf(handle.workflowId);
      expect(runs.map((r) => r.hoursAfterFirst)).toEqual(Array.from({ length: 25 }, (_, i) => 2 * i));
      expect(runs.every((r) => r.status === 'failed')).toBe(true);
      expect(status.timeline.find((e) => e.event === 'skipped')?.detail).toBe(
        `release invoice generation and delivery: the rollups of ${WINDOW.from}..${WINDOW.to} did not validate in 25 ` +
          'attempts over 48 hours; the holds stay in place',
      );
      await handle.executeUpdate(resolveUpdate, {
        args: [{ operator: 'ada', summary: 'rollup storage moved; backfill to be rerun by hand' }],
      });
      await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
      const holds = await ts.deps.pool.query<{ released_at: Date | null }>(
        'SELECT released_at FROM billing_holds WHERE workflow_id = $1',
        [handle.workflowId],
      );
      expect(holds.rows).toEqual([{ released_at: null }]);
      const invoice = await ts.deps.pool.query<{ delivery_held: boolean }>(
        'SELECT delivery_held FROM invoices WHERE id = $1',
        [broken.invoiceId],
      );
      expect(invoice.rows[0]?.delivery_held).toBe(true);
      await handle.executeUpdate(recordRootCauseUpdate, { args: [{ operator: 'ada', summary: 'disk' }] });
      await handle.result();
      await broken.repair();
      // The rollups stay as they were left: nothing was written by a failed attempt.
      expect((await readRollups(ts.deps.pool, [broken.tenantId])).length).toBeGreaterThan(0);
    });
  });
});
