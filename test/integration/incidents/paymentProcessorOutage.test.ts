// The payment processor outage against real servers: stripe-mock behind a switch that can take it down, the local
// Paystack-shaped server, PostgreSQL, SMTP and the Temporal dev server (its own namespace, so the dunning mass action
// reaches only this suite's lifecycles). Probes, webhook endpoint checks, the idempotent mass action, and a Stripe
// outage from alert to DECISIONS.log with Paystack as the backup.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { createPaystackGateway } from '../../../drivers/paystack';
import { createStripeGateway } from '../../../drivers/stripe';
import { createProcessorOutageActivities } from '../../../activities/incidents/paymentProcessorOutage';
import { dunningWorkflowId, startOrJoinDunning } from '../../../temporal/dunning';
import { startIncident } from '../../../temporal/incidents';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import { ensureSearchAttributes } from '../../../temporal/searchAttributes';
import { parseDecisionLine } from '../../../domain/decisions';
import type { DunningStatus } from '../../../domain/dunning';
import type { IncidentStatus } from '../../../domain/incident';
import { createBillopsWorker } from '../../../workers/createWorker';
import type { WorkerDependencies } from '../../../workers/dependencies';
import {
  alertResolvedSignal,
  dunningStatusQuery,
  recordRootCauseUpdate,
} from '../../../workflows/definitions';
import { forward, listenOnLoopback } from '../../support/httpProxy';
import {
  dunningInput,
  insertOpenInvoice,
  insertTenant,
  type TestTenant,
} from '../../support/dunningFixtures';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from '../../support/paystackFake';
import { pollUntil } from '../../support/poll';
import { testEnv, workflowBundle } from '../../support/testRuntime';
import { testWorkerDependencies } from '../../support/workerDeps';

const HOUR = 3_600_000;
const NAMESPACE = 'billops-outage-test';
const PROBE_PATH = '/transaction/verify/billops-connectivity-probe';

interface SeenRequest {
  method: string;
  path: string;
  status: number;
}

type SwitchMode = 'up' | 'down' | 'hang';

/** stripe-mock behind a switch: up forwards, down answers 503 as Stripe does in an outage, hang never answers. */
async function startStripeSwitch(target: string) {
  const upstream = new URL(target);
  const seen: SeenRequest[] = [];
  const state = { mode: 'up' as SwitchMode };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const entry = { method: req.method ?? '', path: req.url ?? '', status: 0 };
    seen.push(entry);
    if (state.mode === 'hang') return;
    if (state.mode === 'down') {
      entry.status = 503;
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'api_error', message: 'Service Unavailable' } }));
      return;
    }
    forward(upstream, req, res, {
      onStatus: (status) => {
        entry.status = status;
      },
    });
  });
  return {
    ...(await listenOnLoopback(server)),
    seen,
    set: (mode: SwitchMode) => {
      state.mode = mode;
    },
  };
}

/** The suite's own namespace on the dev server, usable once the frontend knows it. */
async function ensureNamespace(connection: Connection): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace: NAMESPACE,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
  } catch (error) {
    if ((error as { code?: number }).code !== 6) throw error;
  }
  await ensureSearchAttributes(connection, NAMESPACE);
  const client = new Client({ connection, namespace: NAMESPACE });
  await pollUntil(
    () =>
      client.workflow.count("WorkflowType = 'dunningWorkflow'").then(
        () => true,
        () => false,
      ),
    (ok) => ok,
    `namespace ${NAMESPACE} usable`,
  );
}

let connection: Connection;
let nativeConnection: NativeConnection;
let client: Client;
let stripe: Awaited<ReturnType<typeof startStripeSwitch>>;
let paystack: PaystackFake;
let receivers: IncidentReceivers;
let deps: WorkerDependencies;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `outage-${Date.now()}`;
const started: string[] = [];

