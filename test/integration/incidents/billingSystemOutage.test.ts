// The billing-system-outage activities against real servers: health checks over HTTP and PostgreSQL (a primary with a
// streaming standby started here, a database whose critical tables are locked, one that is not there), read-only mode
// with critical operations queued and replayed once each in order (a real Paystack-shaped charge), the outage hooks
// as a webhook and as a command, and prices served from the cache when the database cannot be reached.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Client, type Pool } from 'pg';
import {
  createBillingHealthActivities,
  type HealthCheckRequest,
} from '../../../activities/incidents/billingSystemOutage';
import { createOperationQueueActivities } from '../../../activities/incidents/billingSystemOutage/operationQueue';
import {
  createOutageHookActivities,
  type OutageHookRequest,
} from '../../../activities/incidents/billingSystemOutage/hooks';
import { createPaymentActivities, paymentReference } from '../../../activities/payments';
import { createPricingCacheActivities } from '../../../activities/incidents/billingSystemOutage/pricingCache';
import { BILLING_READ_ONLY } from '../../../activities/readOnlyGuard';
import { createServiceControlActivities } from '../../../activities/serviceControls';
import { startPostgresCluster } from '../../../runtime/postgresCluster';
import { ChildSupervisor, freePort } from '../../../runtime/processes';
import { findPostgresBinDir } from '../../../runtime/tools';
import { migrate } from '../../../db/migrate';
import { createPool } from '../../../db/pool';
import { dunningInput, insertOpenInvoice, insertTenant } from '../../support/dunningFixtures';
import { startIncidentReceivers, type IncidentReceivers } from '../../support/incidentFixtures';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from '../../support/paystackFake';
import { privateDatabase } from '../../support/privateDatabase';
import { testEnv } from '../../support/testRuntime';
import { TEST_PORTAL_URL } from '../../support/workerDeps';

jest.setTimeout(120_000);

const CHECK: HealthCheckRequest = {
  httpTimeoutMs: 2_000,
  databaseTimeoutMs: 1_000,
  maxReplicationLagSeconds: 30,
};
const INCIDENT = 'incident-billing_system_outage-test';

