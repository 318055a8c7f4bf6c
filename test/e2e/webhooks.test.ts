// Payment webhooks through Fastify's inject against the dev server, a worker and PostgreSQL: verification, dedup, dunning.
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import Stripe from 'stripe';
import { dunningWorkflowId } from '../../temporal/dunning';
import { dunnedTiers } from '../../paymentEvents/act';
import { receiveDelivery } from '../../ingress/webhooks/delivery';
import { FINISH_STATEMENT, FinishBatcher } from '../../db/webhookEvents';
import type { VerifiedEvent } from '../../domain/paymentEvents';
import { retryFailedWebhooks } from '../../paymentEvents/replay';
import {
  PendingWrites,
  registerWebhookRoutes,
  type WebhookDependencies,
} from '../../ingress/webhooks/routes';
import type { DunningStatus } from '../../domain/dunning';
import { defaultPolicy } from '../../domain/policy';
import type { WorkerDependencies } from '../../workers/dependencies';
import { dunningStatusQuery } from '../../workflows/definitions';
import type { dunningWorkflow } from '../../workflows/dunning';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { signPaystackWebhook } from '../support/paystackFake';
import { startTestWorker, type TestWorker } from '../support/testWorker';
import { TEST_PORTAL_URL } from '../support/workerDeps';

// light-my-request (behind app.inject) requires the ESM-only `cookie` 2, which Jest on Node 20 cannot load; it is only
// used to send request cookies, which these tests never do.
jest.mock('cookie', () => ({
  stringifySetCookie: () => {
    throw new Error('request cookies are not supported in this suite');
  },
}));

const STRIPE_SECRET = 'whsec_webhooks_test_current';
const STRIPE_OLD_SECRET = 'whsec_webhooks_test_previous';
const PAYSTACK_SECRET = 'sk_test_webhooks0000000000000000000000000';

const unique = () => randomUUID().replace(/-/g, '').slice(0, 14);
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface EventRow {
  status: string;
  signature_valid: boolean;
  tenant_id: string | null;
  event_type: string;
  error: string | null;
  attempts: number;
  payload: Record<string, unknown>;
}