beforeAll(async () => {
  connection = await Connection.connect({ address: testEnv('temporalAddress') });
  await ensureNamespace(connection);
  client = new Client({ connection, namespace: NAMESPACE });
  stripe = await startStripeSwitch(testEnv('stripeApiBase'));
  // stripe-mock loads its OpenAPI spec for a few seconds after it starts listening.
  const direct = createStripeGateway({ secretKey: 'sk_test_outage', apiBase: testEnv('stripeApiBase') });
  await pollUntil(
    () =>
      direct.sdk.balance.retrieve().then(
        () => true,
        () => false,
      ),
    (ok) => ok,
    'stripe-mock answering',
  );
  paystack = await startPaystackFake();
  receivers = await startIncidentReceivers();
  deps = testWorkerDependencies({
    gateways: {
      stripe: createStripeGateway({ secretKey: 'sk_test_outage', apiBase: stripe.url, timeoutMs: 5_000 }),
      paystack: fakePaystackGateway(paystack),
    },
    incidents: { ...receivers.incidents, backupProcessor: 'paystack' },
    temporalClient: client,
  });
  nativeConnection = await NativeConnection.connect({ address: testEnv('temporalAddress') });
  worker = await createBillopsWorker({
    connection: nativeConnection,
    namespace: NAMESPACE,
    taskQueue,
    deps,
    workflowBundle: workflowBundle(),
  });
  running = worker.run();
});

afterAll(async () => {
  for (const id of started) {
    await client.workflow
      .getHandle(id)
      .terminate('test done')
      .catch(() => undefined);
  }
  worker?.shutdown();
  await running;
  await nativeConnection?.close();
  await connection?.close();
  await deps?.close();
  await Promise.all([stripe?.close(), paystack?.close(), receivers?.close()]);
});

jest.setTimeout(180_000);

const activities = (overrides: Partial<Parameters<typeof createProcessorOutageActivities>[0]> = {}) =>
  createProcessorOutageActivities({
    pool: deps.pool,
    ...deps.gateways,
    billingPortalUrl: deps.billingPortalUrl,
    backupProcessor: 'paystack',
    temporalClient: client,
    ...overrides,
  });

const mailTo = (tenant: TestTenant, subject: string) =>
  readCaughtMail(testEnv('mailDir')).filter(
    (m) => m.to.includes(tenant.billingEmail) && m.subject === subject,
  );