/** The billing API's health endpoint, answering whatever status the test sets; counts the calls. */
async function startHealthEndpoint(): Promise<{
  url: string;
  set(status: number, delayMs?: number): void;
  close(): Promise<void>;
}> {
  let status = 200;
  let delayMs = 0;
  const server: Server = createServer((_req, res) => {
    setTimeout(() => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: status === 200 ? 'ok' : 'down' }));
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/health?token=do-not-echo`,
    set: (s, d = 0) => {
      status = s;
      delayMs = d;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

describe('health checks', () => {
  let url: string;
  let pool: Pool;
  let health: Awaited<ReturnType<typeof startHealthEndpoint>>;

  beforeAll(async () => {
    // A database of this suite's own: read-only mode and table locks are global to a database.
    url = (await privateDatabase('health')).url;
    pool = createPool(url, { max: 2 });
    health = await startHealthEndpoint();
  });
  afterAll(async () => {
    await pool?.end();
    await health?.close();
  });

  it('healthy: the API answers 200, PostgreSQL connects and takes the write probe, nothing replicates', async () => {
    health.set(200);
    const result = await createBillingHealthActivities({ pool, healthUrl: health.url }).checkBillingHealth(
      CHECK,
    );
    expect(result.healthy).toBe(true);
    expect(result.http).toMatchObject({ status: 'healthy', statusCode: 200 });
    expect(result.database).toMatchObject({ reachable: true, writable: true, inRecovery: false });
    expect(result.replication).toMatchObject({
      role: 'primary',
      lagSeconds: null,
      replicas: [],
      lagging: false,
    });
    // The health URL's query (it may carry a token) is never repeated.
    expect(JSON.stringify(result)).not.toContain('do-not-echo');
  });

  it('the API answering 503, or slower than the critical latency, is unhealthy; no URL configured is not', async () => {
    health.set(503);
    let result = await createBillingHealthActivities({ pool, healthUrl: health.url }).checkBillingHealth(
      CHECK,
    );
    expect(result.healthy).toBe(false);
    expect(result.http).toMatchObject({ status: 'unhealthy', statusCode: 503 });
    health.set(200, 600);
    result = await createBillingHealthActivities({ pool, healthUrl: health.url }).checkBillingHealth({
      ...CHECK,
      httpTimeoutMs: 300,
    });
    expect(result.http.status).toBe('unhealthy');
    expect(result.http.detail).toMatch(/no answer within 300 ms/);
    result = await createBillingHealthActivities({ pool }).checkBillingHealth(CHECK);
    expect(result.http.status).toBe('not_configured');
    expect(result.healthy).toBe(true);
  });

  it('writes failing: a lock held on payment_transactions makes the write probe time out, reads still work', async () => {
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE payment_transactions IN EXCLUSIVE MODE');
      const started = Date.now();
      const result = await createBillingHealthActivities({ pool }).checkBillingHealth(CHECK);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(result.healthy).toBe(false);
      expect(result.database).toMatchObject({ reachable: true, writable: false, inRecovery: false });
      expect(result.database.detail).toMatch(
        /writes fail: payment_transactions: canceling statement due to lock timeout/,
      );
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await createBillingHealthActivities({ pool }).checkBillingHealth(CHECK)).database.writable).toBe(
      true,
    );
  });

  it('a database switched to read-only (default_transaction_read_only) takes no writes', async () => {
    const db = new URL(url).pathname.slice(1);
    const admin = new Client({ connectionString: testEnv('adminDatabaseUrl') });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${db} SET default_transaction_read_only = on`);
      const result = await createBillingHealthActivities({ pool }).checkBillingHealth(CHECK);
      expect(result.database).toMatchObject({ reachable: true, writable: false, inRecovery: false });
      expect(result.database.detail).toMatch(
        /writes fail: the database is read-only \(default_transaction_read_only\)/,
      );
    } finally {
      await admin.query(`ALTER DATABASE ${db} RESET default_transaction_read_only`);
      await admin.end();
    }
  });

  it("with a pool of one (a database that allows a single session) the check uses the pool's connection", async () => {
    const single = createPool(url, { max: 1 });
    try {
      const result = await createBillingHealthActivities({ pool: single }).checkBillingHealth(CHECK);
      expect(result.database).toMatchObject({ reachable: true, writable: true });
      expect(single.totalCount).toBe(1);
      expect(single.idleCount).toBe(1);
    } finally {
      await single.end();
    }
  });

  it('a database that is not there: unreachable within the timeout, with the reason and no credentials', async () => {
    const port = await freePort();
    const gone = createPool(`postgres://billops:s3cret@127.0.0.1:${port}/billops`, { max: 1 });
    try {
      const result = await createBillingHealthActivities({ pool: gone }).checkBillingHealth(CHECK);
      expect(result.healthy).toBe(false);
      expect(result.database).toMatchObject({ reachable: false, writable: false });
      expect(result.database.detail).toBe('unreachable (ECONNREFUSED)');
      expect(result.replication.role).toBe('unknown');
      expect(JSON.stringify(result)).not.toContain('s3cret');
    } finally {
      await gone.end();
    }
  });
});

