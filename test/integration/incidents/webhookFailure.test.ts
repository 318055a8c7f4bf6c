// The webhook-failure incident against the dev server, PostgreSQL, stripe-mock, the Paystack-shaped fake and the real
// webhook routes: a failed stored event replayed (dunning started once), a missed Paystack success found by verify and
// applied once (its late delivery a duplicate), rejected signatures counted and raised; and a Stripe event our endpoint
// never stored, found in the provider's event list and applied once.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import Stripe from 'stripe';
import { createStripeGateway } from '../../../drivers/stripe';
import {
  createWebhookRecoveryActivities,
  type ReconcileResult,
} from '../../../activities/incidents/webhookFailure';
import { dunningWorkflowId } from '../../../temporal/dunning';
import { startIncident } from '../../../temporal/incidents';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import type { IncidentStatus } from '../../../domain/incident';
import { defaultPolicy } from '../../../domain/policy';
import type { WorkerDependencies } from '../../../workers/dependencies';
import { insertOpenInvoice, insertTenant } from '../../support/dunningFixtures';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import type { PaystackFake } from '../../support/paystackFake';
import { privateDatabase, type PrivateDatabase } from '../../support/privateDatabase';
import { testEnv } from '../../support/testRuntime';
import { startProviderTestWorker, type ProviderTestWorker } from '../../support/testWorker';
import { startWebhookApp, type WebhookApp } from '../../support/webhookApp';
import { TEST_PORTAL_URL } from '../../support/workerDeps';

// light-my-request (behind app.inject) requires the ESM-only `cookie` 2, which Jest on Node 20 cannot load; it is only
// used to send request cookies, which these tests never do.
jest.mock('cookie', () => ({
  stringifySetCookie: () => {
    throw new Error('request cookies are not supported in this suite');
  },
}));

const STRIPE_WEBHOOK_SECRET = 'whsec_webhook_incident_test';
const unique = () => randomUUID().replace(/-/g, '').slice(0, 12);
const nowSeconds = () => Math.floor(Date.now() / 1000);

jest.setTimeout(180_000);

