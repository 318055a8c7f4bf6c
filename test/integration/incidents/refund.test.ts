// The refund incident on the dev server against PostgreSQL, SMTP, stripe-mock and the Paystack-shaped server: seed 004
// "Refund Processing" end to end — eligibility, the provider's refund, the transaction, the subscription, the email —
// and refunds the providers report through the real webhook ingress.
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import Stripe from 'stripe';
import { startIncident } from '../../../temporal/incidents';
import { readCaughtMail, type CaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import type { IncidentStatus } from '../../../domain/incident';
import type { BillingTier } from '../../../domain/policy';
import type { RefundParams } from '../../../domain/refunds';
import {
  pauseSignal,
  recordRootCauseUpdate,
  resolveUpdate,
  resumeSignal,
} from '../../../workflows/definitions';
import { insertTenant, type TestTenant } from '../../support/dunningFixtures';
import { incidentInput, untilIncident } from '../../support/incidentFixtures';
import type { PaystackFake } from '../../support/paystackFake';
import { testEnv } from '../../support/testRuntime';
import { startProviderTestWorker, type ProviderTestWorker } from '../../support/testWorker';
import { startWebhookApp, type WebhookApp } from '../../support/webhookApp';

/** The incident's keys name its occurrence: the workflow id and the run that contains it. */
async function occurrence(handle: WorkflowHandle): Promise<string> {
  return `${handle.workflowId}/${(await handle.describe()).runId}`;
}

// light-my-request (behind app.inject) requires the ESM-only `cookie` 2, which Jest on Node 20 cannot load; these
// tests send no request cookies.
jest.mock('cookie', () => ({
  stringifySetCookie: () => {
    throw new Error('request cookies are not supported in this suite');
  },
}));

const STRIPE_WEBHOOK_SECRET = 'whsec_refund_test';
const unique = () => randomUUID().replace(/-/g, '').slice(0, 10);
const DAY_MS = 86_400_000;
/** The UTC date `days` ago, as refusals and emails show it. */
const dayOf = (days: number) => new Date(Date.now() - days * DAY_MS).toISOString().slice(0, 10);

const taskQueue = `refund-${unique()}`;
const stripeCalls: Stripe.RequestEvent[] = [];
let paystack: PaystackFake;
let worker: ProviderTestWorker;
let webhooks: WebhookApp;

beforeAll(async () => {
  worker = await startProviderTestWorker(taskQueue, {
    stripe: { secretKey: 'sk_test_refunds', onRequest: (event) => stripeCalls.push(event) },
  });
  ({ paystack } = worker);
  webhooks = await startWebhookApp(worker, taskQueue, {
    stripeWebhookSecret: STRIPE_WEBHOOK_SECRET,
    paystackSecret: paystack.secretKey,
  });
});

afterAll(async () => {
  await webhooks?.close();
  await worker?.stop();
});

jest.setTimeout(120_000);

const pool = () => worker.deps.pool;

async function payment(
  tenant: TestTenant,
  processor: 'stripe' | 'paystack',
  opts: { amountMinor: number; currency: string; paidDaysAgo: number; refundedMinor?: number },
): Promise<string> {
  const reference = processor === 'stripe' ? `pi_${unique()}` : `T${unique()}`;
  const refunded = opts.refundedMinor ?? null;
  await pool().query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, paid_at,
                                       created_at, refund_amount_minor, refunded_at, refund_reference)
     VALUES ($1, $2, $3, $4, $5, $6, now() - make_interval(days => $7), now() - make_interval(days => $7), $8,
             CASE WHEN $8::bigint IS NULL THEN NULL ELSE now() - interval '1 day' END,
             CASE WHEN $8::bigint IS NULL THEN NULL ELSE 'earlier-' || $3 END)`,
    [
      tenant.id,
      processor,
      reference,
      refunded === null ? 'success' : 'partially_refunded',
      opts.amountMinor,
      opts.currency,
      opts.paidDaysAgo,
      refunded,
    ],
  );
  if (processor === 'paystack') {
    paystack.addTransaction({
      reference,
      amount: opts.amountMinor,
      currency: opts.currency,
      createdAt: new Date(Date.now() - opts.paidDaysAgo * DAY_MS),
    });
  }
  return reference;
}

async function subscription(
  tenant: TestTenant,
  tier: BillingTier,
  processor: 'stripe' | 'paystack',
  opts: { stripeSubscriptionId?: string } = {},
): Promise<void> {
  await pool().query(
    `INSERT INTO subscriptions (tenant_id, tier, status, billing_cycle, current_period_start, current_period_end,
                                processor, stripe_subscription_id)
     VALUES ($1, $2, 'active', 'monthly', now() - interval '5 days', now() + interval '25 days', $3, $4)`,
    [tenant.id, tier, processor, opts.stripeSubscriptionId ?? null],
  );
}

function refund(
  tenant: TestTenant,
  params: Omit<RefundParams, 'tenantId'>,
  key = `${tenant.id}-${unique()}`,
) {
  return startIncident(
    worker.client,
    taskQueue,
    incidentInput('refund', { tenantId: tenant.id, ...params }, { key, tenantIds: [tenant.id] }),
  );
}

/** Resolved and written up; the root cause recorded so the workflow ends now rather than in 48 hours. */
async function closed(handle: WorkflowHandle): Promise<IncidentStatus> {
  await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
  await handle.executeUpdate(recordRootCauseUpdate, {
    args: [{ operator: 'ada', summary: 'customer request' }],
  });
  const outcome = (await handle.result()) as { status: IncidentStatus };
  return outcome.status;
}

/** The caught mail to this address with this subject, once `count` have arrived. */
async function mailTo(address: string, subject: string, count = 1): Promise<CaughtMail[]> {
  let found: CaughtMail[] = [];
  for (let i = 0; i < 100 && found.length < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    found = readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(address) && m.subject === subject);
  }
  return found;
}

async function transaction(reference: string) {
  const { rows } = await pool().query<{
    status: string;
    refund_reference: string | null;
    refund_amount_minor: number | null;
    refunded_at: Date | null;
  }>(
    'SELECT status, refund_reference, refund_amount_minor, refunded_at FROM payment_transactions WHERE reference = $1',
    [reference],
  );
  return rows[0];
}

async function decisionLine(workflowId: string) {
  const { rows } = await pool().query<{ line: string }>('SELECT line FROM decisions WHERE workflow_id = $1', [
    workflowId,
  ]);
  expect(rows).toHaveLength(1);
  return parseDecisionLine(rows[0]!.line);
}

describe('refund incident', () => {
  it('Paystack: a full refund within 30 days goes through POST /refund in kobo; the transaction refunded, the subscription cancels at period end, the customer emailed', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'paystack' });
    await subscription(tenant, 'pro', 'paystack');
    const reference = await payment(tenant, 'paystack', {
      amountMinor: 15_000_000,
      currency: 'NGN',
      paidDaysAgo: 10,
    });

    const handle = await refund(tenant, {
      reference,
      reason: 'Customer requested refund',
      subscriptionChange: 'cancel_at_period_end',
    });
    const status = await closed(handle);

    // The provider call: one refund of the whole payment, an integer in kobo, with our key in the merchant note.
    const posts = paystack.requests().filter((r) => r.method === 'POST' && r.path === '/refund');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.authorization).toBe(`Bearer ${paystack.secretKey}`);
    expect(JSON.parse(posts[0]!.rawBody)).toMatchObject({ transaction: reference, amount: 15_000_000 });
    expect(posts[0]!.rawBody).toContain('"amount":15000000');
    const [recorded] = paystack.refunds().filter((r) => r.reference === reference);
    expect(recorded).toMatchObject({
      amount: 15_000_000,
      merchantNote: `billops ${await occurrence(handle)}/refund`,
    });

    // The transaction: status, refund reference, amount in minor units, time; and the refund row.
    const tx = await transaction(reference);
    expect(tx).toMatchObject({
      status: 'refunded',
      refund_reference: String(recorded!.id),
      refund_amount_minor: 15_000_000,
    });
    expect(tx!.refunded_at).toBeInstanceOf(Date);
    const { rows: credits } = await pool().query(
      `SELECT kind, amount_minor, currency, processor, processor_reference, workflow_id FROM credits_adjustments
        WHERE tenant_id = $1`,
      [tenant.id],
    );
    expect(credits).toEqual([
      {
        kind: 'refund',
        amount_minor: 15_000_000,
        currency: 'NGN',
        processor: 'paystack',
        processor_reference: String(recorded!.id),
        workflow_id: handle.workflowId,
      },
    ]);

    // The subscription: cancels at the end of its period, with the reason.
    const { rows: subs } = await pool().query(
      'SELECT status, tier, cancel_at_period_end, cancellation_reason FROM subscriptions WHERE tenant_id = $1',
      [tenant.id],
    );
    expect(subs).toEqual([
      {
        status: 'active',
        tier: 'pro',
        cancel_at_period_end: true,
        cancellation_reason: 'Customer requested refund',
      },
    ]);

    // The customer's email.
    const [mail] = await mailTo(tenant.billingEmail, `Refund Processed - Account #${tenant.id}`);
    expect(mail!.text).toContain(`We have refunded NGN 150000.00 of payment ${reference}.`);
    expect(mail!.text).toContain('Your subscription: it ends at the close of the current period');

    // The incident: resolved by billops, the revenue impact in the report, the DECISIONS.log line.
    expect(status.resolution).toMatchObject({ by: 'billops' });
    expect(status.resolution!.summary).toMatch(
      new RegExp(`^refunded NGN 150000.00 of ${reference} \\(paystack `),
    );
    expect(status.stepsDone.map((s) => s.name)).toEqual([
      'verify the original transaction',
      'check refund eligibility',
      'refund through paystack',
      'update the transaction',
      'adjust the subscription',
      'email the refund confirmation',
    ]);
    expect(await decisionLine(handle.workflowId)).toMatchObject({
      operator: 'billops',
      incidentType: 'refund',
      tenants: 1,
      impact: 'revenue: NGN 150000.00 refunded',
      credits: null,
    });
    const { rows: incident } = await pool().query<{ report_md: string }>(
      'SELECT report_md FROM incidents WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(incident[0]!.report_md).toContain('NGN 150000.00 potential revenue impact');
  });

  it("Stripe: a partial refund through refunds.create under the incident's Idempotency-Key; partially refunded; enterprise downgraded to pro", async () => {
    const tenant = await insertTenant(pool(), 'enterprise', { processor: 'stripe' });
    await subscription(tenant, 'enterprise', 'stripe');
    const reference = await payment(tenant, 'stripe', {
      amountMinor: 100_000,
      currency: 'USD',
      paidDaysAgo: 3,
    });
    const before = stripeCalls.length;

    const handle = await refund(tenant, {
      reference,
      amountMinor: 25_000,
      reason: 'Downgrade to Pro mid-period',
      subscriptionChange: 'downgrade',
      downgradeTo: 'pro',
    });
    const status = await closed(handle);

    const calls = stripeCalls.slice(before).filter((c) => c.method === 'POST');
    expect(calls.map((c) => [c.path, c.idempotency_key])).toEqual([
      ['/v1/refunds', `${await occurrence(handle)}/refund`],
    ]);
    const tx = await transaction(reference);
    expect(tx).toMatchObject({ status: 'partially_refunded', refund_amount_minor: 25_000 });
    expect(tx!.refund_reference).toMatch(/^re_/);
    const { rows } = await pool().query<{
      tenant_tier: string;
      sub_tier: string;
      cancel_at_period_end: boolean;
    }>(
      `SELECT t.tier AS tenant_tier, s.tier AS sub_tier, s.cancel_at_period_end
         FROM tenants t JOIN subscriptions s ON s.tenant_id = t.id WHERE t.id = $1`,
      [tenant.id],
    );
    expect(rows).toEqual([{ tenant_tier: 'pro', sub_tier: 'pro', cancel_at_period_end: false }]);
    const [mail] = await mailTo(tenant.billingEmail, `Refund Processed - Account #${tenant.id}`);
    expect(mail!.text).toContain(`We have refunded USD 250.00 of payment ${reference}.`);
    expect(mail!.text).toContain('Your subscription: moved from enterprise to pro.');
    expect(status.stepsDone.find((s) => s.name === 'check refund eligibility')?.detail).toBe(
      'eligible: USD 250.00 (partial)',
    );
  });

  it('Stripe: cancel at period end is also set on the Stripe subscription, under its own key', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'stripe' });
    const stripeSubscription = `sub_${unique()}`;
    await subscription(tenant, 'pro', 'stripe', { stripeSubscriptionId: stripeSubscription });
    const reference = `ch_${unique()}`;
    await pool().query(
      `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, paid_at)
       VALUES ($1, 'stripe', $2, 'success', 4900, 'USD', now() - interval '1 day')`,
      [tenant.id, reference],
    );
    const before = stripeCalls.length;

    const handle = await refund(tenant, {
      reference,
      reason: 'Not using it',
      subscriptionChange: 'cancel_at_period_end',
    });
    const status = await closed(handle);

    expect(
      stripeCalls
        .slice(before)
        .filter((c) => c.method === 'POST')
        .map((c) => [c.path, c.idempotency_key]),
    ).toEqual([
      ['/v1/refunds', `${await occurrence(handle)}/refund`],
      [`/v1/subscriptions/${stripeSubscription}`, `${await occurrence(handle)}/adjust-subscription`],
    ]);
    expect(status.stepsDone.find((s) => s.name === 'adjust the subscription')?.detail).toMatch(
      new RegExp(`; Stripe subscription ${stripeSubscription} set to cancel at period end$`),
    );
    expect(await transaction(reference)).toMatchObject({ status: 'refunded', refund_amount_minor: 4900 });
  });

  it("a refund the provider cannot make waits for an operator: billops' own Stripe invoice payment whose invoice lists no paid PaymentIntent", async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'stripe' });
    await subscription(tenant, 'pro', 'stripe');
    const stripeInvoice = `in_${unique()}`;
    const reference = `dunning-${tenant.id}-retry-1-${unique()}`;
    await pool().query(
      `WITH invoice AS (
         INSERT INTO invoices (tenant_id, processor, processor_invoice_id, period_start, period_end, status,
                               subtotal_minor, total_minor, amount_paid_minor, currency, paid_at)
         VALUES ($1, 'stripe', $2, now() - interval '1 month', now(), 'paid', 4900, 4900, 4900, 'USD', now())
         RETURNING id)
       INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency,
                                         paid_at)
       SELECT $1, id, 'stripe', $3, 'success', 4900, 'USD', now() FROM invoice`,
      [tenant.id, stripeInvoice, reference],
    );
    const before = stripeCalls.length;

    const handle = await refund(tenant, {
      reference,
      reason: 'Customer requested refund',
      subscriptionChange: 'none',
    });
    const waiting = await untilIncident(
      handle,
      (s) => s.currentStep === 'waiting for an operator to resolve',
      'waiting',
    );

    expect(stripeCalls.slice(before).map((c) => `${c.method} ${c.path}`)).toEqual([
      `GET /v1/invoice_payments?invoice=${stripeInvoice}&status=paid&limit=10`,
    ]);
    expect(waiting.timeline.filter((e) => e.event === 'skipped').map((e) => e.detail)).toEqual([
      `update the transaction: Stripe lists no paid PaymentIntent or charge for invoice ${stripeInvoice}; ` +
        'refund by hand, then resolve the incident',
    ]);
    await handle.executeUpdate(resolveUpdate, {
      args: [{ operator: 'ada', summary: 'refunded by hand in the Stripe dashboard' }],
    });
    const status = await closed(handle);

    expect(status.resolution).toMatchObject({ by: 'ada' });
    expect(await transaction(reference)).toMatchObject({ status: 'success', refund_amount_minor: null });
    expect(await decisionLine(handle.workflowId)).toMatchObject({
      operator: 'ada',
      impact: 'not refunded by billops',
      executor: 'ada',
    });
  });

  it('refuses with the reason by email and asks no provider: a payment 31 days old, a payment refunded once before', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'paystack' });
    await subscription(tenant, 'pro', 'paystack');
    const old = await payment(tenant, 'paystack', { amountMinor: 500_000, currency: 'NGN', paidDaysAgo: 31 });
    const again = await payment(tenant, 'paystack', {
      amountMinor: 500_000,
      currency: 'NGN',
      paidDaysAgo: 5,
      refundedMinor: 100_000,
    });

    const [first, second] = await Promise.all([
      refund(tenant, { reference: old, reason: 'late request', subscriptionChange: 'cancel_at_period_end' }),
      refund(tenant, { reference: again, reason: 'second request', subscriptionChange: 'none' }),
    ]);
    const [firstStatus, secondStatus] = await Promise.all([closed(first), closed(second)]);

    expect(firstStatus.resolution?.summary).toBe(
      `refund of ${old} refused: payment is 31 days old; refunds are allowed within 30 days`,
    );
    expect(secondStatus.resolution?.summary).toBe(
      `refund of ${again} refused: the payment was already refunded (NGN 1000.00 on ${dayOf(1)}); ` +
        'only one refund per payment is allowed',
    );
    const mails = await mailTo(tenant.billingEmail, `Refund Request - Account #${tenant.id}`, 2);
    expect(mails.map((m) => m.text.split('\n')[0]).sort()).toEqual(
      [
        `We could not refund payment ${old}: payment is 31 days old; refunds are allowed within 30 days.`,
        `We could not refund payment ${again}: the payment was already refunded (NGN 1000.00 on ${dayOf(1)}); only one refund per payment is allowed.`,
      ].sort(),
    );
    expect(paystack.refunds().filter((r) => r.reference === old || r.reference === again)).toEqual([]);
    expect(await transaction(old)).toMatchObject({ status: 'success', refund_amount_minor: null });
    expect(await transaction(again)).toMatchObject({
      status: 'partially_refunded',
      refund_amount_minor: 100_000,
    });
    const { rows: subs } = await pool().query(
      'SELECT cancel_at_period_end FROM subscriptions WHERE tenant_id = $1',
      [tenant.id],
    );
    expect(subs).toEqual([{ cancel_at_period_end: false }]);
    expect(await decisionLine(first.workflowId)).toMatchObject({
      operator: 'billops',
      impact: 'none: no refund issued',
    });
  });

  it('Paystack keeps no idempotency key: a retry finds the refund an earlier attempt made (by its merchant note) and refunds nothing twice', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'paystack' });
    await subscription(tenant, 'pro', 'paystack');
    const reference = await payment(tenant, 'paystack', {
      amountMinor: 800_000,
      currency: 'NGN',
      paidDaysAgo: 2,
    });
    const key = `${tenant.id}-lost-answer`;
    // Paused from its first task, so the earlier attempt can be staged under this occurrence's key before its step.
    const handle = await worker.client.workflow.signalWithStart('refundWorkflow', {
      workflowId: `incident-refund-${key}`,
      taskQueue,
      args: [
        incidentInput(
          'refund',
          { tenantId: tenant.id, reference, reason: 'duplicate charge', subscriptionChange: 'none' },
          { key, tenantIds: [tenant.id] },
        ),
      ],
      signal: pauseSignal,
      signalArgs: [{ operator: 'test', reason: 'stage the earlier attempt' }],
    });
    // An earlier attempt reached Paystack but its answer was lost; the next request (the workflow's first) fails.
    const earlier = await fetch(`${paystack.url}/refund`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${paystack.secretKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        transaction: reference,
        amount: 800_000,
        merchant_note: `billops ${await occurrence(handle)}/refund`,
      }),
    });
    const earlierId = ((await earlier.json()) as { data: { id: number } }).data.id;
    const before = paystack.requests().length;
    paystack.failNext(1, 503);
    await handle.signal(resumeSignal, { operator: 'test' });
    const status = await closed(handle);

    expect(paystack.refunds().filter((r) => r.reference === reference)).toHaveLength(1);
    expect(
      paystack
        .requests()
        .slice(before)
        .map((r) => `${r.method} ${r.path.replace(/\?.*$/, '')} ${r.status}`),
    ).toEqual(['POST /refund 503', `GET /transaction/verify/${reference} 200`, 'GET /refund 200']);
    expect(await transaction(reference)).toMatchObject({
      status: 'refunded',
      refund_reference: String(earlierId),
    });
    expect(status.stepsDone.find((s) => s.name === 'refund through paystack')?.detail).toMatch(
      /\(an earlier attempt\)$/,
    );
  });
});