describe('replication lag, read from a primary and its streaming standby', () => {
  const supervisor = new ChildSupervisor();
  let primaryUrl: string;
  let standbyUrl: string;
  let primary: Pool;
  let standby: Pool;

  beforeAll(async () => {
    const binDir = findPostgresBinDir();
    if (!binDir) throw new Error('PostgreSQL binaries are missing: run bash scripts/provision.sh');
    const dir = mkdtempSync(join(tmpdir(), 'billops-replication-'));
    // The cluster runs as `postgres` when we are root: it must be able to enter this directory.
    chmodSync(dir, 0o755);
    const primaryPort = await freePort();
    const cluster = await startPostgresCluster(supervisor, {
      binDir,
      dataDir: join(dir, 'primary'),
      port: primaryPort,
      logFile: join(dir, 'primary.log'),
    });
    primaryUrl = cluster.url;
    await migrate(primaryUrl);
    const standbyDir = join(dir, 'standby');
    // pg_basebackup fills an empty directory the cluster's owner owns.
    mkdirSync(standbyDir, { mode: 0o700 });
    if (process.getuid?.() === 0) {
      const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
      chownSync(standbyDir, uid, uid);
    }
    // initdb may be a symlink on PATH; pg_basebackup sits beside its target.
    const basebackup = join(dirname(realpathSync(join(binDir, 'initdb'))), 'pg_basebackup');
    const asOwner = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
    const backup = spawnSync(
      asOwner[0] ?? basebackup,
      [
        ...asOwner.slice(1),
        ...(asOwner.length ? [basebackup] : []),
        '-h',
        '127.0.0.1',
        '-p',
        String(primaryPort),
        '-U',
        'postgres',
        '-D',
        standbyDir,
        '-R',
        '-X',
        'stream',
        '--no-sync',
      ],
      { encoding: 'utf8' },
    );
    if (backup.status !== 0) throw new Error(`pg_basebackup failed: ${backup.stderr}`);
    expect(existsSync(join(standbyDir, 'standby.signal'))).toBe(true);
    const standbyCluster = await startPostgresCluster(supervisor, {
      binDir,
      dataDir: standbyDir,
      port: await freePort(),
      logFile: join(dir, 'standby.log'),
    });
    standbyUrl = standbyCluster.url;
    primary = createPool(primaryUrl, { max: 2 });
    standby = createPool(standbyUrl, { max: 2 });
    // Until the standby streams from the primary.
    for (let i = 0; i < 200; i++) {
      const { rows } = await primary.query(`SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'`);
      if (rows.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 90_000);

  afterAll(async () => {
    await primary?.end();
    await standby?.end();
    await supervisor.stopAll();
  });

  it('the primary lists its streaming replica and its replay lag from pg_stat_replication', async () => {
    await primary.query('CREATE TABLE IF NOT EXISTS lag_probe (n int); INSERT INTO lag_probe VALUES (1)');
    const result = await createBillingHealthActivities({ pool: primary }).checkBillingHealth(CHECK);
    expect(result.database).toMatchObject({ reachable: true, inRecovery: false });
    expect(result.replication.role).toBe('primary');
    expect(result.replication.replicas).toHaveLength(1);
    expect(result.replication.replicas[0]).toMatchObject({ state: 'streaming' });
    expect(result.replication.lagSeconds).toEqual(expect.any(Number));
    expect(result.replication.lagSeconds!).toBeLessThan(CHECK.maxReplicationLagSeconds);
    expect(result.replication.lagging).toBe(false);
    expect(result.replication.detail).toMatch(/^1 replica \(/);
  });

  it('the standby is reachable but in recovery: no writes, and its own lag behind the primary', async () => {
    const result = await createBillingHealthActivities({ pool: standby }).checkBillingHealth(CHECK);
    expect(result.healthy).toBe(false);
    expect(result.database).toMatchObject({ reachable: true, writable: false, inRecovery: true });
    expect(result.database.detail).toMatch(/a standby in recovery/);
    expect(result.replication.role).toBe('standby');
    expect(result.replication.lagSeconds).toEqual(expect.any(Number));
    expect(result.replication.lagSeconds!).toBeGreaterThanOrEqual(0);
  });

  it('read-only mode cannot be recorded on a standby: answered with the reason, not retried forever', async () => {
    const result = await createOperationQueueActivities({
      pool: standby,
      billingPortalUrl: TEST_PORTAL_URL,
    }).enterReadOnlyMode({
      idempotencyKey: `${INCIDENT}/ro`,
      workflowId: INCIDENT,
      reason: 'test',
      operator: 'billops',
    });
    expect(result).toEqual({
      readOnly: false,
      reason: expect.stringMatching(/^the database cannot record the switch \(the database is read-only\)/),
    });
  });
});

describe('read-only mode: critical operations queued, then replayed once each, in order', () => {
  let url: string;
  let pool: Pool;
  let paystack: PaystackFake;

  beforeAll(async () => {
    url = (await privateDatabase('queue')).url;
    pool = createPool(url, { max: 4 });
    paystack = await startPaystackFake();
  });
  afterAll(async () => {
    await pool?.end();
    await paystack?.close();
  });

  it('queues a suspension, a payment retry and a restore while read-only; replays them in order; the charge happens once', async () => {
    const gateways = { paystack: fakePaystackGateway(paystack) };
    const payments = createPaymentActivities({ pool, ...gateways, billingPortalUrl: TEST_PORTAL_URL });
    const controls = createServiceControlActivities({ pool });
    const queue = createOperationQueueActivities({ pool, ...gateways, billingPortalUrl: TEST_PORTAL_URL });
    const authorization = `AUTH_${randomUUID().slice(0, 8)}`;
    paystack.authorize(authorization, { outcome: 'success' });
    const tenant = await insertTenant(pool, 'pro', {
      processor: 'paystack',
      paystackAuthorization: authorization,
    });
    const invoice = await insertOpenInvoice(pool, tenant.id, { processor: 'paystack', totalMinor: 4900 });
    const who = { tenantId: tenant.id, workflowId: `dunning-${tenant.id}`, operator: 'billops' };

    const entered = await queue.enterReadOnlyMode({
      idempotencyKey: `${INCIDENT}/read-only`,
      workflowId: INCIDENT,
      reason: 'billing writes failing: test',
      operator: 'billops',
    });
    expect(entered).toEqual({ readOnly: true, setBy: INCIDENT, alreadySet: false });

    const suspended = await controls.applyServiceControls({ ...who, reason: 'suspension', suspended: true });
    expect(suspended.suspended).toBe(false);
    expect(suspended.queuedOperation).toMatchObject({ status: 'queued' });
    const retryKey = `dunning-${tenant.id}/run/retry-2/${invoice.invoiceId}`;
    const retry = { idempotencyKey: retryKey, tenantId: tenant.id, invoiceId: invoice.invoiceId, attempt: 2 };
    const charged = await payments.retryInvoicePayment(retry);
    expect(charged).toEqual({
      outcome: 'failed',
      reason: expect.stringMatching(
        /^billing is read-only \(incident-billing_system_outage-test\): queued as operation \d+/,
      ),
    });
    // The activity retried: the same operation, not a second one.
    expect(await payments.retryInvoicePayment(retry)).toEqual(charged);
    const restored = await controls.restoreService({ ...who, reason: 'payment received' });
    expect(restored.queuedOperation).toMatchObject({ status: 'queued' });
    expect(paystack.charges()).toEqual([]);
    const queued = await pool.query<{ kind: string; status: string; workflow_id: string }>(
      'SELECT kind, status, workflow_id FROM queued_operations WHERE tenant_id = $1 ORDER BY id',
      [tenant.id],
    );
    expect(queued.rows).toEqual([
      { kind: 'suspension', status: 'queued', workflow_id: INCIDENT },
      { kind: 'payment', status: 'queued', workflow_id: INCIDENT },
      { kind: 'service_control', status: 'queued', workflow_id: INCIDENT },
    ]);

    const result = await queue.leaveReadOnlyMode({ workflowId: INCIDENT, operator: 'billops' });
    expect(result).toMatchObject({ replayed: 3, failed: 0, tenantIds: [tenant.id], cleared: true });
    expect(result.operations.map((o) => [o.activity, o.status])).toEqual([
      ['applyServiceControls', 'replayed'],
      ['retryInvoicePayment', 'replayed'],
      ['restoreService', 'replayed'],
    ]);
    expect(result.operations[1]!.detail).toMatch(/^payment succeeded /);
    // One charge under the dunning step's own reference; the invoice paid; the tenant suspended, then restored.
    expect(paystack.charges().map((c) => c.reference)).toEqual([paymentReference(retryKey)]);
    const inv = await pool.query('SELECT status FROM invoices WHERE id = $1', [invoice.invoiceId]);
    expect(inv.rows[0].status).toBe('paid');
    const history = await pool.query<{ suspended: boolean }>(
      'SELECT suspended FROM service_control_changes WHERE tenant_id = $1 ORDER BY id',
      [tenant.id],
    );
    expect(history.rows.map((r) => r.suspended)).toEqual([false, true, false]);
    const rows = await pool.query<{ status: string; replayed_at: Date | null; result: { outcome?: string } }>(
      'SELECT status, replayed_at, result FROM queued_operations WHERE tenant_id = $1 ORDER BY id',
      [tenant.id],
    );
    expect(rows.rows.map((r) => r.status)).toEqual(['replayed', 'replayed', 'replayed']);
    expect(rows.rows.every((r) => r.replayed_at instanceof Date)).toBe(true);
    expect(rows.rows[1]!.result.outcome).toBe('succeeded');
    const override = await pool.query(
      'SELECT cleared_at, cleared_by FROM operational_overrides WHERE name = $1 AND workflow_id = $2',
      [BILLING_READ_ONLY, INCIDENT],
    );
    expect(override.rows).toEqual([{ cleared_at: expect.any(Date), cleared_by: 'billops' }]);

    // Replayed once: a second leave finds nothing; the dunning step retried now answers with the replay's outcome.
    expect(await queue.leaveReadOnlyMode({ workflowId: INCIDENT, operator: 'billops' })).toMatchObject({
      replayed: 0,
      operations: [],
      cleared: false,
    });
    expect(await payments.retryInvoicePayment(retry)).toMatchObject({ outcome: 'succeeded' });
    expect(paystack.charges()).toHaveLength(1);
    // Writable again: new changes go straight through.
    const direct = await controls.applyServiceControls({
      ...who,
      reason: 'soft limit',
      rateLimitPercent: 10,
    });
    expect(direct).toMatchObject({ rateLimitPercent: 10 });
    expect(direct.queuedOperation).toBeUndefined();
  });

  it("a payment the replay collects is signalled to the tenant's running dunning lifecycle", async () => {
    const connection = await Connection.connect({ address: testEnv('temporalAddress') });
    const temporal = new TemporalClient({ connection });
    const gateways = { paystack: fakePaystackGateway(paystack) };
    const payments = createPaymentActivities({ pool, ...gateways, billingPortalUrl: TEST_PORTAL_URL });
    const queue = createOperationQueueActivities({
      pool,
      ...gateways,
      billingPortalUrl: TEST_PORTAL_URL,
      temporalClient: temporal,
    });
    const authorization = `AUTH_${randomUUID().slice(0, 8)}`;
    paystack.authorize(authorization, { outcome: 'success' });
    const tenant = await insertTenant(pool, 'pro', {
      processor: 'paystack',
      paystackAuthorization: authorization,
    });
    const invoice = await insertOpenInvoice(pool, tenant.id, { processor: 'paystack', totalMinor: 4900 });
    // The lifecycle, on a task queue no worker polls: its history records the signal it is sent.
    const lifecycle = await temporal.workflow.start('dunningWorkflow', {
      workflowId: `dunning-${tenant.id}`,
      taskQueue: `unpolled-${randomUUID()}`,
      args: [dunningInput(tenant, invoice)],
    });
    const incident = `incident-billing_system_outage-signal-${randomUUID().slice(0, 8)}`;
    try {
      await queue.enterReadOnlyMode({
        idempotencyKey: `${incident}/read-only`,
        workflowId: incident,
        reason: 'billing writes failing: test',
        operator: 'billops',
      });
      const retryKey = `dunning-${tenant.id}/run/retry-2/${invoice.invoiceId}`;
      await payments.retryInvoicePayment({
        idempotencyKey: retryKey,
        tenantId: tenant.id,
        invoiceId: invoice.invoiceId,
        attempt: 2,
      });

      const result = await queue.leaveReadOnlyMode({ workflowId: incident, operator: 'billops' });
      expect(result.operations.map((o) => [o.activity, o.status])).toEqual([
        ['retryInvoicePayment', 'replayed'],
      ]);

      const history = await lifecycle.fetchHistory();
      const signals = (history.events ?? [])
        .map((e) => e.workflowExecutionSignaledEventAttributes)
        .filter((a) => a?.signalName === 'paymentSucceeded');
      expect(signals).toHaveLength(1);
      const [payload] = signals[0]!.input!.payloads!;
      expect(JSON.parse(Buffer.from(payload!.data!).toString('utf8'))).toEqual({
        invoiceId: invoice.invoiceId,
        reference: paymentReference(retryKey),
      });
    } finally {
      await lifecycle.terminate('test done');
      await connection.close();
    }
  });

  it('an operation a retry cannot fix is marked failed with its reason, and the rest still replay', async () => {
    const queue = createOperationQueueActivities({ pool, billingPortalUrl: TEST_PORTAL_URL });
    const controls = createServiceControlActivities({ pool });
    const incident = `${INCIDENT}-2`;
    await queue.enterReadOnlyMode({
      idempotencyKey: `${incident}/ro`,
      workflowId: incident,
      reason: 'x',
      operator: 'billops',
    });
    const tenant = await insertTenant(pool, 'pro');
    const who = {
      tenantId: tenant.id,
      workflowId: `dunning-${tenant.id}`,
      operator: 'billops',
      reason: 'hard limit',
    };
    await controls.applyServiceControls({ ...who, apiBlocked: true });
    // The tenant is deleted while queued: its restore cannot happen.
    await controls.restoreService({ ...who, reason: 'paid' });
    await pool.query('UPDATE tenants SET deleted_at = now() WHERE id = $1', [tenant.id]);
    const result = await queue.leaveReadOnlyMode({ workflowId: incident, operator: 'billops' });
    expect(result.operations.map((o) => o.status)).toEqual(['replayed', 'failed']);
    expect(result.operations[1]!.detail).toMatch(/^TenantDeleted: tenant .* was deleted/);
    const failed = await pool.query(
      'SELECT status, error FROM queued_operations WHERE workflow_id = $1 ORDER BY id',
      [incident],
    );
    expect(failed.rows[1]).toEqual({ status: 'failed', error: expect.stringMatching(/^TenantDeleted/) });
  });
});

describe('outage hooks', () => {
  let receivers: IncidentReceivers;
  let pool: Pool;
  // Runs are recorded per incident and step: each test's hooks run for an incident of their own.
  let incident = INCIDENT;
  const request = (action: 'scale_up' | 'failover'): OutageHookRequest => ({
    action,
    idempotencyKey: `${incident}/hook/${action}`,
    incident: {
      workflowId: incident,
      kind: 'billing_system_outage',
      severity: 'P1',
      summary: 'billing API down',
    },
    timeoutSeconds: 5,
  });

  beforeAll(async () => {
    receivers = await startIncidentReceivers();
    pool = createPool(testEnv('databaseUrl'), { max: 2 });
  });
  beforeEach(() => {
    incident = `${INCIDENT}-${randomUUID()}`;
  });
  afterAll(async () => {
    await receivers?.close();
    await pool?.end();
  });

  it('a URL is POSTed {incident, action} with the idempotency key', async () => {
    const hooks = createOutageHookActivities({
      pool,
      scaleUpHook: receivers.hookUrl('scale-up?token=s3cret'),
    });
    expect(await hooks.outageHooks()).toEqual({ scale_up: 'webhook', failover: null });
    const result = await hooks.runOutageHook(request('scale_up'));
    expect(result).toMatchObject({ via: 'webhook', ok: true, httpStatus: 200 });
    expect(JSON.stringify(result)).not.toContain('s3cret');
    const calls = receivers.hookCalls().filter((c) => c.path.startsWith('/hooks/scale-up'));
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toEqual({
      incident: request('scale_up').incident,
      action: 'scale_up',
      idempotency_key: `${incident}/hook/scale_up`,
    });
  });

  it('anything else runs as a command with the incident in its environment; failures and timeouts are answers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'billops-hooks-'));
    const out = join(dir, 'failover.txt');
    const hooks = createOutageHookActivities({
      pool,
      failoverHook: `printf '%s %s %s' "$BILLOPS_HOOK_ACTION" "$BILLOPS_INCIDENT_ID" "$BILLOPS_IDEMPOTENCY_KEY" > ${out}; echo promoted`,
    });
    expect(await hooks.outageHooks()).toEqual({ scale_up: null, failover: 'command' });
    const ran = await hooks.runOutageHook(request('failover'));
    expect(ran).toMatchObject({
      via: 'command',
      ok: true,
      exitCode: 0,
      output: 'promoted',
      detail: 'command exited 0',
    });
    expect(readFileSync(out, 'utf8')).toBe(`failover ${incident} ${incident}/hook/failover`);

    incident = `${INCIDENT}-${randomUUID()}`;
    const failing = createOutageHookActivities({
      pool,
      failoverHook: 'echo "region busy" >&2; exit 3 # token=s3cret',
    });
    const failed = await failing.runOutageHook(request('failover'));
    expect(failed).toEqual({
      action: 'failover',
      via: 'command',
      ok: false,
      exitCode: 3,
      output: 'region busy',
      detail: 'command exited 3',
    });
    incident = `${INCIDENT}-${randomUUID()}`;
    const slow = createOutageHookActivities({ pool, failoverHook: 'sleep 10' });
    const started = Date.now();
    const timedOut = await slow.runOutageHook({ ...request('failover'), timeoutSeconds: 1 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(timedOut).toMatchObject({ ok: false, detail: 'command timed out after 1 s and was killed' });
    await expect(
      createOutageHookActivities({ pool }).runOutageHook(request('scale_up')),
    ).rejects.toMatchObject({
      type: 'HookNotConfigured',
      nonRetryable: true,
    });
  });
});

describe('cached pricing', () => {
  let pool: Pool;
  beforeAll(() => {
    pool = createPool(testEnv('databaseUrl'), { max: 2 });
  });
  afterAll(async () => pool?.end());

  it('prices from the database while it answers, from the snapshot when it cannot be reached', async () => {
    const meter = `outage_calls_${randomUUID().slice(0, 6)}`;
    const tenant = await insertTenant(pool, 'pro');
    await pool.query(
      `INSERT INTO rates (meter, tier, effective_from, pricing_model, tiers, currency)
       VALUES ($1, 'pro', now() - interval '30 days', 'graduated',
               '[{"up_to": 1000, "unit_price_minor": 0.5}, {"up_to": null, "unit_price_minor": 0.25}]', 'USD')`,
      [meter],
    );
    const cachePath = join(mkdtempSync(join(tmpdir(), 'billops-pricing-')), 'pricing-cache.json');
    const live = createPricingCacheActivities({ pool, cachePath });
    const quote = { tenantId: tenant.id, tier: 'pro' as const, currency: 'USD', meter, quantity: '1500' };

    const fromDb = await live.quoteUsagePrice(quote);
    expect(fromDb).toMatchObject({
      amountMinor: 625,
      currency: 'USD',
      source: 'database',
      cacheTakenAt: null,
    });

    const port = await freePort();
    const gone = createPool(`postgres://postgres@127.0.0.1:${port}/billops`, { max: 1 });
    try {
      const offline = createPricingCacheActivities({ pool: gone, cachePath });
      // No snapshot yet: nothing to serve.
      await expect(offline.quoteUsagePrice(quote)).rejects.toThrow(/no pricing snapshot was ever taken/);
      const snapshot = await live.refreshPricingCache();
      expect(snapshot.rates).toBeGreaterThanOrEqual(1);
      expect(await offline.pricingCacheStatus()).toMatchObject({
        takenAt: snapshot.takenAt,
        rates: snapshot.rates,
      });
      const fromCache = await offline.quoteUsagePrice(quote);
      expect(fromCache).toEqual({ ...fromDb, source: 'cache', cacheTakenAt: snapshot.takenAt });
      await expect(offline.refreshPricingCache()).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await gone.end();
    }
  });
});