describe('webhook failure incident', () => {
  const taskQueue = `webhook-incident-${unique()}`;
  // A database of its own: the incident replays every failed event in its window, so no other suite's rows may be there.
  let database: PrivateDatabase;
  let worker: ProviderTestWorker;
  let deps: WorkerDependencies;
  let client: Client;
  let paystack: PaystackFake;
  let receivers: IncidentReceivers;
  let webhooks: WebhookApp;
  const stripeCalls: string[] = [];
  const workflowIds = new Set<string>();

  beforeAll(async () => {
    database = await privateDatabase('whint');
    receivers = await startIncidentReceivers();
    worker = await startProviderTestWorker(taskQueue, {
      databaseUrl: database.url,
      stripe: {
        secretKey: 'sk_test_webhookIncident',
        onRequest: (e) => stripeCalls.push(`${e.method} ${e.path}`),
      },
      incidents: receivers.incidents,
      clientForActivities: true,
    });
    ({ deps, client, paystack } = worker);
    webhooks = await startWebhookApp(worker, taskQueue, {
      stripeWebhookSecret: STRIPE_WEBHOOK_SECRET,
      paystackSecret: paystack.secretKey,
    });
  });

  afterAll(async () => {
    for (const workflowId of workflowIds) {
      await client?.workflow
        .getHandle(workflowId)
        .terminate('webhook incident test done')
        .catch(() => undefined);
    }
    await webhooks?.close();
    await worker?.stop();
    await receivers?.close();
    await database?.drop();
  });

  function stripeFailedInvoiceEvent(eventId: string, tenantId: string, created = nowSeconds() - 7200) {
    const start = nowSeconds() - 30 * 86_400;
    return {
      id: eventId,
      object: 'event',
      type: 'invoice.payment_failed',
      created,
      data: {
        object: {
          id: `in_${unique()}`,
          object: 'invoice',
          customer: `cus_${unique()}`,
          metadata: { tenant_id: tenantId },
          amount_due: 4900,
          currency: 'usd',
          status: 'open',
          period_start: start,
          period_end: start + 30 * 86_400,
        },
      },
    };
  }

  async function eventRow(provider: string, key: string) {
    const { rows } = await deps.pool.query<{ status: string; attempts: number; tenant_id: string | null }>(
      'SELECT status, attempts, tenant_id FROM webhook_events WHERE provider = $1 AND event_key = $2',
      [provider, key],
    );
    return rows[0];
  }

  /** Runs of the tenant's dunning workflow the dev server has seen: one lifecycle, started once. */
  async function dunningRuns(tenantId: string): Promise<number> {
    const workflowId = dunningWorkflowId(tenantId);
    workflowIds.add(workflowId);
    let runs = 0;
    // Visibility trails the start by a moment on the dev server.
    for (let i = 0; i < 50 && runs === 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      for await (const _ of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs++;
    }
    return runs;
  }

  const until = (workflowId: string, done: (s: IncidentStatus) => boolean, what: string) =>
    untilIncident(client.workflow.getHandle(workflowId), done, what);

  it('replays a failed event (dunning starts once), applies a missed Paystack success once, raises rejected signatures', async () => {
    // A Stripe invoice.payment_failed the ingress stored 2 h ago but could not act on (Temporal was down).
    const stripeTenant = await insertTenant(deps.pool, 'pro');
    const failedEventId = `evt_${unique()}`;
    await deps.pool.query(
      `INSERT INTO webhook_events (provider, event_key, event_type, payload, signature_valid, status, attempts, error,
                                   received_at)
       VALUES ('stripe', $1, 'invoice.payment_failed', $2::jsonb, true, 'failed', 1,
               'Error: Temporal did not answer within 10 s', now() - interval '2 hours')`,
      [failedEventId, JSON.stringify(stripeFailedInvoiceEvent(failedEventId, stripeTenant.id))],
    );

    // A Paystack charge the customer completed (OTP) whose charge.success webhook never arrived: pending in our table.
    const paystackTenant = await insertTenant(deps.pool, 'pro', { processor: 'paystack' });
    const invoice = await insertOpenInvoice(deps.pool, paystackTenant.id, { processor: 'paystack' });
    const reference = `billops-retry-${unique()}`;
    await deps.pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency,
                                         created_at)
       VALUES ($1, $2, 'paystack', $3, 'pending', $4, 'USD', now() - interval '30 minutes')`,
      [paystackTenant.id, invoice.invoiceId, reference, invoice.amountMinor],
    );
    const paidAt = new Date(Date.now() - 20 * 60_000);
    paystack.addTransaction({
      reference,
      amount: invoice.amountMinor,
      currency: 'USD',
      status: 'success',
      createdAt: new Date(Date.now() - 30 * 60_000),
      paidAt,
      metadata: { tenant_id: paystackTenant.id, invoice_id: invoice.invoiceId },
    });

    // Two deliveries signed with the wrong secret, refused by the real routes and recorded.
    const forged = JSON.stringify(stripeFailedInvoiceEvent(`evt_${unique()}`, stripeTenant.id, nowSeconds()));
    const badStripe = await webhooks.deliverStripe(
      forged,
      Stripe.webhooks.generateTestHeaderString({ payload: forged, secret: 'whsec_not_ours' }),
    );
    expect(badStripe.statusCode).toBe(400);
    const badPaystack = await webhooks.deliverPaystack(
      '{"event":"charge.success","data":{"reference":"x"}}',
      'f'.repeat(128),
    );
    expect(badPaystack.statusCode).toBe(400);

    const handle = await startIncident(
      client,
      taskQueue,
      incidentInput(
        'webhook_failure',
        {},
        { key: `fp-${unique()}`, source: 'alertmanager', openedBy: 'alertmanager' },
      ),
    );
    workflowIds.add(handle.workflowId);
    const status = await until(
      handle.workflowId,
      (s) => s.currentStep === 'waiting for the root-cause analysis',
      'resolved and closing',
    );
    expect(status.stepsDone.map((d) => [d.name, d.detail])).toEqual([
      ['count signature failures in the last 24 hours', '2 rejected (Stripe 1, Paystack 1)'],
      ['raise signature failures', expect.stringMatching(/^paged On-call Engineer: 2 rejected, last at /)],
      [
        'replay failed events from their stored raw bodies',
        '1 applied, 0 still failing, 0 older than 7 days, 0 taken by a delivery',
      ],
      // stripe-mock answers a fixture event from 2009, outside the window: nothing to apply, but Stripe was asked.
      [
        'reconcile with Stripe: events our endpoint never stored',
        '1 checked, 0 missed and applied, 0 missed and failing',
      ],
      [
        'reconcile with Paystack: verify pending transactions',
        '1 checked, 1 missed and applied, 0 missed and failing',
      ],
      ['post to the status page', 'posted'],
      ['confirm recovered payments to customers', '1 confirmed'],
    ]);
    expect(status.resolution).toMatchObject({
      by: 'billops',
      summary:
        'no webhook event fails any more: 2 events applied (1 missed at the provider), 2 signatures rejected',
    });
    expect(status.tenantsAffected).toBe(2);
    expect(stripeCalls).toEqual(
      expect.arrayContaining([expect.stringMatching(/^GET \/v1\/events\?created\[gte\]=/)]),
    );
    expect(paystack.requests().map((r) => r.path)).toEqual(
      expect.arrayContaining([
        `/transaction/verify/${reference}`,
        expect.stringMatching(/^\/transaction\?status=success&from=/),
      ]),
    );

    // The replayed event started the tenant's dunning once; its row is processed on its second attempt.
    expect(await eventRow('stripe', failedEventId)).toEqual({
      status: 'processed',
      attempts: 2,
      tenant_id: stripeTenant.id,
    });
    expect(await dunningRuns(stripeTenant.id)).toBe(1);

    // The missed success: stored under the key the real delivery has, the invoice and the transaction settled.
    const key = `charge.success:${reference}`;
    expect(await eventRow('paystack', key)).toEqual({
      status: 'processed',
      attempts: 1,
      tenant_id: paystackTenant.id,
    });
    const { rows: settled } = await deps.pool.query<{ invoice: string; paid_at: Date; tx: string }>(
      `SELECT i.status AS invoice, i.paid_at, t.status AS tx FROM invoices i
         JOIN payment_transactions t ON t.invoice_id = i.id WHERE i.id = $1`,
      [invoice.invoiceId],
    );
    expect(settled).toEqual([{ invoice: 'paid', paid_at: paidAt, tx: 'success' }]);

    // Paystack's late delivery of the same charge.success is a duplicate: nothing happens a second time.
    const late = await webhooks.deliverPaystack(
      JSON.stringify({
        event: 'charge.success',
        data: {
          reference,
          amount: invoice.amountMinor,
          currency: 'USD',
          status: 'success',
          paid_at: new Date().toISOString(),
          metadata: { tenant_id: paystackTenant.id, invoice_id: invoice.invoiceId },
        },
      }),
    );
    expect(late.statusCode).toBe(200);
    expect(late.json()).toEqual({ received: true, duplicate: true });
    expect(await eventRow('paystack', key)).toMatchObject({ status: 'processed', attempts: 1 });
    const { rows: paidAgain } = await deps.pool.query<{ paid_at: Date }>(
      'SELECT paid_at FROM invoices WHERE id = $1',
      [invoice.invoiceId],
    );
    expect(paidAgain[0]?.paid_at).toEqual(paidAt);

    // The customer hears once; the responders were paged about the signatures; the decision is on record.
    const confirmations = readCaughtMail(testEnv('mailDir')).filter((m) =>
      m.to.includes(paystackTenant.billingEmail),
    );
    expect(confirmations.map((m) => m.subject)).toEqual([
      `Payment Confirmed - Account #${paystackTenant.id}`,
    ]);
    expect(confirmations[0]?.text).toContain(`We confirm your payment ${reference} of USD 49.00.`);
    expect(
      receivers
        .pagerDutyEvents(handle.workflowId)
        .map((e) => (e.payload as { summary?: string } | undefined)?.summary ?? '')
        .filter((s) => s.includes('signature verification')),
    ).toHaveLength(1);
    const { rows: decisions } = await deps.pool.query<{ line: string }>(
      'SELECT line FROM decisions WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(parseDecisionLine(decisions[0]!.line)).toMatchObject({
      operator: 'billops',
      incidentType: 'webhook_failure',
      tenants: 2,
      executor: 'billops',
    });
    const { rows: incidents } = await deps.pool.query<{ status: string; tenants_affected: number }>(
      'SELECT status, tenants_affected FROM incidents WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(incidents[0]).toEqual({ status: 'resolved', tenants_affected: 2 });
  });

  it('a Stripe event our endpoint never stored is found in the event list and applied once; its late delivery is a duplicate', async () => {
    const tenant = await insertTenant(deps.pool, 'pro');
    const eventId = `evt_${unique()}`;
    const event = stripeFailedInvoiceEvent(eventId, tenant.id, nowSeconds() - 600);
    // Stripe's GET /v1/events as far as the SDK's list needs it (stripe-mock only answers a fixed fixture).
    const queries: URLSearchParams[] = [];
    const stub: Server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://stripe.invalid');
      queries.push(url.searchParams);
      res.writeHead(url.pathname === '/v1/events' ? 200 : 404, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', url: '/v1/events', has_more: false, data: [event] }));
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    try {
      const activities = createWebhookRecoveryActivities({
        pool: deps.pool,
        stripe: createStripeGateway({
          secretKey: 'sk_test_eventList',
          apiBase: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
        }),
        temporalClient: client,
        billingPortalUrl: TEST_PORTAL_URL,
      });
      const since = new Date(Date.now() - 3_600_000).toISOString();
      const run = async (): Promise<ReconcileResult> =>
        (await new MockActivityEnvironment({ taskQueue }).run(activities.reconcileStripeEvents, {
          since,
          policy: defaultPolicy,
        })) as ReconcileResult;

      const found = await run();
      expect(found.applied).toEqual([
        expect.objectContaining({
          eventKey: eventId,
          eventType: 'invoice.payment_failed',
          outcome: 'processed',
          tenantId: tenant.id,
          workflowId: dunningWorkflowId(tenant.id),
        }),
      ]);
      expect(queries[0]?.get('types[0]')).toBe('invoice.payment_failed');
      expect(queries[0]?.get('created[gte]')).toBe(String(Math.floor(Date.parse(since) / 1000)));
      expect(await eventRow('stripe', eventId)).toEqual({
        status: 'processed',
        attempts: 1,
        tenant_id: tenant.id,
      });

      // Asked again, the event is known: nothing is applied twice.
      expect((await run()).applied).toEqual([]);
      // Stripe's own retry of the delivery arrives later: a duplicate.
      const body = JSON.stringify(event);
      const late = await webhooks.deliverStripe(
        body,
        Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_WEBHOOK_SECRET }),
      );
      expect(late.json()).toEqual({ received: true, duplicate: true });
      expect(await eventRow('stripe', eventId)).toMatchObject({ status: 'processed', attempts: 1 });
      expect(await dunningRuns(tenant.id)).toBe(1);
    } finally {
      await new Promise<void>((resolve) => stub.close(() => resolve()));
    }
  });
});
