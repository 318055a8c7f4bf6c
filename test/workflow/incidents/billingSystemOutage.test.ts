// The billing system outage on the time-skipping server, with the real policy durations, a PostgreSQL database of its
// own (read-only mode and table locks are global to a database) and real local receivers: health checks that find
// writes failing, scale-up through a webhook, read-only mode with the dunning's critical operations queued, failover
// only after a person approves (the approval escalating at the response time), probes backing off until healthy,
// then the queue replayed once each in order, the status page and customers told, DECISIONS.log and the report.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { paymentReference, createPaymentActivities } from '../../../activities/payments';
import { createServiceControlActivities } from '../../../activities/serviceControls';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import type { IncidentStatus } from '../../../domain/incident';
import { parsePolicy } from '../../../domain/policy';
import type { WorkerDependencies } from '../../../workers/dependencies';
import {
  acknowledgeUpdate,
  alertResolvedSignal,
  approveStepUpdate,
  incidentStatusQuery,
  recordRootCauseUpdate,
} from '../../../workflows/definitions';
import { billingSystemOutageWorkflow } from '../../../workflows/incidents/billingSystemOutage';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../../support/dunningFixtures';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from '../../support/paystackFake';
import { privateDatabase } from '../../support/privateDatabase';
import { testEnv } from '../../support/testRuntime';
import { startTimeSkipping, type TimeSkipping } from '../../support/timeSkipping';
import { TEST_PORTAL_URL, testWorkerDependencies, type TestWorkerOptions } from '../../support/workerDeps';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

// Real durations; only the database probe's I/O timeout is shortened, since each probe waits it out on a lock.
const policy = parsePolicy({ billingSystemOutage: { databaseTimeoutMs: 500 } });

let ts: TimeSkipping;
let receivers: IncidentReceivers;
let paystack: PaystackFake;
let health: HealthEndpoint;
let databaseUrl: string;
// The first test's dependencies, which carry the outage hooks.
let hooked: WorkerDependencies | undefined;
const failoverLog = join(mkdtempSync(join(tmpdir(), 'billops-outage-')), 'failover.log');

interface HealthEndpoint {
  url: string;
  status: number;
  hits: number[];
  close(): Promise<void>;
}

beforeAll(async () => {
  receivers = await startIncidentReceivers();
  paystack = await startPaystackFake();
  health = await startHealthEndpoint();
  databaseUrl = (await privateDatabase('outage_wf')).url;
  ts = await startTimeSkipping(wiring({}));
});

afterAll(async () => {
  await hooked?.close();
  await ts?.close();
  await receivers?.close();
  await paystack?.close();
  await health?.close();
});

jest.setTimeout(300_000);