describe('probes and configuration checks', () => {
  beforeEach(() => {
    stripe.set('up');
    stripe.seen.length = 0;
    paystack.reset();
  });

  it('probes Stripe with GET /v1/balance and reads its webhook endpoints, their URL and status (stripe-mock fixture)', async () => {
    const act = activities();
    const probe = await act.probeProcessor({ processor: 'stripe', timeoutMs: 5_000 });
    expect(probe).toMatchObject({ processor: 'stripe', healthy: true, reachable: true, keyAccepted: true });
    const webhooks = await act.checkProcessorWebhooks({ processor: 'stripe', timeoutMs: 5_000 });
    expect(webhooks).toMatchObject({
      checked: true,
      endpoints: [{ url: 'https://example.com/my/webhook/endpoint', status: 'enabled', ours: false }],
      problem: 'no registered endpoint points at /webhooks/stripe',
    });
    expect(stripe.seen).toEqual([
      { method: 'GET', path: '/v1/balance', status: 200 },
      { method: 'GET', path: '/v1/webhook_endpoints?limit=100', status: 200 },
    ]);
  });

  it('reports Stripe down on a 503, on no answer within the timeout, and a refused key as such', async () => {
    const act = activities();
    stripe.set('down');
    expect(await act.probeProcessor({ processor: 'stripe', timeoutMs: 5_000 })).toMatchObject({
      healthy: false,
      reachable: false,
      keyAccepted: null,
      detail: expect.stringContaining('HTTP 503'),
    });
    expect((await act.checkProcessorWebhooks({ processor: 'stripe', timeoutMs: 5_000 })).detail).toMatch(
      /^could not list the webhook endpoints: Stripe is unavailable/,
    );
    stripe.set('hang');
    const hung = await act.probeProcessor({ processor: 'stripe', timeoutMs: 500 });
    expect(hung).toMatchObject({ healthy: false, reachable: false });
    expect(hung.latencyMs).toBeLessThan(2_000);

    const wrongKey = createStripeGateway({ secretKey: 'sk_live_notakey', apiBase: testEnv('stripeApiBase') });
    const refused = await activities({ stripe: wrongKey }).probeProcessor({
      processor: 'stripe',
      timeoutMs: 5_000,
    });
    expect(refused).toMatchObject({ healthy: false, reachable: true, keyAccepted: false });
    expect(refused.detail).toMatch(/^Stripe refused the API key \(HTTP 401\)/);
    expect(refused.detail).not.toContain('sk_live_notakey');
  });

  it("probes Paystack the runbook's way: verify an unknown reference with the secret key", async () => {
    const act = activities();
    expect(await act.probeProcessor({ processor: 'paystack', timeoutMs: 5_000 })).toMatchObject({
      healthy: true,
      keyAccepted: true,
      detail: `Paystack answered GET ${PROBE_PATH} with HTTP 400`,
    });
    paystack.failNext(1, 503);
    expect(await act.probeProcessor({ processor: 'paystack', timeoutMs: 5_000 })).toMatchObject({
      healthy: false,
      reachable: false,
    });
    const wrongKey = createPaystackGateway({
      secretKey: 'sk_test_wrong',
      baseUrl: paystack.url,
      timeoutSeconds: 5,
    });
    expect(
      await activities({ paystack: wrongKey }).probeProcessor({ processor: 'paystack', timeoutMs: 5_000 }),
    ).toMatchObject({ healthy: false, reachable: true, keyAccepted: false });
    expect(paystack.requests().map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', PROBE_PATH, 400],
      ['GET', PROBE_PATH, 503],
      ['GET', PROBE_PATH, 401],
    ]);
    expect(paystack.requests()[0]!.authorization).toBe(`Bearer ${paystack.secretKey}`);
  });

  it('takes the backup processor only when it is another one and answers', async () => {
    expect(await activities().probeBackupProcessor({ processor: 'stripe', timeoutMs: 5_000 })).toMatchObject({
      backup: 'paystack',
      healthy: true,
    });
    expect(await activities().probeBackupProcessor({ processor: 'paystack', timeoutMs: 5_000 })).toEqual({
      backup: null,
      healthy: false,
      reason: 'the backup processor is paystack, the one that is down',
    });
    expect(
      await activities({ backupProcessor: undefined }).probeBackupProcessor({
        processor: 'stripe',
        timeoutMs: 5_000,
      }),
    ).toMatchObject({ backup: null, reason: 'no backup processor configured (BILLOPS_BACKUP_PROCESSOR)' });
    paystack.failNext(1, 502);
    expect(await activities().probeBackupProcessor({ processor: 'stripe', timeoutMs: 5_000 })).toMatchObject({
      backup: 'paystack',
      healthy: false,
      reason: expect.stringMatching(/^Paystack is not usable either: .*HTTP 502/),
    });
  });
});

