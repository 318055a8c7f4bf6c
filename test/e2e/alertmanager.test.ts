// End to end with a real Alertmanager (Debian's prometheus-alertmanager, on loopback, clustering off) running the
// shipped deploy/alertmanager.yml with only its URL, token file and timings changed: an alert pushed to it reaches the
// ingress and opens the incident, its repeats reach the same incident, and its resolution reaches the workflow.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { parseAlertRoutes } from '../../config/alertRouting';
import { alertFingerprint } from '../../ingress/alerts/payload';
import { buildIngress } from '../../ingress/server';
import type { IncidentStatus } from '../../domain/incident';
import { defaultPolicy } from '../../domain/policy';
import { incidentStatusQuery } from '../../workflows/definitions';
import { insertTenant } from '../support/dunningFixtures';
import { startTestWorker, type TestWorker } from '../support/testWorker';

const root = resolve(__dirname, '..', '..');
const ALERT = 'BillopsE2eStuckPayments';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ALERTMANAGER_PATH, then what scripts/provision.sh recorded; a missing binary fails the suite, never skips it. */
function alertmanagerBinary(): string {
  const fromEnv = process.env.ALERTMANAGER_PATH;
  if (fromEnv) return fromEnv;
  try {
    const recorded = readFileSync(join(root, '.tools', 'alertmanager-path'), 'utf8').trim();
    if (recorded) return recorded;
  } catch {
    // not provisioned
  }
  throw new Error(
    'alertmanager was not found (ALERTMANAGER_PATH, .tools/alertmanager-path). Run: bash scripts/provision.sh prometheus',
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** The shipped config, pointed at this test's ingress and token file, with timings a test can wait for. */
function alertmanagerConfig(ingressUrl: string, tokenFile: string): string {
  const shipped = readFileSync(join(root, 'deploy', 'alertmanager.yml'), 'utf8');
  const edits: [string, string][] = [
    ['http://billops-ingress:8080/alerts/alertmanager', `${ingressUrl}/alerts/alertmanager`],
    ['credentials_file: /etc/alertmanager/billops-token', `credentials_file: ${tokenFile}`],
    ['group_wait: 30s', 'group_wait: 1s'],
    ['group_interval: 5m', 'group_interval: 1s'],
    ['repeat_interval: 1h', 'repeat_interval: 2s'],
  ];
  let config = shipped;
  for (const [from, to] of edits) {
    expect(config).toContain(from);
    config = config.replace(from, to);
  }
  return config;
}

describe('a real Alertmanager → POST /alerts/alertmanager → the incident workflow', () => {
  const taskQueue = `am-e2e-${randomBytes(4).toString('hex')}`;
  const token = `am-e2e-${randomBytes(12).toString('hex')}`;
  const run = randomBytes(4).toString('hex');
  const reference = `manual-e2e-${run}`;
  let testWorker: TestWorker;
  let client: Client;
  let ingress: FastifyInstance;
  let alertmanager: ChildProcess | undefined;
  let amOutput = '';
  let amBase: string;
  let scratch: string;
  let workflowId: string | undefined;

  const labels = { alertname: ALERT, severity: 'warning', incident_kind: 'stuck_transactions', e2e_run: run };

  async function pushAlert(endsAt?: string): Promise<void> {
    const response = await fetch(`${amBase}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          labels,
          annotations: { summary: 'Payments pending for over an hour' },
          startsAt: new Date(Date.now() - 60_000).toISOString(),
          ...(endsAt ? { endsAt } : {}),
        },
      ]),
    });
    expect(response.status).toBe(200);
  }

  async function statusWhen(id: string, done: (s: IncidentStatus) => boolean): Promise<IncidentStatus> {
    const until = Date.now() + 60_000;
    let last: IncidentStatus | undefined;
    while (Date.now() < until) {
      try {
        last = await client.workflow.getHandle(id).query(incidentStatusQuery);
        if (done(last)) return last;
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
      await sleep(250);
    }
    throw new Error(
      `status of ${id} never matched; last: ${JSON.stringify(last, null, 2)}\nalertmanager:\n${amOutput}`,
    );
  }

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'billops-am-e2e-'));
    testWorker = await startTestWorker(taskQueue);
    client = testWorker.client;
    // A manual payment pending for two hours: the incident verifies it, cannot settle it, and waits for recovery.
    const tenant = await insertTenant(testWorker.deps.pool, 'pro');
    await testWorker.deps.pool.query(
      `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, created_at)
       VALUES ($1, 'manual', $2, 'pending', 4900, 'USD', now() - interval '2 hours')`,
      [tenant.id, reference],
    );

    ingress = buildIngress({
      client,
      pool: testWorker.deps.pool,
      alerts: {
        taskQueue,
        policy: defaultPolicy,
        token,
        routing: parseAlertRoutes({
          [ALERT]: { kind: 'stuck_transactions', params: { references: [reference] } },
        }),
      },
    });
    const ingressUrl = await ingress.listen({ host: '127.0.0.1', port: 0 });

    const tokenFile = join(scratch, 'billops-token');
    writeFileSync(tokenFile, token, { mode: 0o400 });
    const configFile = join(scratch, 'alertmanager.yml');
    writeFileSync(configFile, alertmanagerConfig(ingressUrl, tokenFile));
    const port = await freePort();
    amBase = `http://127.0.0.1:${port}`;
    alertmanager = spawn(
      alertmanagerBinary(),
      [
        `--config.file=${configFile}`,
        `--storage.path=${join(scratch, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
        '--cluster.listen-address=',
        '--log.level=debug',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    alertmanager.stdout?.on('data', (c: Buffer) => (amOutput += c.toString()));
    alertmanager.stderr?.on('data', (c: Buffer) => (amOutput += c.toString()));
    const until = Date.now() + 30_000;
    for (;;) {
      const ready = await fetch(`${amBase}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (alertmanager.exitCode !== null || Date.now() > until)
        throw new Error(`alertmanager did not become ready:\n${amOutput}`);
      await sleep(200);
    }
  });

  afterAll(async () => {
    if (alertmanager && alertmanager.exitCode === null) {
      const exited = new Promise((r) => alertmanager!.once('exit', r));
      alertmanager.kill('SIGTERM');
      await exited;
    }
    await ingress?.close();
    if (workflowId)
      await client.workflow
        .getHandle(workflowId)
        .terminate('alertmanager e2e done')
        .catch(() => undefined);
    await testWorker?.deps.pool
      .query(`UPDATE payment_transactions SET status = 'failed' WHERE reference = $1`, [reference])
      .catch(() => undefined);
    await testWorker?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('opens incident-stuck_transactions-<fingerprint>, repeats reach it, and the resolution ends its wait', async () => {
    await pushAlert();
    const alerts = (await (
      await fetch(`${amBase}/api/v2/alerts?filter=${encodeURIComponent(`e2e_run="${run}"`)}`)
    ).json()) as { fingerprint: string; status: { state: string } }[];
    expect(alerts).toHaveLength(1);
    const fingerprint = alerts[0]!.fingerprint;
    expect(fingerprint).toMatch(/^[0-9a-f]{16}$/);
    // The ingress computes the same fingerprint to find a critical alert's warning twin.
    expect(alertFingerprint(labels)).toBe(fingerprint);
    workflowId = `incident-stuck_transactions-${fingerprint}`;

    // Alertmanager's first notification (after group_wait) starts the incident, which cannot settle the payment.
    const waiting = await statusWhen(workflowId, (s) => s.currentStep === 'waiting for recovery');
    expect(waiting).toMatchObject({
      kind: 'stuck_transactions',
      phase: 'open',
      source: 'alertmanager',
      openedBy: 'alertmanager',
      summary: 'Payments pending for over an hour',
      alertResolvedAt: null,
      tenantsAffected: 1,
    });
    const { runId, type } = await client.workflow.getHandle(workflowId).describe();
    expect(type).toBe('stuckTransactionsWorkflow');

    // Repeated notifications (repeat_interval) reach the same workflow run.
    const repeated = await statusWhen(workflowId, (s) =>
      s.timeline.some((e) => e.event === 'alert_fired_again'),
    );
    expect(repeated.timeline.filter((e) => e.event === 'opened')).toHaveLength(1);
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(runId);

    // Resolved in Alertmanager (endsAt in the past): its resolved notification ends the incident's wait.
    const resolvedAt = Date.now();
    await pushAlert(new Date(resolvedAt - 1_000).toISOString());
    const recovered = await statusWhen(
      workflowId,
      (s) => s.alertResolvedAt !== null && s.resolution !== null,
    );
    expect(Date.parse(recovered.alertResolvedAt!)).toBeGreaterThanOrEqual(resolvedAt - 1_000);
    expect(recovered.timeline.find((e) => e.event === 'alert_resolved')?.detail).toMatch(/^alert ended at /);
    expect(recovered.phase).toBe('resolved');
    expect(recovered.resolution).toMatchObject({ by: 'billops' });
    expect(recovered.resolution?.summary).toContain(`0 of 1 stuck transactions settled`);
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(runId);
    // Alertmanager logged no failed notification: every one was answered 2xx with the token from the file.
    expect(amOutput).not.toMatch(/Notify for alerts failed/);
  });
});
