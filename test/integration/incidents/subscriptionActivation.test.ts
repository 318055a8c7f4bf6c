// The subscription activation incident on the dev server against PostgreSQL, SMTP, stripe-mock and the Paystack-shaped
// server: seed 004 "Subscription Issues" — payment confirmed but the subscription inactive → activated on the right
// tier and period (the trial cleared), the tenant's tier to match, the customer emailed; also through the ingress.
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { startIncident } from '../../../temporal/incidents';
import { readCaughtMail, type CaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import type { IncidentStatus } from '../../../domain/incident';
import type { ActivationParams } from '../../../domain/subscriptionActivation';
import { recordRootCauseUpdate } from '../../../workflows/definitions';
import { insertTenant, type TestTenant } from '../../support/dunningFixtures';
import { incidentInput, untilIncident } from '../../support/incidentFixtures';
import type { PaystackFake } from '../../support/paystackFake';
import { testEnv } from '../../support/testRuntime';
import { startProviderTestWorker, type ProviderTestWorker } from '../../support/testWorker';
import { startWebhookApp, type WebhookApp } from '../../support/webhookApp';

// light-my-request (behind app.inject) requires the ESM-only `cookie` 2, which Jest on Node 20 cannot load; these
// tests send no request cookies.
jest.mock('cookie', () => ({
  stringifySetCookie: () => {
    throw new Error('request cookies are not supported in this suite');
  },
}));

const STRIPE_WEBHOOK_SECRET = 'whsec_activation_test';
const unique = () => randomUUID().replace(/-/g, '').slice(0, 10);
const taskQueue = `activation-${unique()}`;
let paystack: PaystackFake;
let worker: ProviderTestWorker;
let webhooks: WebhookApp;

beforeAll(async () => {
  worker = await startProviderTestWorker(taskQueue, { stripe: { secretKey: 'sk_test_activation' } });
  ({ paystack } = worker);
  webhooks = await startWebhookApp(worker, taskQueue, { stripeWebhookSecret: STRIPE_WEBHOOK_SECRET });
});

afterAll(async () => {
  await webhooks?.close();
  await worker?.stop();
});

jest.setTimeout(120_000);

const pool = () => worker.deps.pool;

/** Today at 00:00 UTC, and the same day `months` later (the last day of a shorter month, as PostgreSQL does). */
function periodFromToday(months: number): { start: string; end: string } {
  const now = new Date();
  const [y, m, d] = [now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()];
  const lastDay = new Date(Date.UTC(y, m + months + 1, 0)).getUTCDate();
  return {
    start: new Date(Date.UTC(y, m, d)).toISOString(),
    end: new Date(Date.UTC(y, m + months, Math.min(d, lastDay))).toISOString(),
  };
}

async function trialingSubscription(tenant: TestTenant, processor: 'stripe' | 'paystack'): Promise<void> {
  await pool().query(
    `INSERT INTO subscriptions (tenant_id, tier, status, billing_cycle, current_period_start, current_period_end,
                                trial_ends_at, processor)
     VALUES ($1, $2, 'trialing', 'monthly', now() - interval '12 days', now() + interval '2 days',
             now() + interval '2 days', $3)`,
    [tenant.id, tenant.tier, processor],
  );
}

function activate(tenant: TestTenant, params: Omit<ActivationParams, 'tenantId'>) {
  return startIncident(
    worker.client,
    taskQueue,
    incidentInput(
      'subscription_activation_failure',
      { tenantId: tenant.id, ...params },
      { key: `${tenant.id}-${params.reference}`, tenantIds: [tenant.id] },
    ),
  );
}

async function closed(handle: WorkflowHandle): Promise<IncidentStatus> {
  await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
  await handle.executeUpdate(recordRootCauseUpdate, { args: [{ operator: 'ada', summary: 'webhook lost' }] });
  return ((await handle.result()) as { status: IncidentStatus }).status;
}

async function mailTo(address: string, subject: string): Promise<CaughtMail[]> {
  let found: CaughtMail[] = [];
  for (let i = 0; i < 100 && found.length === 0; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 100));
    found = readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(address) && m.subject === subject);
  }
  return found;
}

async function subscriptionOf(tenantId: string) {
  const { rows } = await pool().query<{
    status: string;
    tier: string;
    billing_cycle: string;
    current_period_start: Date;
    current_period_end: Date;
    trial_ends_at: Date | null;
    tenant_tier: string;
    payment_processor: string;
  }>(
    `SELECT s.status, s.tier, s.billing_cycle, s.current_period_start, s.current_period_end, s.trial_ends_at,
            t.tier AS tenant_tier, t.payment_processor
       FROM subscriptions s JOIN tenants t ON t.id = s.tenant_id WHERE s.tenant_id = $1`,
    [tenantId],
  );
  return rows;
}

