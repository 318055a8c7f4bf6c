// The usage-metering-failure incident on the dev server against real PostgreSQL: generation held, rollups backfilled
// exactly from the raw events, the window's invoices recalculated, delivery held until an operator approves (P1) or
// released by billops once the spot check is clean (other severities); tenants outside the scope are left alone.
import { randomUUID } from 'node:crypto';
import { createInvoicingActivities } from '../../../activities/invoicing';
import { startIncident } from '../../../temporal/incidents';
import { parseDecisionLine } from '../../../domain/decisions';
import type { TimeWindow } from '../../../domain/rollups';
import { approveStepUpdate, recordRootCauseUpdate } from '../../../workflows/definitions';
import { insertTenant } from '../../support/dunningFixtures';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import { startTestWorker, type TestWorker } from '../../support/testWorker';
import {
  expectedRollups,
  generateUsageEvents,
  insertUsageEvents,
  readRollups,
  type TestUsageEvent,
} from '../../support/usageFixtures';

const taskQueue = `metering-${randomUUID().slice(0, 8)}`;
let worker: TestWorker;
let receivers: IncidentReceivers;

beforeAll(async () => {
  receivers = await startIncidentReceivers();
  worker = await startTestWorker(taskQueue, { incidents: receivers.incidents });
});

afterAll(async () => {
  await worker?.stop();
  await receivers?.close();
});

interface MeteredTenant {
  tenantId: string;
  invoiceId: string;
  /** The invoice total the raw events price to. */
  correctTotal: number;
}

/**
 * Tenants on a meter of their own (2 minor units per unit) with raw events in the window, whose rollups were damaged
 * by `damage` before their invoices were generated: the invoices are open and priced from the damaged rollups.
 */
async function meteredTenants(
  window: TimeWindow,
  count: number,
  damage: (tenantIds: string[], meter: string) => Promise<void>,
): Promise<{ tenants: MeteredTenant[]; events: TestUsageEvent[]; meter: string }> {
  const { pool } = worker.deps;
  const meter = `mf_calls_${randomUUID().slice(0, 8)}`;
  await pool.query(
    `INSERT INTO rates (meter, tier, effective_from, pricing_model, unit_price_minor, currency)
     VALUES ($1, 'pro', '2026-01-01T00:00:00Z', 'per_unit', 2, 'USD')`,
    [meter],
  );
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await insertTenant(pool, 'pro')).id);
  const events = generateUsageEvents({ tenants: ids, meters: [meter], window, count: 300, seed: 42 });
  await insertUsageEvents(pool, events);
  for (const r of expectedRollups(events, window, ids)) {
    await pool.query(
      'INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, $4, $5)',
      [r.tenantId, r.meter, r.hour, r.quantity, r.eventCount],
    );
  }
  await damage(ids, meter);
  const { invoices } = await createInvoicingActivities({ pool }).generateInvoices({
    periodStart: window.from,
    periodEnd: window.to,
    tenants: ids,
    idempotencyKey: `before-${meter}`,
  });
  await pool.query(`UPDATE invoices SET status = 'open' WHERE id = ANY($1)`, [
    invoices.map((i) => i.invoiceId),
  ]);
  const inWindow = (e: TestUsageEvent) =>
    e.occurredAt >= Date.parse(window.from) && e.occurredAt < Date.parse(window.to);
  const tenants = ids.map((tenantId) => {
    const milli = events
      .filter((e) => e.tenantId === tenantId && inWindow(e))
      .reduce((sum, e) => sum + e.milli, 0n);
    return {
      tenantId,
      invoiceId: invoices.find((i) => i.tenantId === tenantId)!.invoiceId,
      correctTotal: Number((milli * 2n + 500n) / 1000n),
    };
  });
  return { tenants, events, meter };
}

async function invoiceRow(invoiceId: string) {
  const { rows } = await worker.deps.pool.query<{
    total_minor: number;
    delivery_held: boolean;
    delivery_hold_changed_by: string | null;
    delivered_at: Date | null;
  }>(
    'SELECT total_minor, delivery_held, delivery_hold_changed_by, delivered_at FROM invoices WHERE id = $1',
    [invoiceId],
  );
  return rows[0]!;
}