describe('refunds the providers report, through the webhook ingress', () => {
  it('a Paystack refund.processed made in the dashboard opens a refund incident that records it without asking Paystack again', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'paystack' });
    await subscription(tenant, 'pro', 'paystack');
    const reference = await payment(tenant, 'paystack', {
      amountMinor: 300_000,
      currency: 'NGN',
      paidDaysAgo: 4,
    });
    const refundId = 700_000_000 + Math.floor(Math.random() * 1_000_000);
    const body = JSON.stringify({
      event: 'refund.processed',
      data: {
        id: refundId,
        status: 'processed',
        transaction_reference: reference,
        amount: '300000',
        currency: 'NGN',
        merchant_note: 'refunded from the dashboard',
        metadata: { tenant_id: tenant.id },
      },
    });
    const postsBefore = paystack.requests().filter((r) => r.method === 'POST').length;

    const answer = await webhooks.deliverPaystack(body);

    expect(answer.statusCode).toBe(200);
    const workflowId = `incident-refund-paystack-${refundId}`;
    expect(answer.json()).toEqual({ received: true, status: 'processed', workflowId });
    const status = await closed(worker.client.workflow.getHandle(workflowId));
    expect(await transaction(reference)).toMatchObject({
      status: 'refunded',
      refund_reference: String(refundId),
      refund_amount_minor: 300_000,
    });
    expect(paystack.requests().filter((r) => r.method === 'POST')).toHaveLength(postsBefore);
    const [mail] = await mailTo(tenant.billingEmail, `Refund Processed - Account #${tenant.id}`);
    expect(mail!.text).toContain(`We have refunded NGN 3000.00 of payment ${reference}.`);
    expect(status.resolution?.summary).toBe(
      `paystack refunded NGN 3000.00 of ${reference} (${refundId}); recorded`,
    );
    expect(status.source).toBe('webhook');
  });

  it("billops' own Stripe refund coming back (refund.created with its workflow id) opens nothing", async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'stripe' });
    const refundId = `re_${unique()}`;
    const body = JSON.stringify({
      id: `evt_${unique()}`,
      object: 'event',
      type: 'refund.created',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          object: 'refund',
          id: refundId,
          amount: 4900,
          currency: 'usd',
          status: 'succeeded',
          payment_intent: `pi_${unique()}`,
          metadata: { tenant_id: tenant.id, billops_workflow_id: 'incident-refund-earlier' },
        },
      },
    });
    const answer = await webhooks.deliverStripe(body);

    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({
      received: true,
      status: 'stored_for_incident',
      reason: `refund ${refundId} is billops' own or already recorded`,
    });
    await expect(
      worker.client.workflow.getHandle(`incident-refund-stripe-${refundId}`).describe(),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });
});