describe('subscription activation incident', () => {
  it('trial conversion on Paystack: the pending payment Paystack confirms is marked paid; the trial becomes an active month from today; the customer emailed', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'paystack' });
    await trialingSubscription(tenant, 'paystack');
    const reference = `T${unique()}`;
    await pool().query(
      `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, 'paystack', $2, 'pending', 490000, 'NGN')`,
      [tenant.id, reference],
    );
    paystack.addTransaction({ reference, amount: 490_000, currency: 'NGN', createdAt: new Date() });

    const handle = await activate(tenant, {
      reference,
      tier: 'pro',
      billingCycle: 'monthly',
      trialConversion: true,
    });
    const status = await closed(handle);

    const period = periodFromToday(1);
    const [sub] = await subscriptionOf(tenant.id);
    expect(sub).toEqual({
      status: 'active',
      tier: 'pro',
      billing_cycle: 'monthly',
      current_period_start: new Date(period.start),
      current_period_end: new Date(period.end),
      trial_ends_at: null,
      tenant_tier: 'pro',
      payment_processor: 'paystack',
    });
    const { rows: tx } = await pool().query('SELECT status FROM payment_transactions WHERE reference = $1', [
      reference,
    ]);
    expect(tx).toEqual([{ status: 'success' }]);
    expect(paystack.requests().filter((r) => r.path === `/transaction/verify/${reference}`)).toHaveLength(1);

    const [mail] = await mailTo(tenant.billingEmail, `Subscription Active - Account #${tenant.id}`);
    expect(mail!.text).toContain('Your payment is confirmed and your pro subscription is now active.');
    expect(mail!.text).toContain(
      `Current period: ${period.start.slice(0, 10)} to ${period.end.slice(0, 10)}.`,
    );
    expect(status.stepsDone.map((s) => s.name)).toEqual([
      'verify the payment',
      'convert the trial to paid',
      'email the customer',
    ]);
    expect(status.resolution?.summary).toBe(
      `trial converted: pro (monthly) ${period.start.slice(0, 10)} to ${period.end.slice(0, 10)} on payment ${reference} (NGN 4900.00)`,
    );
    const { rows } = await pool().query<{ line: string }>(
      'SELECT line FROM decisions WHERE workflow_id = $1',
      [handle.workflowId],
    );
    expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
      operator: 'billops',
      incidentType: 'subscription_activation_failure',
      tenants: 1,
      impact: 'service: paid pro subscription was not active',
    });
  });

  it('activation failure coming from Free: a successful payment creates an annual enterprise subscription; the tenant moves to enterprise on the paying processor', async () => {
    const tenant = await insertTenant(pool(), 'free');
    const reference = `T${unique()}`;
    await pool().query(
      `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, paid_at)
       VALUES ($1, 'paystack', $2, 'success', 12000000, 'NGN', now())`,
      [tenant.id, reference],
    );
    const requestsBefore = paystack.requests().length;

    const status = await closed(
      await activate(tenant, { reference, tier: 'enterprise', billingCycle: 'annual' }),
    );

    const period = periodFromToday(12);
    expect(await subscriptionOf(tenant.id)).toEqual([
      {
        status: 'active',
        tier: 'enterprise',
        billing_cycle: 'annual',
        current_period_start: new Date(period.start),
        current_period_end: new Date(period.end),
        trial_ends_at: null,
        tenant_tier: 'enterprise',
        payment_processor: 'paystack',
      },
    ]);
    // Our own successful row was enough: Paystack was not asked.
    expect(paystack.requests().length).toBe(requestsBefore);
    expect(status.stepsDone[0]?.detail).toBe(`payment ${reference} is recorded as successful`);
    const [mail] = await mailTo(tenant.billingEmail, `Subscription Active - Account #${tenant.id}`);
    expect(mail!.text).toContain('your enterprise subscription is now active');
  });

  it('not confirmed: Stripe reports the PaymentIntent still needs a payment method, so nothing is activated and nobody is emailed', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'stripe' });
    await trialingSubscription(tenant, 'stripe');
    const reference = `pi_${unique()}`;

    const status = await closed(await activate(tenant, { reference, tier: 'pro', billingCycle: 'monthly' }));

    expect(status.resolution).toMatchObject({
      by: 'billops',
      summary: `not activated: payment ${reference} is not confirmed: Stripe reports ${reference} requires payment method`,
    });
    expect((await subscriptionOf(tenant.id))[0]).toMatchObject({ status: 'trialing', tenant_tier: 'pro' });
    // The incident has closed, so any email it sent has arrived.
    expect(readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(tenant.billingEmail))).toEqual([]);
  });

  it('through the ingress: Stripe customer.subscription.updated (trialing → active) on our paid invoice opens the incident, which activates it', async () => {
    const tenant = await insertTenant(pool(), 'pro', { processor: 'stripe' });
    await trialingSubscription(tenant, 'stripe');
    const invoiceId = `in_${unique()}`;
    await pool().query(
      `INSERT INTO invoices (tenant_id, processor, processor_invoice_id, period_start, period_end, status,
                            subtotal_minor, total_minor, amount_paid_minor, currency, paid_at)
       VALUES ($1, 'stripe', $2, now(), now() + interval '1 month', 'paid', 4900, 4900, 4900, 'USD', now())`,
      [tenant.id, invoiceId],
    );
    const body = JSON.stringify({
      id: `evt_${unique()}`,
      object: 'event',
      type: 'customer.subscription.updated',
      created: Math.floor(Date.now() / 1000),
      data: {
        object: {
          object: 'subscription',
          id: `sub_${unique()}`,
          status: 'active',
          metadata: { tenant_id: tenant.id, tier: 'pro' },
          latest_invoice: invoiceId,
          items: { data: [{ price: { recurring: { interval: 'month' } } }] },
        },
        previous_attributes: { status: 'trialing' },
      },
    });
    const post = () => webhooks.deliverStripe(body);

    const answer = await post();

    const workflowId = `incident-subscription_activation_failure-${tenant.id}-${invoiceId}`;
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ received: true, status: 'processed', workflowId });
    const status = await closed(worker.client.workflow.getHandle(workflowId));
    expect(status.stepsDone.map((s) => [s.name, s.detail])).toEqual([
      ['verify the payment', `invoice ${invoiceId} is paid`],
      ['convert the trial to paid', expect.stringMatching(/^trialing → active pro \(monthly\), /)],
      ['email the customer', '1 customer emailed'],
    ]);
    expect((await subscriptionOf(tenant.id))[0]).toMatchObject({ status: 'active', trial_ends_at: null });
    // The same delivery again is a duplicate: no second incident.
    expect((await post()).json()).toEqual({ received: true, duplicate: true });
  });
});