describe('the dunning mass action', () => {
  it('extends grace once under one key, however often the activity runs (one batch job per key)', async () => {
    const code = `AUTH_${Math.random().toString(36).slice(2, 10)}`;
    paystack.authorize(code, { outcome: 'soft_decline' });
    const tenant = await insertTenant(deps.pool, 'pro', {
      processor: 'paystack',
      paystackAuthorization: code,
    });
    const invoice = await insertOpenInvoice(deps.pool, tenant.id);
    const handle = await startOrJoinDunning(client, taskQueue, dunningInput(tenant, invoice, 'paystack'));
    started.push(handle.workflowId);
    const before = await pollUntil(
      () => handle.query(dunningStatusQuery),
      (s) => s.phase === 'warning',
      'warning phase',
    );
    await pollUntil(
      () => client.workflow.count(`WorkflowId = '${handle.workflowId}' AND ExecutionStatus = 'Running'`),
      (c) => c.count === 1,
      'visible',
    );
    const request = {
      idempotencyKey: `test-${tenant.id}/dunning/extendGrace`,
      workflowIds: [handle.workflowId],
      action: 'extendGrace' as const,
      hours: 24,
      reason: 'Paystack outage (test)',
      operator: 'billops',
    };
    const first = await activities().steerOutageDunning(request);
    const again = await activities().steerOutageDunning(request);
    expect(first).toEqual({ via: 'batch', selected: 1, reached: 1, failed: 0 });
    expect(again).toEqual(first);
    const after = await handle.query(dunningStatusQuery);
    expect(Date.parse(after.deadlines.graceEndsAt) - Date.parse(before.deadlines.graceEndsAt)).toBe(
      24 * HOUR,
    );
    expect(after.timeline.filter((e) => e.event === 'grace extended')).toHaveLength(1);
    await handle.terminate('test done');
  });
});