describe('usage metering failure incident', () => {
  it('P1: holds generation, backfills the exact rollups, recalculates, holds delivery until an operator approves, then releases it', async () => {
    const window = { from: '2026-07-01T00:00:00.000Z', to: '2026-07-01T08:00:00.000Z' };
    const { pool } = worker.deps;
    const { tenants, events, meter } = await meteredTenants(window, 2, async ([lost, stray], m) => {
      // One tenant lost three hours of rollups, the other carries a stray, inflated hour.
      await pool.query(
        `DELETE FROM usage_rollups WHERE tenant_id = $1 AND meter = $2 AND hour IN ($3, $4, $5)`,
        [lost, m, '2026-07-01T01:00:00Z', '2026-07-01T02:00:00Z', '2026-07-01T05:00:00Z'],
      );
      await pool.query(
        `UPDATE usage_rollups SET quantity = quantity + 5000 WHERE tenant_id = $1 AND hour = $2`,
        [stray, '2026-07-01T03:00:00Z'],
      );
    });
    const ids = tenants.map((t) => t.tenantId);
    // A tenant outside the incident, with an undelivered invoice of the same window: never held.
    const bystander = (await meteredTenants(window, 1, async () => undefined)).tenants[0]!;
    for (const t of tenants)
      expect(Number((await invoiceRow(t.invoiceId)).total_minor)).not.toBe(t.correctTotal);
    // One of the damaged invoices had already gone out.
    await pool.query('UPDATE invoices SET delivered_at = now() WHERE id = $1', [tenants[0]!.invoiceId]);

    const handle = await startIncident(
      worker.client,
      taskQueue,
      incidentInput(
        'usage_metering_failure',
        { ...window, tenantIds: ids },
        { key: `mf-${meter}`, summary: 'hourly rollups missing for July 1st', source: 'alertmanager' },
      ),
    );
    const asking = await untilIncident(handle, (s) => s.waitingForApproval !== null, 'approval requested');
    expect(asking.severity).toBe('P1');
    expect(asking.stepsDone.map((s) => s.name)).toEqual([
      'stop invoice generation',
      'hold invoice delivery',
      'check usage_events ingestion',
      'verify aggregation job status',
      'spot check tenants',
      'backfill rollups from raw events (attempt 1 of 25)',
      'validate: spot check rollups against raw events',
      'resume invoice generation',
      'recalculate affected invoices',
      'hold delivery of the recalculated invoices',
    ]);
    const detail = (name: string) => asking.stepsDone.find((s) => s.name === name)?.detail;
    expect(detail('stop invoice generation')).toBe('2 billing holds on 2 tenants, every meter');
    expect(detail('hold invoice delivery')).toBe('1 undelivered invoices of the window held');
    expect(detail('spot check tenants')).toBe('2 tenants checked, 4 hours differ from the raw events');
    expect(detail('validate: spot check rollups against raw events')).toBe('2 tenants clean');
    expect(detail('recalculate affected invoices')).toMatch(
      /^2 invoices over 1 periods: 2 corrected, 0 unchanged, 0 finalized need a credit or adjustment \(changed by USD \d+\.\d\d\)$/,
    );
    expect(asking.waitingForApproval?.question).toContain('Release delivery of 2 held invoices?');

    // The backfill restored exactly the rollups the raw events give, and recorded its run.
    expect(await readRollups(pool, ids)).toEqual(expectedRollups(events, window, ids));
    const { rows: runs } = await pool.query<{ status: string; attempt: number; events_processed: number }>(
      'SELECT status, attempt, events_processed FROM rollup_runs WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(runs).toEqual([{ status: 'succeeded', attempt: 1, events_processed: expect.any(Number) }]);
    // Generation was held per tenant, and resumed once the data validated.
    const { rows: holds } = await pool.query<{
      tenant_id: string;
      meter: string | null;
      released_at: Date | null;
    }>('SELECT tenant_id, meter, released_at FROM billing_holds WHERE workflow_id = $1 ORDER BY tenant_id', [
      handle.workflowId,
    ]);
    expect(holds).toEqual(
      [...ids].sort().map((tenant_id) => ({ tenant_id, meter: null, released_at: expect.any(Date) })),
    );
    // Recalculated from the raw events, and held: a delivery run now delivers none of them.
    for (const t of tenants) {
      expect(await invoiceRow(t.invoiceId)).toMatchObject({
        total_minor: t.correctTotal,
        delivery_held: true,
        delivered_at: null,
      });
    }
    const invoicing = createInvoicingActivities({ pool });
    const run = await invoicing.deliverInvoices({ tenants: ids });
    expect(run.delivered).toEqual([]);
    expect(run.held.map((i) => i.invoiceId).sort()).toEqual(tenants.map((t) => t.invoiceId).sort());
    expect(await invoiceRow(bystander.invoiceId)).toMatchObject({ delivery_held: false });

    await handle.executeUpdate(approveStepUpdate, {
      args: [{ step: 'release invoice delivery', approved: true, operator: 'ada' }],
    });
    const closing = await untilIncident(
      handle,
      (s) => s.currentStep === 'waiting for the root-cause analysis',
      'resolved and closing',
    );
    expect(closing.stepsDone.at(-1)).toMatchObject({
      name: 'release invoice delivery',
      detail: '2 invoices released for delivery',
    });
    for (const t of tenants) {
      expect(await invoiceRow(t.invoiceId)).toMatchObject({
        delivery_held: false,
        delivery_hold_changed_by: 'ada',
      });
    }
    expect((await invoicing.deliverInvoices({ tenants: ids })).delivered).toHaveLength(2);
    const { rows } = await pool.query<{ line: string }>('SELECT line FROM decisions WHERE workflow_id = $1', [
      handle.workflowId,
    ]);
    const entry = parseDecisionLine(rows[0]!.line);
    expect(entry).toMatchObject({
      operator: 'billops',
      incidentType: 'usage_metering_failure',
      tenants: 2,
      credits: null,
      executor: 'billops',
    });
    expect(entry.resolution).toMatch(
      /^rollups of 2026-07-01T00:00:00\.000Z\.\.2026-07-01T08:00:00\.000Z rebuilt/,
    );
    await handle.executeUpdate(recordRootCauseUpdate, {
      args: [{ operator: 'ada', summary: 'aggregation worker lost its database connection' }],
    });
    expect((await handle.result()).status.approvals).toEqual([
      { step: 'release invoice delivery', approved: true, operator: 'ada' },
    ]);
  });

  it('P3 usage data corruption: billops releases delivery itself once the spot check is clean', async () => {
    const window = { from: '2026-07-02T00:00:00.000Z', to: '2026-07-02T04:00:00.000Z' };
    const { pool } = worker.deps;
    const { tenants, meter } = await meteredTenants(window, 1, async ([tenant]) => {
      await pool.query('DELETE FROM usage_rollups WHERE tenant_id = $1 AND hour = $2', [
        tenant,
        '2026-07-02T02:00:00Z',
      ]);
    });
    const [tenant] = tenants;
    const handle = await startIncident(
      worker.client,
      taskQueue,
      incidentInput(
        'usage_data_corruption',
        { ...window, meters: [meter] },
        { key: `dc-${meter}`, severity: 'P3', tenantIds: [tenant!.tenantId] },
      ),
    );
    const closing = await untilIncident(
      handle,
      (s) => s.currentStep === 'waiting for the root-cause analysis',
      'resolved and closing',
    );
    expect(closing.approvals).toEqual([]);
    expect(closing.timeline.some((e) => e.event === 'approval_requested')).toBe(false);
    expect(closing.stepsDone.find((s) => s.name === 'stop invoice generation')?.detail).toBe(
      `1 billing hold on 1 tenant, ${meter}`,
    );
    expect(await invoiceRow(tenant!.invoiceId)).toMatchObject({
      total_minor: tenant!.correctTotal,
      delivery_held: false,
      delivery_hold_changed_by: 'billops',
    });
    const { rows: holds } = await pool.query<{ tenant_id: string; meter: string; released_by: string }>(
      'SELECT tenant_id, meter, released_by FROM billing_holds WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(holds).toEqual([{ tenant_id: tenant!.tenantId, meter, released_by: 'billops' }]);
    await handle.executeUpdate(recordRootCauseUpdate, { args: [{ operator: 'ada', summary: 'bad deploy' }] });
    const outcome = await handle.result();
    expect(parseDecisionLine(outcome.decisionLine)).toMatchObject({
      incidentType: 'usage_data_corruption',
      tenants: 1,
    });
  });
});