describe('payment webhooks on the HTTP ingress', () => {
  let deps: WorkerDependencies;
  let client: Client;
  let testWorker: TestWorker;
  let app: FastifyInstance;
  const apps: FastifyInstance[] = [];
  const taskQueue = `webhooks-${unique()}`;
  const workflowIds = new Set<string>();
  const cleanups: (() => Promise<void>)[] = [];
  const registry = new Registry();
  const metrics = {
    unknownTenant: new Counter({
      name: 'webhook_events_unknown_tenant_total',
      help: 'test',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
    webhookEvents: new Counter({
      name: 'webhook_events_total',
      help: 'test',
      labelNames: ['provider', 'outcome'] as const,
      registers: [registry],
    }),
    processingSeconds: new Histogram({
      name: 'webhook_processing_seconds',
      help: 'test',
      labelNames: ['provider'] as const,
      registers: [registry],
    }),
  };

  // What a delivery writes after answering (marking its event done) lands before a test reads the row.
  const writes = new PendingWrites();

  async function buildApp(overrides: Partial<WebhookDependencies> = {}): Promise<FastifyInstance> {
    const built = Fastify({ logger: false });
    registerWebhookRoutes(built, {
      writes,
      pool: deps.pool,
      client,
      taskQueue,
      policy: defaultPolicy,
      billingPortalUrl: TEST_PORTAL_URL,
      stripeWebhookSecret: STRIPE_SECRET,
      paystackSecret: PAYSTACK_SECRET,
      metrics,
      ...overrides,
    });
    await built.ready();
    apps.push(built);
    return built;
  }

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    ({ deps, client } = testWorker);
    app = await buildApp();
  });

  afterAll(async () => {
    for (const workflowId of workflowIds) {
      await client.workflow
        .getHandle(workflowId)
        .terminate('webhooks test done')
        .catch(() => undefined);
    }
    for (const built of apps) await built.close();
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    await testWorker?.stop();
  });

  // ---- Stripe ----

  /** Pretty-printed on purpose: only the raw bytes verify, never a re-serialisation of the parsed body. */
  function stripeEvent(type: string, object: Record<string, unknown>, id = `evt_${unique()}`): string {
    return JSON.stringify(
      {
        id,
        object: 'event',
        api_version: '2025-09-30.clover',
        created: nowSeconds(),
        type,
        data: { object },
      },
      null,
      2,
    );
  }

  function stripeInvoice(fields: {
    id?: string;
    customer?: string;
    metadata?: Record<string, string>;
    amountDue?: number;
    extra?: Record<string, unknown>;
  }): Record<string, unknown> {
    const start = nowSeconds() - 30 * 86_400;
    return {
      id: fields.id ?? `in_${unique()}`,
      object: 'invoice',
      customer: fields.customer ?? `cus_${unique()}`,
      metadata: fields.metadata ?? {},
      amount_due: fields.amountDue ?? 4900,
      amount_paid: 0,
      currency: 'usd',
      status: 'open',
      period_start: start,
      period_end: start,
      lines: { object: 'list', data: [{ period: { start, end: start + 30 * 86_400 } }] },
      hosted_invoice_url: 'https://invoice.stripe.test/i/abc',
      ...fields.extra,
    };
  }

  const stripeHeader = (payload: string, secret = STRIPE_SECRET, timestamp?: number) =>
    Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });

  async function postStripe(payload: string, header = stripeHeader(payload), target = app) {
    const answer = await target.inject({
      method: 'POST',
      url: '/webhooks/stripe',
      headers: { 'content-type': 'application/json', 'stripe-signature': header },
      payload,
    });
    await writes.settled();
    return answer;
  }

  async function eventRow(provider: string, key: string): Promise<EventRow | undefined> {
    const { rows } = await deps.pool.query<EventRow>(
      `SELECT status, signature_valid, tenant_id, event_type, error, attempts, payload
       FROM webhook_events WHERE provider = $1 AND event_key = $2`,
      [provider, key],
    );
    return rows[0];
  }

  async function ourInvoice(processor: string, processorInvoiceId: string) {
    const { rows } = await deps.pool.query<{
      id: string;
      tenant_id: string;
      total_minor: string;
      status: string;
    }>(
      `SELECT id, tenant_id, total_minor, status FROM invoices WHERE processor = $1 AND processor_invoice_id = $2`,
      [processor, processorInvoiceId],
    );
    return rows[0];
  }

  function dunningHandle(tenantId: string) {
    const workflowId = dunningWorkflowId(tenantId);
    workflowIds.add(workflowId);
    return client.workflow.getHandle<typeof dunningWorkflow>(workflowId);
  }

  /** The status once every step due at the start has run, so nothing but a new message can change the timeline. */
  async function settledStatus(tenantId: string, invoices: number): Promise<DunningStatus> {
    for (let attempt = 0; attempt < 150; attempt++) {
      const status = await dunningHandle(tenantId).query(dunningStatusQuery);
      const nextAt = status.nextAction ? Date.parse(status.nextAction.at) : Infinity;
      if (nextAt > Date.now() + 60_000 && status.outstandingInvoices.length === invoices) return status;
      await sleep(200);
    }
    throw new Error(`dunning-${tenantId} did not settle`);
  }

  async function expectNoWorkflow(tenantId: string): Promise<void> {
    await expect(client.workflow.getHandle(dunningWorkflowId(tenantId)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  }

  let tenant: TestTenant;
  const firstInvoiceId = `in_${unique()}`;
  const firstEventId = `evt_${unique()}`;
  let firstPayload: string;
  let secondStripeInvoice: { stripeId: string; ourId: string };

  it('starts dunning-<tenant> from a verified invoice.payment_failed, storing the raw event before acting', async () => {
    tenant = await insertTenant(deps.pool, 'pro');
    firstPayload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ id: firstInvoiceId, metadata: { tenant_id: tenant.id }, amountDue: 4900 }),
      firstEventId,
    );

    const response = await postStripe(firstPayload);

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      received: true,
      status: 'processed',
      workflowId: dunningWorkflowId(tenant.id),
    });
    const description = await dunningHandle(tenant.id).describe();
    expect(description.status.name).toBe('RUNNING');
    const tenantAttribute = description.typedSearchAttributes.getAll().find((p) => p.key.name === 'TenantId');
    expect(tenantAttribute?.value).toBe(tenant.id);

    // No invoice of ours matched in_...: one was recorded from the event's amount_due (minor units).
    const invoice = await ourInvoice('stripe', firstInvoiceId);
    expect(invoice).toMatchObject({ tenant_id: tenant.id, total_minor: 4900, status: 'open' });
    const status = await dunningHandle(tenant.id).query(dunningStatusQuery);
    expect(status.outstandingInvoices).toEqual([
      { invoiceId: invoice!.id, amountMinor: 4900, currency: 'USD' },
    ]);

    const row = await eventRow('stripe', firstEventId);
    expect(row).toMatchObject({
      status: 'processed',
      signature_valid: true,
      tenant_id: tenant.id,
      event_type: 'invoice.payment_failed',
      attempts: 1,
    });
    // Stored raw: the whole event as delivered.
    expect(row!.payload).toEqual(JSON.parse(firstPayload));
  });

  it('joins the running lifecycle with a second failed invoice (tenant from the subscription metadata)', async () => {
    const stripeId = `in_${unique()}`;
    const ours = await insertOpenInvoice(deps.pool, tenant.id, {
      processor: 'stripe',
      processorInvoiceId: stripeId,
      totalMinor: 12_000,
    });
    secondStripeInvoice = { stripeId, ourId: ours.invoiceId };
    const { runId } = await dunningHandle(tenant.id).describe();
    const payload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({
        id: stripeId,
        amountDue: 12_000,
        extra: {
          parent: { subscription_details: { metadata: { tenant_id: tenant.id }, subscription: 'sub_1' } },
        },
      }),
    );

    const response = await postStripe(payload);

    expect(response.statusCode).toBe(200);
    expect((await dunningHandle(tenant.id).describe()).runId).toBe(runId);
    const status = await settledStatus(tenant.id, 2);
    expect(status.outstandingInvoices.map((i) => [i.invoiceId, i.amountMinor])).toEqual([
      [(await ourInvoice('stripe', firstInvoiceId))!.id, 4900],
      [ours.invoiceId, 12_000],
    ]);
  });

  it('answers a replayed delivery 200 duplicate: one run, no extra timeline entry', async () => {
    const before = await settledStatus(tenant.id, 2);
    const { runId } = await dunningHandle(tenant.id).describe();

    const replay = await postStripe(firstPayload);

    expect(replay.statusCode).toBe(200);
    expect(replay.json()).toEqual({ received: true, duplicate: true });
    const after = await dunningHandle(tenant.id).query(dunningStatusQuery);
    expect(after.timeline).toEqual(before.timeline);
    expect((await dunningHandle(tenant.id).describe()).runId).toBe(runId);
    const runs = [];
    for await (const run of client.workflow.list({
      query: `WorkflowId = '${dunningWorkflowId(tenant.id)}'`,
    })) {
      runs.push(run.runId);
    }
    expect(runs).toEqual([runId]);
    expect(await eventRow('stripe', firstEventId)).toMatchObject({ status: 'processed', attempts: 1 });
  });

  it('acts once when two deliveries of the same event race each other', async () => {
    const racer = await insertTenant(deps.pool, 'pro');
    const eventId = `evt_${unique()}`;
    const payload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ metadata: { tenant_id: racer.id } }),
      eventId,
    );

    const answers = await Promise.all([postStripe(payload), postStripe(payload)]);

    const processed = answers.filter((a) => a.statusCode === 200 && a.json().status === 'processed');
    const other = answers.find((a) => !processed.includes(a))!;
    expect(processed).toHaveLength(1);
    // The loser either saw the finished row (duplicate) or the claim in progress (409: the provider retries later).
    expect(other.statusCode === 409 || (other.statusCode === 200 && other.json().duplicate === true)).toBe(
      true,
    );
    expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'processed', attempts: 1 });
    expect((await settledStatus(racer.id, 1)).outstandingInvoices).toHaveLength(1);
  });

  it('verifies a header with two v1 signatures from both sides of a secret roll, whichever secret is configured', async () => {
    const oldSecretApp = await buildApp({ stripeWebhookSecret: STRIPE_OLD_SECRET });
    const rolled = (payload: string) => {
      const timestamp = nowSeconds();
      const current = stripeHeader(payload, STRIPE_SECRET, timestamp);
      const previous = stripeHeader(payload, STRIPE_OLD_SECRET, timestamp);
      // Stripe's header during a roll: t=...,v1=<new>,v1=<old>
      return `${current},${previous.split(',').find((part) => part.startsWith('v1='))}`;
    };
    const onCurrent = stripeEvent('customer.updated', { id: `cus_${unique()}`, object: 'customer' });
    const onPrevious = stripeEvent('customer.updated', { id: `cus_${unique()}`, object: 'customer' });
    expect(rolled(onCurrent).match(/v1=/g)).toHaveLength(2);

    expect((await postStripe(onCurrent, rolled(onCurrent))).statusCode).toBe(200);
    expect((await postStripe(onPrevious, rolled(onPrevious), oldSecretApp)).statusCode).toBe(200);
    // A secret on neither side still fails.
    const other = stripeHeader(onCurrent, 'whsec_someone_else');
    expect((await postStripe(onCurrent, other, oldSecretApp)).statusCode).toBe(400);
  });

  it('refuses a signature older than the 300 s tolerance, and accepts one inside it', async () => {
    const staleId = `evt_${unique()}`;
    const stalePayload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ metadata: { tenant_id: tenant.id } }),
      staleId,
    );
    const recent = stripeEvent('customer.updated', { id: `cus_${unique()}`, object: 'customer' });

    const stale = await postStripe(
      stalePayload,
      stripeHeader(stalePayload, STRIPE_SECRET, nowSeconds() - 301),
    );
    const inside = await postStripe(recent, stripeHeader(recent, STRIPE_SECRET, nowSeconds() - 240));

    expect(stale.statusCode).toBe(400);
    expect(stale.json().message).toMatch(/Timestamp outside the tolerance zone/);
    expect(await eventRow('stripe', staleId)).toBeUndefined();
    expect(inside.statusCode).toBe(200);
  });

  it('refuses a bad signature with 400: nothing processed, nothing started, the rejection counted', async () => {
    const stranger = await insertTenant(deps.pool, 'pro');
    const eventId = `evt_${unique()}`;
    const payload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ metadata: { tenant_id: stranger.id } }),
      eventId,
    );
    const rejectedBefore = await metricValue(metrics.webhookEvents, {
      provider: 'stripe',
      outcome: 'rejected',
    });

    const response = await postStripe(payload, stripeHeader(payload, 'whsec_forged'));

    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/^signature verification failed: No signatures found/);
    expect(await eventRow('stripe', eventId)).toBeUndefined();
    await expectNoWorkflow(stranger.id);
    // Counted for the webhook-failure incident under a key of its own, with only a digest of the untrusted body.
    const { rows } = await deps.pool.query<EventRow>(
      `SELECT status, signature_valid, event_type, payload FROM webhook_events
       WHERE provider = 'stripe' AND payload->>'claimed_event' = $1`,
      [eventId],
    );
    expect(rows).toEqual([
      expect.objectContaining({
        status: 'rejected',
        signature_valid: false,
        event_type: 'invoice.payment_failed',
      }),
    ]);
    expect(rows[0]!.payload).not.toHaveProperty('data');
    expect(await metricValue(metrics.webhookEvents, { provider: 'stripe', outcome: 'rejected' })).toBe(
      rejectedBefore + 1,
    );
  });

  it('refuses malformed JSON with 400 and the parser’s reason', async () => {
    const payload = '{"id": "evt_malformed", "type": "invoice.payment_failed", "data": ';

    const response = await postStripe(payload);

    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/^malformed JSON: /);
    expect(await eventRow('stripe', 'evt_malformed')).toBeUndefined();
  });

  it('stores an event type billops does not act on and answers 200 (ignored)', async () => {
    const eventId = `evt_${unique()}`;
    const response = await postStripe(
      stripeEvent('product.created', { id: 'prod_1', object: 'product' }, eventId),
    );

    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ received: true, status: 'ignored' });
    expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'ignored', signature_valid: true });
  });

  it('records an event for an unknown tenant, answers 200, counts it and starts nothing', async () => {
    const ghost = `ghost-${unique()}`;
    const eventId = `evt_${unique()}`;
    const before = await metricValue(metrics.unknownTenant, { provider: 'stripe' });

    const response = await postStripe(
      stripeEvent('invoice.payment_failed', stripeInvoice({ metadata: { tenant_id: ghost } }), eventId),
    );

    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ received: true, status: 'ignored' });
    expect(response.json().reason).toMatch(
      new RegExp(`^tenant unknown: waiting for tenant metadata.tenant_id ${ghost}`),
    );
    expect(await eventRow('stripe', eventId)).toMatchObject({
      status: 'failed',
      tenant_id: null,
      error: expect.stringMatching(
        new RegExp(`^tenant unknown: waiting for tenant metadata.tenant_id ${ghost}`),
      ),
    });
    expect(await metricValue(metrics.unknownTenant, { provider: 'stripe' })).toBe(before + 1);
    await expectNoWorkflow(ghost);
  });

  it('keeps a failed payment for a tenant not known yet waiting, and `webhooks retry` starts its lifecycle once the tenant exists', async () => {
    const customer = `cus_${unique()}`;
    const eventId = `evt_${unique()}`;
    const invoiceId = `in_${unique()}`;
    const retryDeps = {
      pool: deps.pool,
      client,
      taskQueue,
      policy: defaultPolicy,
      billingPortalUrl: TEST_PORTAL_URL,
    };

    // The processor reports the failure before billops has the tenant (a signup still being provisioned).
    const response = await postStripe(
      stripeEvent(
        'invoice.payment_failed',
        stripeInvoice({ id: invoiceId, customer, amountDue: 2900 }),
        eventId,
      ),
    );
    expect(response.json()).toMatchObject({ received: true, status: 'ignored' });
    const waiting = new RegExp(`^tenant unknown: waiting for tenant stripe customer ${customer}`);
    expect(await eventRow('stripe', eventId)).toMatchObject({
      status: 'failed',
      tenant_id: null,
      error: expect.stringMatching(waiting),
    });

    // Retried while the tenant is still unknown: it stays waiting, with its reason.
    const early = await retryFailedWebhooks(retryDeps, { hours: 1 });
    expect(early.events.find((e) => e.eventKey === eventId)).toMatchObject({
      previousStatus: 'failed',
      reason: expect.stringMatching(waiting),
    });
    expect(await eventRow('stripe', eventId)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(waiting),
    });

    // The tenant is added; the next retry acts on the event: the lifecycle starts with the invoice.
    const late = await insertTenant(deps.pool, 'pro');
    await deps.pool.query('UPDATE tenants SET stripe_customer_id = $2 WHERE id = $1', [late.id, customer]);
    const report = await retryFailedWebhooks(retryDeps, { hours: 1 });

    expect(report.events.find((e) => e.eventKey === eventId)).toMatchObject({
      outcome: 'processed',
      tenantId: late.id,
      workflowId: dunningWorkflowId(late.id),
    });
    workflowIds.add(dunningWorkflowId(late.id));
    expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'processed', tenant_id: late.id });
    expect(await ourInvoice('stripe', invoiceId)).toMatchObject({ tenant_id: late.id, total_minor: 2900 });
    expect((await settledStatus(late.id, 1)).outstandingInvoices).toHaveLength(1);
  });

  it('keeps refunds and disputes for their incident workflows (stored_for_incident), starting nothing', async () => {
    const customer = `cus_${unique()}`;
    const refundTenant = await insertTenant(deps.pool, 'pro');
    await deps.pool.query('UPDATE tenants SET stripe_customer_id = $2 WHERE id = $1', [
      refundTenant.id,
      customer,
    ]);
    const refundId = `evt_${unique()}`;
    const disputeId = `evt_${unique()}`;

    const refund = await postStripe(
      stripeEvent(
        'charge.refunded',
        { id: 'ch_1', object: 'charge', customer, amount_refunded: 4900 },
        refundId,
      ),
    );
    const dispute = await postStripe(
      stripeEvent('charge.dispute.created', { id: 'dp_1', object: 'dispute', charge: 'ch_1' }, disputeId),
    );

    expect([refund.statusCode, dispute.statusCode]).toEqual([200, 200]);
    expect(await eventRow('stripe', refundId)).toMatchObject({
      status: 'stored_for_incident',
      tenant_id: refundTenant.id,
    });
    expect(await eventRow('stripe', disputeId)).toMatchObject({ status: 'stored_for_incident' });
    await expectNoWorkflow(refundTenant.id);
  });

  it('recovers the lifecycle when every failed invoice is paid (invoice.paid, invoice.payment_succeeded)', async () => {
    const handle = dunningHandle(tenant.id);
    const paid = (type: string, id: string) =>
      postStripe(
        stripeEvent(
          type,
          stripeInvoice({ id, metadata: { tenant_id: tenant.id }, amountDue: 0, extra: { status: 'paid' } }),
        ),
      );

    const first = await paid('invoice.paid', firstInvoiceId);
    const second = await paid('invoice.payment_succeeded', secondStripeInvoice.stripeId);

    expect(first.json()).toMatchObject({ status: 'processed', workflowId: dunningWorkflowId(tenant.id) });
    expect(second.statusCode).toBe(200);
    const outcome = await handle.result();
    expect(outcome.phase).toBe('recovered');
    expect((await handle.query(dunningStatusQuery)).phase).toBe('recovered');
    expect((await ourInvoice('stripe', firstInvoiceId))?.status).toBe('paid');
    expect((await ourInvoice('stripe', secondStripeInvoice.stripeId))?.status).toBe('paid');
  });

  it('answers 2xx and keeps the event failed when Temporal is unreachable; the provider’s retry processes it', async () => {
    const customer = `cus_${unique()}`;
    const mapped = await insertTenant(deps.pool, 'enterprise');
    await deps.pool.query('UPDATE tenants SET stripe_customer_id = $2 WHERE id = $1', [mapped.id, customer]);
    const unreachable = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    cleanups.push(() => unreachable.connection.close());
    const temporalDown = await buildApp({ client: unreachable, temporalTimeoutMs: 1500 });
    const eventId = `evt_${unique()}`;
    // No metadata: the tenant comes from tenants.stripe_customer_id.
    const payload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ customer, amountDue: 25_000 }),
      eventId,
    );

    const failed = await postStripe(payload, stripeHeader(payload), temporalDown);

    expect(failed.statusCode).toBe(200);
    expect(failed.json()).toMatchObject({ received: true, status: 'failed' });
    expect(failed.json().reason).toMatch(/stored but could not be acted on/);
    const row = await eventRow('stripe', eventId);
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row!.error).toBeTruthy();
    await expectNoWorkflow(mapped.id);

    const retried = await postStripe(payload);

    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ status: 'processed' });
    expect(await eventRow('stripe', eventId)).toMatchObject({
      status: 'processed',
      attempts: 2,
      error: null,
    });
    const status = await dunningHandle(mapped.id).query(dunningStatusQuery);
    expect(status.outstandingInvoices).toEqual([
      expect.objectContaining({ amountMinor: 25_000, currency: 'USD' }),
    ]);
  });

  it('answers once the event is in Temporal; a lost "processed" write loses nothing: the retry takes the event after the lease', async () => {
    const tenant = await insertTenant(deps.pool, 'pro');
    const eventId = `evt_${unique()}`;
    const payload = stripeEvent(
      'invoice.payment_failed',
      stripeInvoice({ metadata: { tenant_id: tenant.id }, amountDue: 7_700 }),
      eventId,
    );
    // The database goes away between the signal-with-start and the write that marks the event processed.
    const lostFinish = Object.create(deps.pool) as typeof deps.pool;
    lostFinish.query = ((config: unknown, values?: unknown) =>
      (config as { name?: string }).name === FINISH_STATEMENT
        ? Promise.reject(new Error('connection terminated'))
        : deps.pool.query(config as string, values as unknown[])) as typeof deps.pool.query;
    const flaky = await buildApp({ pool: lostFinish });

    const answer = await postStripe(payload, stripeHeader(payload), flaky);

    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ status: 'processed', workflowId: dunningWorkflowId(tenant.id) });
    expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'processing', attempts: 1 });
    expect((await settledStatus(tenant.id, 1)).outstandingInvoices).toHaveLength(1);

    // Inside the lease the claim belongs to a live delivery: the retry leaves it alone.
    const early = await retryFailedWebhooks(
      { pool: deps.pool, client, taskQueue, policy: defaultPolicy, billingPortalUrl: TEST_PORTAL_URL },
      { hours: 1 },
    );
    expect(early.events.find((e) => e.eventKey === eventId)).toBeUndefined();
    const afterLease = await retryFailedWebhooks(
      {
        pool: deps.pool,
        client,
        taskQueue,
        policy: defaultPolicy,
        billingPortalUrl: TEST_PORTAL_URL,
        leaseSeconds: 0,
      },
      { hours: 1 },
    );

    expect(afterLease.events.find((e) => e.eventKey === eventId)).toMatchObject({ outcome: 'processed' });
    expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'processed', attempts: 2 });
    // Acted on twice, applied once: the lifecycle holds the invoice once.
    const status = await settledStatus(tenant.id, 1);
    expect(status.outstandingInvoices).toEqual([expect.objectContaining({ amountMinor: 7_700 })]);
  });

  it('names the tenant on the stored event from its claim: a failed delivery’s row has it, an unknown tenant’s has none', async () => {
    const customer = `cus_${unique()}`;
    const named = await insertTenant(deps.pool, 'pro');
    await deps.pool.query('UPDATE tenants SET stripe_customer_id = $2 WHERE id = $1', [named.id, customer]);
    // Our record of the Stripe invoice belongs to another tenant, so acting on the event fails.
    const owner = await insertTenant(deps.pool, 'pro');
    const stripeInvoiceId = `in_${unique()}`;
    await insertOpenInvoice(deps.pool, owner.id, {
      processor: 'stripe',
      processorInvoiceId: stripeInvoiceId,
    });
    const mismatchId = `evt_${unique()}`;
    const unknownId = `evt_${unique()}`;

    const mismatch = await postStripe(
      stripeEvent('invoice.payment_failed', stripeInvoice({ id: stripeInvoiceId, customer }), mismatchId),
    );
    const unknown = await postStripe(
      stripeEvent('invoice.payment_failed', stripeInvoice({ customer: `cus_${unique()}` }), unknownId),
    );

    expect(mismatch.statusCode).toBe(200);
    expect(mismatch.json()).toMatchObject({ received: true, status: 'failed' });
    const failedRow = await eventRow('stripe', mismatchId);
    expect(failedRow).toMatchObject({ status: 'failed', tenant_id: named.id });
    expect(failedRow!.error).toMatch(/^InvoiceOwnerMismatchError: /);
    await expectNoWorkflow(named.id);
    expect(unknown.statusCode).toBe(200);
    expect(unknown.json()).toMatchObject({ status: 'ignored' });
    // Kept failed, waiting for its tenant, with no tenant named.
    expect(await eventRow('stripe', unknownId)).toMatchObject({ status: 'failed', tenant_id: null });
  });

  it('stores the event, finds its tenant and records its invoice in one statement before handing it to Temporal', async () => {
    const tenant = await insertTenant(deps.pool, 'pro');
    const statements: string[] = [];
    const recording = Object.create(deps.pool) as typeof deps.pool;
    recording.query = ((config: unknown, values?: unknown) => {
      const named = config as { name?: string; text?: string };
      statements.push(named.name ?? named.text ?? String(config));
      return deps.pool.query(config as string, values as unknown[]);
    }) as typeof deps.pool.query;
    const recorded = await buildApp({ pool: recording });
    const eventId = `evt_${unique()}`;
    const invoice = stripeInvoice({ metadata: { tenant_id: tenant.id }, amountDue: 3_100 });

    const answer = await postStripe(
      stripeEvent('invoice.payment_failed', invoice, eventId),
      undefined,
      recorded,
    );

    expect(answer.json()).toMatchObject({ status: 'processed', workflowId: dunningWorkflowId(tenant.id) });
    // The second statement is the batched "processed" mark, written after the answer.
    expect(statements).toEqual(['webhook-claim-failed-stripe', FINISH_STATEMENT]);
    expect(await ourInvoice('stripe', String(invoice.id))).toMatchObject({
      tenant_id: tenant.id,
      total_minor: 3100,
    });
    const status = await dunningHandle(tenant.id).query(dunningStatusQuery);
    expect(status.outstandingInvoices).toEqual([expect.objectContaining({ amountMinor: 3_100 })]);
  });

  it('records a failed invoice only for a tenant that is dunned, and never acts on one already paid', async () => {
    const free = await insertTenant(deps.pool, 'free');
    const deleted = await insertTenant(deps.pool, 'pro');
    await deps.pool.query('UPDATE tenants SET deleted_at = now() WHERE id = $1', [deleted.id]);
    const payer = await insertTenant(deps.pool, 'pro');
    const paidStripeId = `in_${unique()}`;
    const paid = await insertOpenInvoice(deps.pool, payer.id, {
      processor: 'stripe',
      processorInvoiceId: paidStripeId,
    });
    await deps.pool.query(
      `UPDATE invoices SET status = 'paid', paid_at = now(), amount_paid_minor = total_minor WHERE id = $1`,
      [paid.invoiceId],
    );
    const failure = async (tenantId: string, invoiceId = `in_${unique()}`) => {
      const eventId = `evt_${unique()}`;
      const invoice = stripeInvoice({ id: invoiceId, metadata: { tenant_id: tenantId } });
      const answer = await postStripe(stripeEvent('invoice.payment_failed', invoice, eventId));
      return { answer, eventId, invoiceId };
    };

    const onFree = await failure(free.id);
    const onDeleted = await failure(deleted.id);
    const afterPaid = await failure(payer.id, paidStripeId);

    expect(onFree.answer.json()).toMatchObject({ status: 'ignored' });
    expect(onFree.answer.json().reason).toMatch(/free tier, which has no payment processing/);
    expect(onDeleted.answer.json()).toMatchObject({
      status: 'ignored',
      reason: `tenant ${deleted.id} was deleted`,
    });
    expect(afterPaid.answer.json()).toMatchObject({
      status: 'ignored',
      reason: `invoice ${paid.invoiceId} is already paid`,
    });
    for (const { answer, eventId } of [onFree, onDeleted, afterPaid]) {
      expect(answer.statusCode).toBe(200);
      expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'ignored' });
    }
    expect(await ourInvoice('stripe', onFree.invoiceId)).toBeUndefined();
    expect(await ourInvoice('stripe', onDeleted.invoiceId)).toBeUndefined();
    expect(await ourInvoice('stripe', paidStripeId)).toMatchObject({ id: paid.invoiceId, status: 'paid' });
    for (const tenantId of [free.id, deleted.id, payer.id]) await expectNoWorkflow(tenantId);
  });

  it('keeps an event whose invoice PostgreSQL refuses, as failed with the reason, and acts on it once corrected', async () => {
    const tenantId = (await insertTenant(deps.pool, 'pro')).id;
    const eventKey = `evt_${unique()}`;
    const processorInvoiceId = `in_${unique()}`;
    const periodStart = new Date('2026-11-01T00:00:00Z');
    // A period that ends before it starts is refused by the invoices CHECK. The Stripe parser never reads one; a reader
    // of our own hands it to the same delivery path the routes use.
    const refusedEnd = new Date('2026-10-01T00:00:00Z');
    const event = (periodEnd: Date): VerifiedEvent => ({
      provider: 'stripe',
      key: eventKey,
      type: 'invoice.payment_failed',
      intent: {
        kind: 'paymentFailed',
        tenant: { metadataTenantId: tenantId },
        invoice: { processorInvoiceId, amountMinor: 4900, currency: 'USD', periodStart, periodEnd },
      },
    });
    const deliver = (periodEnd: Date) =>
      receiveDelivery(
        {
          pool: deps.pool,
          client,
          taskQueue,
          policy: defaultPolicy,
          billingPortalUrl: TEST_PORTAL_URL,
          temporalTimeoutMs: 10_000,
          leaseSeconds: 60,
          metrics: {},
          finisher: new FinishBatcher(deps.pool),
          writes,
          dunnedTiers: dunnedTiers(defaultPolicy),
          log: Fastify({ logger: false }).log,
        },
        { provider: 'stripe', verify: () => ({ ok: true, body: {} }), read: () => event(periodEnd) },
        Buffer.from(JSON.stringify({ id: eventKey })),
      ).then(async (answer) => {
        await writes.settled();
        return answer;
      });

    const refused = await deliver(refusedEnd);

    expect(refused).toMatchObject({ statusCode: 200, body: { received: true, status: 'failed' } });
    const row = await eventRow('stripe', eventKey);
    expect(row).toMatchObject({ status: 'failed', tenant_id: tenantId, attempts: 1 });
    expect(row!.error).toMatch(/invoices_period_ordered/);
    expect(await ourInvoice('stripe', processorInvoiceId)).toBeUndefined();
    await expectNoWorkflow(tenantId);

    const corrected = await deliver(new Date('2026-12-01T00:00:00Z'));
    expect(corrected).toMatchObject({
      statusCode: 200,
      body: { status: 'processed', workflowId: dunningWorkflowId(tenantId) },
    });
    expect(await eventRow('stripe', eventKey)).toMatchObject({ status: 'processed', attempts: 2 });
    expect(await ourInvoice('stripe', processorInvoiceId)).toMatchObject({
      tenant_id: tenantId,
      status: 'open',
    });
    dunningHandle(tenantId);
  });

  it('answers 503 naming the variable to set when a route has no secret', async () => {
    const unconfigured = await buildApp({ stripeWebhookSecret: undefined, paystackSecret: undefined });
    const body = stripeEvent('product.created', { id: 'prod_1' });

    const stripe = await postStripe(body, stripeHeader(body), unconfigured);
    const paystack = await unconfigured.inject({
      method: 'POST',
      url: '/webhooks/paystack',
      headers: { 'content-type': 'application/json', 'x-paystack-signature': 'ab' },
      payload: '{}',
    });

    expect(stripe.statusCode).toBe(503);
    expect(stripe.json().message).toMatch(/STRIPE_WEBHOOK_SECRET/);
    expect(paystack.statusCode).toBe(503);
    expect(paystack.json().message).toMatch(/PAYSTACK_WEBHOOK_SECRET/);
  });

  // ---- Hostile input ----

  describe('hostile input', () => {
    interface HostileCase {
      name: string;
      provider: 'stripe' | 'paystack';
      /** The bytes sent, signed as they are. */
      body: Buffer;
      /** The key the event is stored under. */
      key: string;
      status: 'ignored' | 'stored_for_incident';
      /** The payload had to be cleaned: raw_body keeps the bytes. */
      cleaned: boolean;
      /** What the answer's reason says. */
      reason?: RegExp;
      /** A failed payment naming a tenant not known yet: stored 'failed', waiting for it, and acted on again. */
      waiting?: boolean;
    }

    const stripeBytes = (type: string, object: unknown, id: string) =>
      Buffer.from(JSON.stringify({ id, object: 'event', created: nowSeconds(), type, data: { object } }));
    const paystackBytes = (event: string, data: unknown) => Buffer.from(JSON.stringify({ event, data }));

    function hostileCases(): HostileCase[] {
      const stripeCase = (
        name: string,
        type: string,
        object: unknown,
        expected: Pick<HostileCase, 'status' | 'cleaned' | 'reason' | 'waiting'>,
        id = `evt_${unique()}`,
        key = id,
      ): HostileCase => ({ name, provider: 'stripe', body: stripeBytes(type, object, id), key, ...expected });
      const nulId = `evt_${unique()}`;
      const reference = `ref-${unique()}`;
      const arrayData = paystackBytes('charge.failed', [{ reference: `ref-${unique()}` }]);
      const invalidUtf8 = Buffer.concat([
        Buffer.from(`{"event":"charge.success","data":{"reference":"ref-${unique()}","note":"`),
        Buffer.from([0xff, 0xfe, 0xc3]),
        Buffer.from('","amount":100}}'),
      ]);
      return [
        stripeCase(
          'NUL escape in a value',
          'product.created',
          { id: 'prod_1', name: 'a\u0000b' },
          {
            status: 'ignored',
            cleaned: true,
          },
        ),
        stripeCase(
          'lone high surrogate escape',
          'product.created',
          { id: 'prod_2', name: 'x\ud800y' },
          {
            status: 'ignored',
            cleaned: true,
          },
        ),
        stripeCase(
          'lone low surrogate escape in a key',
          'product.created',
          { ['k\udc00']: 1 },
          {
            status: 'ignored',
            cleaned: true,
          },
        ),
        stripeCase(
          'NUL escape in the event id',
          'product.created',
          { id: 'prod_3' },
          { status: 'ignored', cleaned: true },
          `${nulId}\u0000`,
          `${nulId}\ufffd`,
        ),
        stripeCase(
          'NUL in an unpaid invoice for an unknown customer',
          'invoice.payment_failed',
          stripeInvoice({ customer: `cus_${unique()}\u0000`, extra: { description: '\u0000' } }),
          { status: 'ignored', cleaned: true, waiting: true, reason: /^tenant unknown: waiting for tenant/ },
        ),
        stripeCase(
          'an escaped backslash before u0000 (not an escape: kept as sent)',
          'product.created',
          { id: 'prod_4', name: 'C:\\u0000' },
          { status: 'ignored', cleaned: false },
        ),
        stripeCase(
          'amount_due a string',
          'invoice.payment_failed',
          stripeInvoice({ extra: { amount_due: 'abc' } }),
          { status: 'ignored', cleaned: false, reason: /^malformed event: .*data\.object\.amount_due/ },
        ),
        stripeCase('data.object an array', 'invoice.payment_failed', [1, 2, 3], {
          status: 'ignored',
          cleaned: false,
          reason: /^malformed event: not a Stripe event: data\.object/,
        }),
        stripeCase(
          'metadata values that are objects',
          'invoice.payment_failed',
          // No customer either: an event that names no tenant cannot wait for one, and is ignored.
          stripeInvoice({
            extra: { customer: null, metadata: { tenant_id: { id: 'tnt' }, nested: { a: [1] } } },
          }),
          { status: 'ignored', cleaned: false, reason: /no tenant/i },
        ),
        stripeCase(
          'metadata an array, on a refund',
          'charge.refunded',
          { id: 'ch_1', metadata: ['tenant_id'], customer: { nested: true } },
          { status: 'stored_for_incident', cleaned: false },
        ),
        {
          name: 'Paystack: NUL and lone surrogate escapes in the reference',
          provider: 'paystack',
          body: paystackBytes('charge.success', { reference: `${reference}\u0000\ud800`, amount: 100 }),
          key: `charge.success:${reference}\ufffd\ufffd`,
          status: 'ignored',
          cleaned: true,
        },
        {
          name: 'Paystack: data an array',
          provider: 'paystack',
          body: arrayData,
          key: `charge.failed:sha256-${createHash('sha256').update(arrayData).digest('hex')}`,
          status: 'ignored',
          cleaned: false,
          reason: /^malformed event: not a Paystack event: data/,
        },
        {
          name: 'Paystack: bytes that are not UTF-8',
          provider: 'paystack',
          body: invalidUtf8,
          key: `charge.success:${/"reference":"([^"]+)"/.exec(invalidUtf8.toString('latin1'))![1]}`,
          status: 'ignored',
          cleaned: true,
        },
      ];
    }

    async function deliver(provider: 'stripe' | 'paystack', body: Buffer) {
      const timestamp = nowSeconds();
      const headers =
        provider === 'stripe'
          ? {
              'stripe-signature': `t=${timestamp},v1=${createHmac('sha256', STRIPE_SECRET)
                .update(`${timestamp}.`)
                .update(body)
                .digest('hex')}`,
            }
          : { 'x-paystack-signature': createHmac('sha512', PAYSTACK_SECRET).update(body).digest('hex') };
      const answer = await app.inject({
        method: 'POST',
        url: `/webhooks/${provider}`,
        headers: { 'content-type': 'application/json', ...headers },
        payload: body,
      });
      await writes.settled();
      return answer;
    }

    async function rawBodyOf(provider: string, key: string): Promise<Buffer | null | undefined> {
      const { rows } = await deps.pool.query<{ raw_body: Buffer | null }>(
        'SELECT raw_body FROM webhook_events WHERE provider = $1 AND event_key = $2',
        [provider, key],
      );
      return rows[0]?.raw_body;
    }

    it.each(hostileCases().map((c) => [c.name, c] as const))(
      'stores a signed event with %s, answers it 2xx with the reason, and a second delivery is a duplicate',
      async (_name, c) => {
        const first = await deliver(c.provider, c.body);

        expect(first.statusCode).toBe(200);
        expect(first.json()).toMatchObject({ received: true, status: c.status });
        if (c.reason) expect(first.json().reason).toMatch(c.reason);
        const stored = c.waiting ? 'failed' : c.status;
        expect(await eventRow(c.provider, c.key)).toMatchObject({ status: stored, attempts: 1 });
        const raw = await rawBodyOf(c.provider, c.key);
        if (c.cleaned) expect(raw && raw.equals(c.body)).toBe(true);
        else expect(raw).toBeNull();

        const second = await deliver(c.provider, c.body);

        expect(second.statusCode).toBe(200);
        if (c.waiting) {
          // Still waiting for its tenant: acted on again, under the same key, and still waiting.
          expect(second.json()).toMatchObject({ received: true, status: c.status });
          expect(await eventRow(c.provider, c.key)).toMatchObject({ status: stored, attempts: 2 });
        } else {
          expect(second.json()).toEqual({ received: true, duplicate: true });
          expect(await eventRow(c.provider, c.key)).toMatchObject({ status: stored, attempts: 1 });
        }
      },
    );

    it.each([
      ['an event id too long for a key', stripeBytes('product.created', {}, `evt_${'x'.repeat(5000)}`)],
      ['a blank event id', stripeBytes('product.created', {}, '   ')],
      ['an id that is a number', stripeBytes('product.created', {}, 42 as unknown as string)],
      ['a body that is an array', Buffer.from('[{"id":"evt_1"}]')],
      ['a body that is null', Buffer.from('null')],
    ])('refuses a signed Stripe body with %s with 400 and the reason', async (_name, body) => {
      const answer = await deliver('stripe', body);

      expect(answer.statusCode).toBe(400);
      expect(answer.json().message).toMatch(/^not a Stripe event: /);
    });

    it('refuses a signed Paystack event name too long for a key with 400 and the reason', async () => {
      const answer = await deliver('paystack', paystackBytes('x'.repeat(5000), { reference: 'r' }));

      expect(answer.statusCode).toBe(400);
      expect(answer.json().message).toMatch(/^not a Paystack event: event: /);
    });

    it('keeps a delivery Temporal cannot take as failed, answered 2xx; `webhooks retry` acts on it once Temporal is back', async () => {
      const tenant = await insertTenant(deps.pool, 'pro');
      const unreachable = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
      cleanups.push(() => unreachable.connection.close());
      const temporalDown = await buildApp({ client: unreachable, temporalTimeoutMs: 1500 });
      const eventId = `evt_${unique()}`;
      const payload = stripeEvent(
        'invoice.payment_failed',
        stripeInvoice({ metadata: { tenant_id: tenant.id, note: 'a\u0000b' }, amountDue: 6_100 }),
        eventId,
      );

      const answer = await postStripe(payload, stripeHeader(payload), temporalDown);

      expect(answer.statusCode).toBe(200);
      expect(answer.json()).toMatchObject({ received: true, status: 'failed' });
      expect(answer.json().reason).toMatch(/billops webhooks retry/);
      expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'failed', attempts: 1 });
      expect((await rawBodyOf('stripe', eventId))?.toString('utf8')).toBe(payload);
      await expectNoWorkflow(tenant.id);

      const report = await retryFailedWebhooks(
        { pool: deps.pool, client, taskQueue, policy: defaultPolicy, billingPortalUrl: TEST_PORTAL_URL },
        { hours: 1 },
      );

      expect(report.events.find((e) => e.eventKey === eventId)).toMatchObject({
        outcome: 'processed',
        workflowId: dunningWorkflowId(tenant.id),
      });
      expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'processed', attempts: 2 });
      const status = await settledStatus(tenant.id, 1);
      expect(status.outstandingInvoices).toEqual([expect.objectContaining({ amountMinor: 6_100 })]);
      expect((await postStripe(payload)).json()).toEqual({ received: true, duplicate: true });
    });
  });

  // ---- Paystack ----

  describe('Paystack', () => {
    let paystackTenant: TestTenant;
    const reference = `ref-${unique()}`;
    let chargeFailed: string;

    async function postPaystack(payload: string, signature = signPaystackWebhook(payload, PAYSTACK_SECRET)) {
      const answer = await app.inject({
        method: 'POST',
        url: '/webhooks/paystack',
        headers: { 'content-type': 'application/json', 'x-paystack-signature': signature },
        payload,
      });
      await writes.settled();
      return answer;
    }

    const charge = (event: string, fields: Record<string, unknown>) =>
      JSON.stringify({
        event,
        data: {
          id: Number.parseInt(unique().slice(0, 8), 16),
          domain: 'test',
          reference,
          amount: 750_000,
          currency: 'NGN',
          metadata: '',
          customer: {
            id: 1,
            email: `billing@${paystackTenant.id}.test`,
            customer_code: `CUS_${paystackTenant.id}`,
          },
          created_at: new Date().toISOString(),
          ...fields,
        },
      });

    beforeAll(async () => {
      paystackTenant = await insertTenant(deps.pool, 'pro', {
        processor: 'paystack',
        paystackAuthorization: `AUTH_${unique()}`,
      });
      chargeFailed = charge('charge.failed', { status: 'failed', gateway_response: 'Declined' });
    });

    it('starts dunning from charge.failed with a valid HMAC-SHA512, the amount in kobo', async () => {
      const response = await postPaystack(chargeFailed);

      expect(response.statusCode).toBe(200);
      expect(response.json()).toMatchObject({
        status: 'processed',
        workflowId: dunningWorkflowId(paystackTenant.id),
      });
      const invoice = await ourInvoice('paystack', reference);
      expect(invoice).toMatchObject({ tenant_id: paystackTenant.id, total_minor: 750_000 });
      const status = await settledStatus(paystackTenant.id, 1);
      expect(status.processor).toBe('paystack');
      expect(status.outstandingInvoices).toEqual([
        { invoiceId: invoice!.id, amountMinor: 750_000, currency: 'NGN' },
      ]);
      expect(await eventRow('paystack', `charge.failed:${reference}`)).toMatchObject({
        status: 'processed',
        tenant_id: paystackTenant.id,
      });
    });

    it('refuses a wrong signature with 400', async () => {
      const forged = charge('charge.success', { status: 'success', paid_at: new Date().toISOString() });

      const wrongKey = await postPaystack(forged, signPaystackWebhook(forged, 'sk_test_not_ours'));
      const truncated = await postPaystack(forged, signPaystackWebhook(forged, PAYSTACK_SECRET).slice(0, 64));

      expect([wrongKey.statusCode, truncated.statusCode]).toEqual([400, 400]);
      expect(wrongKey.json().message).toMatch(/x-paystack-signature/);
      expect(await eventRow('paystack', `charge.success:${reference}`)).toBeUndefined();
    });

    it('answers a replayed charge.failed 200 duplicate with no second effect', async () => {
      const before = await settledStatus(paystackTenant.id, 1);

      const replay = await postPaystack(chargeFailed);

      expect(replay.statusCode).toBe(200);
      expect(replay.json()).toEqual({ received: true, duplicate: true });
      expect((await dunningHandle(paystackTenant.id).query(dunningStatusQuery)).timeline).toEqual(
        before.timeline,
      );
    });

    it('recovers on charge.success for the same reference', async () => {
      const success = charge('charge.success', { status: 'success', paid_at: new Date().toISOString() });

      const response = await postPaystack(success);

      expect(response.statusCode).toBe(200);
      expect((await dunningHandle(paystackTenant.id).result()).phase).toBe('recovered');
      expect((await ourInvoice('paystack', reference))?.status).toBe('paid');
    });
  });
});

async function metricValue<T extends string>(metric: Counter<T>, labels: Record<T, string>): Promise<number> {
  const { values } = await metric.get();
  const wanted = Object.entries(labels) as [T, string][];
  const found = values.find((v) => wanted.every(([name, value]) => v.labels[name] === value));
  return found?.value ?? 0;
}