describe('a Stripe outage with Paystack as the backup, from the alert to DECISIONS.log', () => {
  it('contains, waits for the alert to resolve, then switches back, resumes, retries and credits', async () => {
    stripe.set('down');
    stripe.seen.length = 0;
    paystack.reset();

    // Two tenants whose dunning began with the outage (their retry keeps meeting the 503), one with a failed payment.
    const inDunning: { tenant: TestTenant; invoiceId: string; stripeInvoiceId: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const tenant = await insertTenant(deps.pool, 'pro', { processor: 'stripe' });
      const stripeInvoiceId = `in_outage${tenant.id.replace(/[^a-z0-9]/g, '')}`;
      const invoice = await insertOpenInvoice(deps.pool, tenant.id, {
        processor: 'stripe',
        processorInvoiceId: stripeInvoiceId,
      });
      const handle = await startOrJoinDunning(client, taskQueue, dunningInput(tenant, invoice, 'stripe'));
      started.push(handle.workflowId);
      inDunning.push({ tenant, invoiceId: invoice.invoiceId, stripeInvoiceId });
    }
    const failedOnly = await insertTenant(deps.pool, 'pro', { processor: 'stripe' });
    const failedStripeInvoice = `in_outage${failedOnly.id.replace(/[^a-z0-9]/g, '')}`;
    const failedInvoice = await insertOpenInvoice(deps.pool, failedOnly.id, {
      processor: 'stripe',
      processorInvoiceId: failedStripeInvoice,
    });
    await deps.pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'stripe', $3, 'failed', 4900, 'USD')`,
      [failedOnly.id, failedInvoice.invoiceId, `pi_failed${failedOnly.id}`],
    );
    const ours = [...inDunning.map((d) => d.tenant), failedOnly];
    await pollUntil(
      () =>
        client.workflow.count(
          `WorkflowType = 'dunningWorkflow' AND ExecutionStatus = 'Running' AND PaymentProcessor = 'stripe'`,
        ),
      (c) => c.count === 2,
      'both lifecycles visible',
    );
    const dunning = (tenant: TestTenant) => client.workflow.getHandle(dunningWorkflowId(tenant.id));
    const before = new Map<string, DunningStatus>();
    for (const { tenant } of inDunning)
      before.set(tenant.id, await dunning(tenant).query(dunningStatusQuery));

    const input = incidentInput(
      'payment_processor_outage',
      // Scoped to this test's tenants: the database (failed payments) is shared with other suites.
      { processor: 'stripe' as const, tenantIds: ours.map((t) => t.id) },
      { source: 'alertmanager', openedBy: 'alertmanager', summary: 'PaymentSuccessRateLow on stripe' },
    );
    const handle = await startIncident(client, taskQueue, input);
    started.push(handle.workflowId);
    let status = await untilIncident(
      handle,
      (s) => s.currentStep === 'waiting for recovery',
      'containment done',
    );
    expect(status.tenantsAffected).toBe(3);
    expect(status.stepsDone.map((s) => s.name)).toEqual([
      'status page: investigating',
      'check Stripe status',
      'verify API key and webhook endpoints',
      'check the backup processor',
      'switch new payments to Paystack',
      'find affected accounts',
      'place affected accounts in a 48-hour grace',
      'stop automated suspensions',
      'enable manual payment acceptance',
      'notify affected customers',
      'document all manual overrides',
    ]);
    const detail = (name: string) => status.stepsDone.find((s) => s.name === name)?.detail;
    expect(detail('find affected accounts')).toMatch(
      /^3 tenants: 2 in dunning \(visibility\), 1 with failed payments/,
    );
    expect(detail('place affected accounts in a 48-hour grace')).toBe(
      '2 of 2 lifecycles reached (batch); override dunning_hold:stripe set',
    );
    expect(detail('stop automated suspensions')).toBe('2 of 2 lifecycles reached (batch)');
    expect(detail('document all manual overrides')).toBe(
      'dunning_hold:stripe, manual_payments:stripe, processor_route:stripe',
    );
    // The provider calls: Stripe's balance and webhook endpoints (both 503), Paystack probed as the backup.
    expect(stripe.seen.filter((r) => r.method === 'GET')).toEqual([
      { method: 'GET', path: '/v1/balance', status: 503 },
      { method: 'GET', path: '/v1/webhook_endpoints?limit=100', status: 503 },
    ]);
    expect(paystack.requests().map((r) => [r.method, r.path, r.status])).toEqual([['GET', PROBE_PATH, 400]]);
    const active = await deps.pool.query<{ name: string; value: Record<string, unknown>; set_by: string }>(
      `SELECT name, value, set_by FROM operational_overrides WHERE workflow_id = $1 AND cleared_at IS NULL ORDER BY name`,
      [handle.workflowId],
    );
    expect(active.rows).toEqual([
      {
        name: 'dunning_hold:stripe',
        value: { lifecycles: 2, graceHours: 48, suspensionsStopped: true, tenantIds: ours.map((t) => t.id) },
        set_by: 'billops',
      },
      { name: 'manual_payments:stripe', value: { accept: true, recordAs: 'manual' }, set_by: 'billops' },
      {
        name: 'processor_route:stripe',
        value: { from: 'stripe', to: 'paystack', tenantIds: ours.map((t) => t.id) },
        set_by: 'billops',
      },
    ]);
    for (const { tenant } of inDunning) {
      const held = await dunning(tenant).query(dunningStatusQuery);
      expect(held.paused).toBe(true);
      expect(
        Date.parse(held.deadlines.graceEndsAt) - Date.parse(before.get(tenant.id)!.deadlines.graceEndsAt),
      ).toBe(48 * HOUR);
    }
    for (const tenant of ours) {
      const [notice] = mailTo(tenant, `Service Notice - Account #${tenant.id}`);
      expect(notice?.text).toContain('New payments go through Paystack until Stripe is back.');
      const dashboard = await deps.pool.query(
        'SELECT kind FROM dashboard_notifications WHERE tenant_id = $1',
        [tenant.id],
      );
      expect(dashboard.rows.map((r) => r.kind)).toContain('serviceIncidentNotice');
    }

    // Stripe is back and Alertmanager says so.
    stripe.set('up');
    await handle.signal(alertResolvedSignal, { fingerprint: input.key });
    status = await untilIncident(
      handle,
      (s) => s.currentStep === 'waiting for the root-cause analysis',
      'recovered and closing',
    );
    expect(status.stepsDone.map((s) => s.name).slice(11)).toEqual([
      'status page: monitoring',
      'switch new payments back to Stripe and end the manual overrides',
      'resume dunning',
      'retry the failed payments',
      'apply service credits',
      'notify service credits',
      'notify resolution',
      'status page: resolved',
    ]);
    expect(status.stepsDone.find((s) => s.name.startsWith('switch new payments back'))?.detail).toBe(
      'cleared dunning_hold:stripe, manual_payments:stripe, processor_route:stripe',
    );
    // The lifecycles' own retry may collect first once Stripe answers; whatever is still open is collected here.
    expect(status.stepsDone.find((s) => s.name === 'retry the failed payments')?.detail).toMatch(
      /^([1-3]) of \1 collected$/,
    );
    const overrides = await deps.pool.query<{ cleared_by: string | null }>(
      'SELECT cleared_by FROM operational_overrides WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(overrides.rows.map((r) => r.cleared_by)).toEqual(['billops', 'billops', 'billops']);
    // Recovered: by the incident's retry after the resume, or by the lifecycle's own retry once Stripe answered.
    for (const { tenant } of inDunning) {
      const after = await pollUntil(
        () => dunning(tenant).query(dunningStatusQuery),
        (s) => s.phase === 'recovered',
        `${tenant.id} recovered`,
      );
      expect(after.timeline.map((e) => e.event)).toEqual(
        expect.arrayContaining(['grace extended', 'paused', 'recovered']),
      );
    }
    // Every invoice the outage left open was paid through Stripe once it was back.
    const invoices = await deps.pool.query<{ processor_invoice_id: string; status: string }>(
      'SELECT processor_invoice_id, status FROM invoices WHERE tenant_id = ANY($1::text[]) ORDER BY processor_invoice_id',
      [ours.map((t) => t.id)],
    );
    expect(invoices.rows.map((r) => r.status)).toEqual(['paid', 'paid', 'paid']);
    for (const { processor_invoice_id: id } of invoices.rows) {
      expect(stripe.seen).toContainEqual({ method: 'POST', path: `/v1/invoices/${id}/pay`, status: 200 });
    }

    // Credits: 1% of the 49.00 fee for the started hour, per tenant; CREDITS in DECISIONS.log is their total.
    const credits = await deps.pool.query<{ tenant_id: string; amount_minor: number; reason: string }>(
      `SELECT tenant_id, amount_minor, reason FROM credits_adjustments WHERE workflow_id = $1 ORDER BY tenant_id`,
      [handle.workflowId],
    );
    expect(credits.rows).toHaveLength(3);
    expect(
      credits.rows.every((r) => r.amount_minor === 49 && r.reason.startsWith('Stripe outage of 0 hours')),
    ).toBe(true);
    for (const tenant of ours) {
      expect(mailTo(tenant, `Service Credit Applied - Account #${tenant.id}`)[0]?.text).toContain('USD 0.49');
      expect(mailTo(tenant, `Service Notice Resolved - Account #${tenant.id}`)[0]?.text).toContain(
        'Stripe is processing payments again',
      );
    }
    const decision = await deps.pool.query<{ line: string }>(
      'SELECT line FROM decisions WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(decision.rows).toHaveLength(1);
    const line = decision.rows[0]!.line;
    expect(line).toContain(' | CREDITS=USD 1.47 | ');
    expect(parseDecisionLine(line)).toMatchObject({
      operator: 'billops',
      incidentType: 'payment_processor_outage',
      tenants: 3,
      credits: { amountMinor: 147, currency: 'USD' },
      executor: 'billops',
    });
    expect(readFileSync(deps.decisionsLogPath, 'utf8')).toContain(line);
    const row = await deps.pool.query<{ status: string; credits_minor: number; tenants_affected: number }>(
      'SELECT status, credits_minor, tenants_affected FROM incidents WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(row.rows[0]).toEqual({ status: 'resolved', credits_minor: 147, tenants_affected: 3 });
    expect(
      receivers
        .statusPageUpdates()
        .filter((u) => (u.incident as { external_id: string }).external_id === handle.workflowId)
        .map((u) => (u.incident as { status: string }).status),
    ).toEqual(['investigating', 'monitoring', 'resolved']);

    await handle.executeUpdate(recordRootCauseUpdate, {
      args: [{ operator: 'ada', summary: 'Stripe API degradation in us-east' }],
    });
    const outcome = (await handle.result()) as { status: IncidentStatus };
    expect(outcome.status.phase).toBe('closed');
  });
});