/** The billing API's health endpoint: answers `status`, remembers when (workflow time is not ours: real ms). */
async function startHealthEndpoint(): Promise<HealthEndpoint> {
  const endpoint = { status: 200, hits: [] as number[] } as HealthEndpoint;
  const server: Server = createServer((_req, res) => {
    endpoint.hits.push(Date.now());
    res.writeHead(endpoint.status, { 'Content-Type': 'text/plain' });
    res.end(endpoint.status === 200 ? 'ok' : 'down');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  endpoint.close = () => new Promise<void>((r) => server.close(() => r()));
  return endpoint;
}

/** This suite's own database, Paystack, the receivers and the health endpoint, with the outage hooks given. */
function wiring(hooks: { scaleUpHook?: string; failoverHook?: string }): TestWorkerOptions {
  return {
    databaseUrl,
    gateways: { paystack: fakePaystackGateway(paystack) },
    incidents: { ...receivers.incidents, healthUrl: health.url, ...hooks },
  };
}

const at = (status: IncidentStatus, event: string, detail?: RegExp) =>
  status.timeline.filter((e) => e.event === event && (!detail || detail.test(e.detail ?? '')));
const minutesBetween = (from: string, to: string) => Math.round((Date.parse(to) - Date.parse(from)) / MINUTE);
const mailTo = (tenant: TestTenant) =>
  readCaughtMail(testEnv('mailDir'))
    .filter((m) => m.to.includes(tenant.billingEmail))
    .map((m) => m.subject);

describe('billing system outage on the time-skipping server', () => {
  it('writes failing (P1): read-only with the dunning queued, failover after approval, probes back off, replay once in order, DECISIONS.log', async () => {
    const deps = testWorkerDependencies(
      wiring({
        scaleUpHook: receivers.hookUrl('scale-up'),
        failoverHook: `printf '%s %s\\n' "$BILLOPS_HOOK_ACTION" "$BILLOPS_INCIDENT_ID" >> ${failoverLog}`,
      }),
    );
    hooked = deps;
    const taskQueue = `billing-outage-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue, deps);

    // Writes to payments stall behind a lock nobody releases; the billing API answers 503.
    const locker = new Client({ connectionString: databaseUrl });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE payment_transactions IN EXCLUSIVE MODE');
    health.status = 503;
    health.hits = [];

    const authorization = `AUTH_${randomUUID().slice(0, 8)}`;
    paystack.authorize(authorization, { outcome: 'success' });
    const dunned = await insertTenant(deps.pool, 'pro', {
      processor: 'paystack',
      paystackAuthorization: authorization,
    });
    const invoice = await insertOpenInvoice(deps.pool, dunned.id, { processor: 'paystack' });
    const named = await insertTenant(deps.pool, 'enterprise');
    const key = `fp-${randomUUID().slice(0, 8)}`;
    const input = incidentInput(
      'billing_system_outage',
      { symptom: 'payments and account changes are failing' },
      { key, tenantIds: [named.id], policy, source: 'alertmanager', openedBy: 'alertmanager' },
    );

    await worker.runUntil(async () => {
      const handle = await ts.env.client.workflow.start(billingSystemOutageWorkflow, {
        workflowId: `incident-billing_system_outage-${key}`,
        taskQueue,
        args: [input],
      });
      let status = await untilIncident(handle, (s) => s.waitingForApproval !== null, 'the failover question');
      expect(status.severity).toBe('P1');
      expect(status.stepsDone.map((s) => s.name)).toEqual([
        'check system health',
        'refresh the pricing cache',
        'post status page: investigating',
        'notify affected customers',
        'scale up billing service replicas',
        'enable read-only mode and queue critical operations',
      ]);
      expect(status.stepsDone[0]!.detail).toMatch(/answered HTTP 503/);
      expect(status.stepsDone[0]!.detail).toMatch(
        /writes fail: payment_transactions: canceling statement due to lock timeout/,
      );
      expect(status.stepsDone[4]!.detail).toBe(
        `webhook: webhook ${new URL(receivers.hookUrl('scale-up')).origin} answered HTTP 200`,
      );
      expect(status.waitingForApproval).toMatchObject({
        step: 'failover',
        question: expect.stringMatching(/^Fail billing over to the backup region\? writes fail/),
      });
      expect(at(status, 'skipped').map((e) => e.detail)).toEqual([
        'use cached pricing: the database answers',
      ]);
      const scaleUps = receivers.hookCalls().filter((c) => c.path === '/hooks/scale-up');
      expect(scaleUps.map((c) => c.body)).toEqual([
        {
          incident: {
            workflowId: handle.workflowId,
            kind: 'billing_system_outage',
            severity: 'P1',
            summary: input.summary,
          },
          action: 'scale_up',
          // The key names the occurrence: the workflow id and the run that contains it.
          idempotency_key: `${handle.workflowId}/${(await handle.describe()).runId}/hook/scale_up`,
        },
      ]);
      const override = await deps.pool.query(
        `SELECT workflow_id, set_by FROM operational_overrides WHERE name = 'billing_read_only' AND cleared_at IS NULL`,
      );
      expect(override.rows).toEqual([{ workflow_id: handle.workflowId, set_by: 'billops' }]);
      expect(mailTo(named)).toEqual([`Service Notice - Account #${named.id}`]);
      status = await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });

      // The dunning lifecycle's critical operations meanwhile: a suspension, a payment retry, a restore.
      const controls = createServiceControlActivities({ pool: deps.pool });
      const payments = createPaymentActivities({
        pool: deps.pool,
        ...deps.gateways,
        billingPortalUrl: TEST_PORTAL_URL,
      });
      const who = { tenantId: dunned.id, workflowId: `dunning-${dunned.id}`, operator: 'billops' };
      const suspended = await controls.applyServiceControls({
        ...who,
        reason: 'suspension',
        suspended: true,
      });
      expect(suspended.queuedOperation?.status).toBe('queued');
      const retryKey = `dunning-${dunned.id}/run/retry-3/${invoice.invoiceId}`;
      const retried = await payments.retryInvoicePayment({
        idempotencyKey: retryKey,
        tenantId: dunned.id,
        invoiceId: invoice.invoiceId,
        attempt: 3,
      });
      expect(retried).toMatchObject({
        outcome: 'failed',
        reason: expect.stringMatching(/^billing is read-only/),
      });
      await controls.restoreService({ ...who, reason: 'payment received' });
      expect(paystack.charges()).toEqual([]);

      // Nobody answers the failover question for the P1 response time: the next level hears of it.
      await ts.env.sleep(14 * MINUTE);
      expect(at(await handle.query(incidentStatusQuery), 'approval_overdue')).toEqual([]);
      await ts.env.sleep(2 * MINUTE);
      status = await handle.query(incidentStatusQuery);
      const overdue = at(status, 'approval_overdue');
      expect(overdue).toHaveLength(1);
      expect(minutesBetween(status.waitingForApproval!.since, overdue[0]!.at)).toBe(15);
      expect(overdue[0]!.detail).toMatch(/^failover: paged Engineering Lead, Product/);
      expect(existsSync(failoverLog)).toBe(false);

      status = await handle.executeUpdate(approveStepUpdate, {
        args: [{ step: 'failover', approved: true, operator: 'ada', reason: 'region B is healthy' }],
      });
      status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for recovery',
        'waiting for recovery',
      );
      expect(readFileSync(failoverLog, 'utf8')).toBe(`failover ${handle.workflowId}\n`);
      expect(status.stepsDone.map((s) => s.name).slice(-2)).toEqual([
        'fail over to the backup region',
        'post status page: identified',
      ]);
      expect(status.stepsDone.at(-2)!.detail).toBe('command: command exited 0');
      const waitFrom = status.stepsDone.at(-1)!.at;

      // Still failing: probes at 1, 3 and 7 minutes (doubling), each finding writes blocked.
      const before = health.hits.length;
      await ts.env.sleep(8 * MINUTE);
      expect(health.hits.length - before).toBe(3);
      expect((await handle.query(incidentStatusQuery)).currentStep).toBe('waiting for recovery');

      // The lock is released and the API recovers: the probe at 15 minutes finds it healthy.
      await locker.query('ROLLBACK');
      await locker.end();
      health.status = 200;
      await ts.env.sleep(8 * MINUTE);
      status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'the incident closing',
      );
      expect(health.hits.length - before).toBe(4 + 1);
      const healthy = at(status, 'probe_healthy');
      expect(healthy).toHaveLength(1);
      expect(minutesBetween(waitFrom, healthy[0]!.at)).toBe(15);

      // The queue: replayed in the order it was queued, once each; the charge under the dunning step's reference.
      const replay = status.stepsDone.find(
        (s) => s.name === 'replay queued critical operations and leave read-only mode',
      )!;
      expect(replay.detail).toMatch(
        /^3 replayed, 0 failed; billing_read_only cleared; #\d+ applyServiceControls /,
      );
      const queued = await deps.pool.query<{ kind: string; status: string; result: { outcome?: string } }>(
        'SELECT kind, status, result FROM queued_operations WHERE workflow_id = $1 ORDER BY id',
        [handle.workflowId],
      );
      expect(queued.rows.map((r) => [r.kind, r.status])).toEqual([
        ['suspension', 'replayed'],
        ['payment', 'replayed'],
        ['service_control', 'replayed'],
      ]);
      expect(queued.rows[1]!.result.outcome).toBe('succeeded');
      expect(paystack.charges().map((c) => c.reference)).toEqual([paymentReference(retryKey)]);
      const paid = await deps.pool.query('SELECT status FROM invoices WHERE id = $1', [invoice.invoiceId]);
      expect(paid.rows[0].status).toBe('paid');
      const controlsNow = await controls.getServiceControls(dunned.id);
      expect(controlsNow).toMatchObject({ suspended: false, rateLimitPercent: 100 });
      const cleared = await deps.pool.query(
        `SELECT cleared_by FROM operational_overrides WHERE name = 'billing_read_only' AND workflow_id = $1`,
        [handle.workflowId],
      );
      expect(cleared.rows).toEqual([{ cleared_by: 'billops' }]);

      // The status page through the incident, and every affected customer told it is over.
      const pages = receivers
        .statusPageUpdates()
        .map((u) => u.incident as { status: string; external_id: string })
        .filter((i) => i.external_id === handle.workflowId);
      expect(pages.map((p) => p.status)).toEqual(['investigating', 'identified', 'resolved']);
      expect(mailTo(named)).toEqual([
        `Service Notice - Account #${named.id}`,
        `Service Notice Resolved - Account #${named.id}`,
      ]);
      expect(mailTo(dunned)).toContain(`Service Notice Resolved - Account #${dunned.id}`);

      // DECISIONS.log: resolved by billops, both tenants counted, the impact in words.
      const { rows } = await deps.pool.query<{ line: string; report_md: string }>(
        `SELECT d.line, i.report_md FROM decisions d JOIN incidents i ON i.workflow_id = d.workflow_id
         WHERE d.workflow_id = $1`,
        [handle.workflowId],
      );
      expect(rows).toHaveLength(1);
      expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
        operator: 'billops',
        incidentType: 'billing_system_outage',
        tenants: 2,
        impact: expect.stringMatching(
          /^service: billing system unhealthy for 0 hours 3\d minutes; read-only with 3 critical operations queued for 1 tenants$/,
        ),
        resolution: expect.stringMatching(
          /^recovered \(probe healthy\); read-only mode lifted after 3 queued/,
        ),
        credits: null,
        executor: 'billops',
      });
      expect(readFileSync(deps.decisionsLogPath, 'utf8')).toContain(rows[0]!.line);
      expect(rows[0]!.report_md).toContain(
        '- [x] fail over to the backup region — command: command exited 0',
      );

      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'a migration held a lock on payment_transactions' }],
      });
      const outcome = await handle.result();
      expect(outcome.status.phase).toBe('closed');
      expect(outcome.status.approvals).toEqual([
        { step: 'failover', approved: true, operator: 'ada', reason: 'region B is healthy' },
      ]);
    });
  });

  it('billing dashboard down (P3), database fine, no hooks: nothing to contain; the alert resolving ends it', async () => {
    const { deps } = ts;
    const taskQueue = `dashboard-down-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue, deps);
    health.status = 503;
    const key = `fp-${randomUUID().slice(0, 8)}`;
    const input = incidentInput('billing_dashboard_down', {}, { key, policy });

    await worker.runUntil(async () => {
      const handle = await ts.env.client.workflow.start(billingSystemOutageWorkflow, {
        workflowId: `incident-billing_dashboard_down-${key}`,
        taskQueue,
        args: [input],
      });
      let status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for recovery',
        'waiting for recovery',
      );
      expect(status.severity).toBe('P3');
      expect(status.waitingForApproval).toBeNull();
      expect(at(status, 'skipped').map((e) => e.detail)).toEqual([
        'notify affected customers: no tenant named; those whose payments or account changes are queued are told when they are replayed',
        'scale up billing service replicas: no scale-up hook configured (BILLOPS_SCALE_UP_HOOK)',
        'enable read-only mode: writes go through',
        'use cached pricing: the database answers',
        'failover: the database is reachable and takes writes',
      ]);

      await ts.env.sleep(10 * MINUTE);
      health.status = 200;
      await handle.signal(alertResolvedSignal, { endsAt: new Date().toISOString() });
      status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'the incident closing',
      );
      expect(minutesBetween(status.openedAt, status.alertResolvedAt!)).toBe(10);
      // No tenant was affected: nobody to tell.
      expect(status.stepsDone.map((s) => s.name).slice(-4)).toEqual([
        'post status page: identified',
        'verify system health',
        'refresh the pricing cache after recovery',
        'post status page: resolved',
      ]);
      const { rows } = await deps.pool.query<{ line: string }>(
        'SELECT line FROM decisions WHERE workflow_id = $1',
        [handle.workflowId],
      );
      expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
        operator: 'billops',
        incidentType: 'billing_dashboard_down',
        tenants: 0,
        impact: 'service: billing system unhealthy for 0 hours 10 minutes',
        resolution: 'recovered (alert resolved); billing never went read-only',
      });

      // No root cause within 48 hours: the reminder, then the incident closes.
      await ts.env.sleep(49 * HOUR);
      const outcome = await handle.result();
      expect(outcome.status.phase).toBe('closed');
      expect(at(outcome.status, 'rca_reminder_sent')).toHaveLength(1);
    });
  });
});
