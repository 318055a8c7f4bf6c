// `billops trigger` in its own process against a real ingress on loopback: signed Stripe and Paystack events and
// Alertmanager alerts reach the workflows they name, and the output gives each workflow's id and Web UI link.
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_ALERT_ROUTES } from '../../config/alertRouting';
import type { DunningStatus } from '../../domain/dunning';
import { defaultPolicy } from '../../domain/policy';
import { alertFingerprint } from '../../ingress/alerts/payload';
import { buildIngress } from '../../ingress/server';
import { alertLabels } from '../../cli/sampleAlerts';
import { dunningStatusQuery } from '../../workflows/definitions';
import { operatorEnv, runBillops, type CliRun } from '../support/billopsCli';
import { insertTenant, type TestTenant } from '../support/dunningFixtures';
import { startTestWorker, type TestWorker } from '../support/testWorker';
import { TEST_PORTAL_URL } from '../support/workerDeps';

const STRIPE_SECRET = `whsec_trigger_${randomBytes(8).toString('hex')}`;
const PAYSTACK_SECRET = `sk_test_trigger${randomBytes(8).toString('hex')}`;
const ALERT_TOKEN = `am-trigger-${randomBytes(8).toString('hex')}`;
const UI_PORT = '18233';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('billops trigger: a realistic signed event or alert sent to the local ingress', () => {
  const taskQueue = `trigger-${randomBytes(4).toString('hex')}`;
  let testWorker: TestWorker;
  let client: Client;
  let ingress: FastifyInstance;
  let env: Record<string, string>;
  let stripeTenant: TestTenant;
  let paystackTenant: TestTenant;
  const started = new Set<string>();

  const trigger = (...args: string[]): Promise<CliRun> => runBillops(['trigger', ...args], env);
  const link = (workflowId: string) =>
    `http://127.0.0.1:${UI_PORT}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;

  async function dunningStatus(workflowId: string): Promise<DunningStatus> {
    return client.workflow.getHandle(workflowId).query(dunningStatusQuery);
  }

  async function statusName(workflowId: string): Promise<string | undefined> {
    try {
      return (await client.workflow.getHandle(workflowId).describe()).status.name;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
  }

  async function eventuallyStatus(workflowId: string, wanted: string): Promise<void> {
    const until = Date.now() + 30_000;
    let last: string | undefined;
    while (Date.now() < until) {
      last = await statusName(workflowId);
      if (last === wanted) return;
      await sleep(250);
    }
    throw new Error(`${workflowId} is ${last ?? 'not found'}, not ${wanted}`);
  }

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    client = testWorker.client;
    stripeTenant = await insertTenant(testWorker.deps.pool, 'pro');
    paystackTenant = await insertTenant(testWorker.deps.pool, 'pro', {
      processor: 'paystack',
      paystackAuthorization: `AUTH_${randomBytes(4).toString('hex')}`,
    });
    ingress = buildIngress({
      client,
      pool: testWorker.deps.pool,
      webhooks: {
        taskQueue,
        policy: defaultPolicy,
        billingPortalUrl: TEST_PORTAL_URL,
        stripeWebhookSecret: STRIPE_SECRET,
        paystackSecret: PAYSTACK_SECRET,
      },
      alerts: { taskQueue, policy: defaultPolicy, token: ALERT_TOKEN, routing: DEFAULT_ALERT_ROUTES },
    });
    await ingress.listen({ host: '127.0.0.1', port: 0 });
    const { port } = ingress.server.address() as AddressInfo;
    env = operatorEnv(taskQueue, {
      INGRESS_HOST: '127.0.0.1',
      INGRESS_PORT: String(port),
      TEMPORAL_UI_PORT: UI_PORT,
      STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
      PAYSTACK_SECRET_KEY: PAYSTACK_SECRET,
      ALERTMANAGER_TOKEN: ALERT_TOKEN,
    });
  });

  afterAll(async () => {
    for (const workflowId of started) {
      await client.workflow
        .getHandle(workflowId)
        .terminate('cliTrigger test done')
        .catch(() => undefined);
    }
    await ingress?.close();
    await testWorker?.stop();
  });

  test('invoice.payment_failed starts the dunning lifecycle and prints its id and Web UI link; invoice.paid recovers it', async () => {
    const workflowId = `dunning-${stripeTenant.id}`;
    started.add(workflowId);
    const failed = await trigger('invoice.payment_failed', '--tenant', stripeTenant.id, '--amount', '12345');
    expect(failed.stderr).toBe('');
    expect(failed.code).toBe(0);
    expect(failed.stdout).toContain(workflowId);
    expect(failed.stdout).toContain(link(workflowId));
    expect(failed.stdout).not.toContain(STRIPE_SECRET);
    await eventuallyStatus(workflowId, 'RUNNING');
    const status = await dunningStatus(workflowId);
    expect(status.outstandingInvoices).toEqual([
      expect.objectContaining({ amountMinor: 12345, currency: 'USD' }),
    ]);

    // The paid event names the invoice that failed, so it reaches the same lifecycle and recovers it.
    const paid = await trigger('invoice.paid', '--tenant', stripeTenant.id, '--json');
    expect(paid.stderr).toBe('');
    expect(paid.code).toBe(0);
    const answer = JSON.parse(paid.stdout) as Record<string, unknown>;
    expect(answer).toMatchObject({
      event: 'invoice.paid',
      provider: 'stripe',
      tenantId: stripeTenant.id,
      status: 'processed',
      workflowId,
      webUiUrl: link(workflowId),
    });
    await eventuallyStatus(workflowId, 'COMPLETED');
  });

  test('a Paystack charge.failed starts the Paystack tenant’s lifecycle in kobo', async () => {
    const workflowId = `dunning-${paystackTenant.id}`;
    started.add(workflowId);
    const run = await trigger(
      'charge.failed',
      '--tenant',
      paystackTenant.id,
      '--amount',
      '500000',
      '--currency',
      'NGN',
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(link(workflowId));
    expect(run.stdout).not.toContain(PAYSTACK_SECRET);
    await eventuallyStatus(workflowId, 'RUNNING');
    expect((await dunningStatus(workflowId)).outstandingInvoices).toEqual([
      expect.objectContaining({ amountMinor: 500000, currency: 'NGN' }),
    ]);

    // charge.success names the failed charge's reference and its whole amount: the lifecycle recovers.
    const success = await trigger('charge.success', '--tenant', paystackTenant.id);
    expect(success.stderr).toBe('');
    expect(success.code).toBe(0);
    expect(success.stdout).toContain(`workflow: ${workflowId}`);
    await eventuallyStatus(workflowId, 'COMPLETED');
  });

  test('the other events are read by the ingress as the providers’ own: none is refused as malformed', async () => {
    const answers: Record<string, unknown>[] = [];
    for (const event of [
      'charge.refunded',
      'charge.dispute.created',
      'customer.subscription.updated',
      'refund.processed',
    ]) {
      const run = await trigger(
        event,
        '--tenant',
        event === 'refund.processed' ? paystackTenant.id : stripeTenant.id,
        '--json',
      );
      expect({ event, stderr: run.stderr, code: run.code }).toEqual({ event, stderr: '', code: 0 });
      answers.push(JSON.parse(run.stdout) as Record<string, unknown>);
    }
    const [refunded, dispute, subscription, paystackRefund] = answers;
    // A charge.refunded carries a charge, not a refund: kept for the refund's own event, as the ingress does.
    expect(refunded).toMatchObject({ provider: 'stripe', status: 'stored_for_incident' });
    expect(dispute).toMatchObject({ provider: 'stripe', status: 'stored_for_incident' });
    // A subscription that became active while ours is not opens the activation incident.
    expect(subscription).toMatchObject({
      status: 'processed',
      workflowId: expect.stringMatching(`^incident-subscription_activation_failure-${stripeTenant.id}-in_`),
    });
    // Paystack's processed refund of the tenant's paid charge opens the refund incident.
    expect(paystackRefund).toMatchObject({
      provider: 'paystack',
      status: 'processed',
      workflowId: expect.stringMatching(/^incident-refund-paystack-/),
    });
    for (const answer of [subscription, paystackRefund]) started.add(answer!.workflowId as string);
  });

  test('an alert by rule name opens its incident under the alert fingerprint; --resolved reaches the same one', async () => {
    const run = await trigger('PaymentSuccessRateLow', '--processor', 'paystack', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const answer = JSON.parse(run.stdout) as { workflowId: string; webUiUrl: string; status: string };
    // The fingerprint is Alertmanager's, as the ingress computes it for a label set.
    const labels = alertLabels('PaymentSuccessRateLow', { severity: 'warning', processor: 'paystack' });
    const workflowId = `incident-payment_processor_outage-${alertFingerprint(labels)}`;
    started.add(workflowId);
    expect(answer).toMatchObject({ status: 'incident', workflowId, webUiUrl: link(workflowId) });
    await eventuallyStatus(workflowId, 'RUNNING');

    const resolved = await trigger('PaymentSuccessRateLow', '--processor', 'paystack', '--resolved');
    expect(resolved.stderr).toBe('');
    expect(resolved.code).toBe(0);
    expect(resolved.stdout).toContain(workflowId);
    expect(resolved.stdout).toContain('alert_resolved');
  });

  test('an unknown event exits 2 with the list of known ones', async () => {
    const run = await trigger('invoice.exploded', '--tenant', stripeTenant.id);
    expect(run.code).toBe(2);
    for (const known of [
      'invoice.payment_failed',
      'charge.failed',
      'refund.processed',
      'PaymentSuccessRateLow',
    ]) {
      expect(run.stderr).toContain(known);
    }
  });

  test('an unknown tenant exits 2 with the known tenant ids', async () => {
    const run = await trigger('invoice.payment_failed', '--tenant', 'no-such-tenant');
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no-such-tenant');
    expect(run.stderr).toMatch(/known tenants/);
    const listed = run.stderr.includes(stripeTenant.id) || run.stderr.includes(paystackTenant.id);
    expect(listed || /and \d+ more/.test(run.stderr)).toBe(true);
  });

  test('an ingress that is not listening exits 1 naming its URL and what to start', async () => {
    const port = await closedPort();
    const run = await runBillops(['trigger', 'invoice.payment_failed', '--tenant', stripeTenant.id], {
      ...env,
      INGRESS_PORT: String(port),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`http://127.0.0.1:${port}`);
    expect(run.stderr).toContain('npm start');
    expect(await statusName(`dunning-${stripeTenant.id}`)).not.toBe('RUNNING');
  });

  test('a missing signing secret exits 2 naming the variable, never a value', async () => {
    const { STRIPE_WEBHOOK_SECRET: _unset, ...withoutSecret } = env;
    const run = await runBillops(['trigger', 'invoice.paid', '--tenant', stripeTenant.id], withoutSecret);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('STRIPE_WEBHOOK_SECRET');
  });
});
