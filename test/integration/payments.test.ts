// Payment activities against real servers: stripe-mock (behind a recording proxy), the local Paystack server and PostgreSQL; "Retry Payment" and "Manual Payment Link" as the runbook describes them.
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import {
  createPaymentActivities,
  paymentReference,
  type PaymentAttemptResult,
} from '../../activities/payments';
import { recordInvoicePaid } from '../../db/billingRecords';
import { createGatewaysFromConfig } from '../../drivers/gateways';
import { createPaystackGateway } from '../../drivers/paystack';
import { createStripeGateway } from '../../drivers/stripe';
import { readPaystackEvent } from '../../paymentEvents/read/paystack';
import { STRIPE_MOCK_SECRET_KEY } from '../../runtime/stripeMock';
import { createPool } from '../../db/pool';
import { parseConfig } from '../../config/env';
import { forward, listenOnLoopback } from '../support/httpProxy';
import { signPaystackWebhook, startPaystackFake, type PaystackFake } from '../support/paystackFake';

function requiredEnv(name: string, what: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: these tests need ${what}. Run them with \`npm test\`, whose globalSetup starts it.`,
    );
  }
  return value;
}

const databaseUrl = requiredEnv('BILLOPS_TEST_DATABASE_URL', 'a real, migrated PostgreSQL database');
const stripeApiBase = requiredEnv(
  'BILLOPS_TEST_STRIPE_API_BASE',
  'stripe-mock (the official Stripe API mock)',
);

const STRIPE_TEST_KEY = 'sk_test_billopspayments000000000000';
const PORTAL = 'http://127.0.0.1:8080/billing';
const suffix = () => randomBytes(4).toString('hex');

interface SeenStripeRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
}

/** Forwards to stripe-mock untouched and notes each request, so a test sees what went over the wire. */
async function startRecordingProxy(
  target: string,
): Promise<{ url: string; seen: SeenStripeRequest[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const seen: SeenStripeRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const header = req.headers['idempotency-key'];
    seen.push({
      method: req.method ?? '',
      path: req.url ?? '',
      idempotencyKey: Array.isArray(header) ? header[0] : header,
    });
    forward(upstream, req, res);
  });
  return { ...(await listenOnLoopback(server)), seen };
}

/** A port nothing listens on: bound, noted, closed. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function caught(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApplicationFailure) return error;
    throw error;
  }
  throw new Error('expected the activity to throw an ApplicationFailure');
}

let pool: Pool;
let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
let paystack: PaystackFake;

beforeAll(async () => {
  pool = createPool(databaseUrl, { max: 4 });
  proxy = await startRecordingProxy(stripeApiBase);
  paystack = await startPaystackFake();
});

afterAll(async () => {
  await Promise.all([pool.end(), proxy.close(), paystack.close()]);
});

beforeEach(() => {
  proxy.seen.length = 0;
  paystack.reset();
});

async function insertTenant(opts: {
  processor: 'stripe' | 'paystack' | 'none';
  currency: string;
  authorizationCode?: string;
}): Promise<string> {
  const id = `paytest-${suffix()}`;
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor, paystack_authorization_code)
     VALUES ($1, 'Payments Test Ltd', 'pro', 'ops@paytest.example', $2, $3, $4, $5)`,
    [id, `billing+${id}@paytest.example`, opts.currency, opts.processor, opts.authorizationCode ?? null],
  );
  return id;
}

async function insertInvoice(
  tenantId: string,
  opts: {
    processor: 'stripe' | 'paystack' | 'none';
    totalMinor: number;
    currency: string;
    stripeInvoiceId?: string;
  },
): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO invoices (tenant_id, processor, processor_invoice_id, period_start, period_end, status,
                           subtotal_minor, total_minor, currency, due_at)
     VALUES ($1, $2, $3, now() - interval '30 days', now(), 'open', $4, $4, $5, now())
     RETURNING id`,
    [tenantId, opts.processor, opts.stripeInvoiceId ?? null, opts.totalMinor, opts.currency],
  );
  return rows[0]!.id;
}

async function invoiceRow(invoiceId: string) {
  const { rows } = await pool.query<{
    status: string;
    amount_paid_minor: number;
    paid_at: Date | null;
    hosted_invoice_url: string | null;
  }>('SELECT status, amount_paid_minor, paid_at, hosted_invoice_url FROM invoices WHERE id = $1', [
    invoiceId,
  ]);
  return rows[0]!;
}

async function transactionRows(invoiceId: string) {
  const { rows } = await pool.query<{
    processor: string;
    reference: string;
    status: string;
    amount_minor: number;
    currency: string;
    failure_code: string | null;
    gateway_response: string | null;
    paid_at: Date | null;
  }>(
    `SELECT processor, reference, status, amount_minor, currency, failure_code, gateway_response, paid_at
       FROM payment_transactions WHERE invoice_id = $1 ORDER BY created_at`,
    [invoiceId],
  );
  return rows;
}

describe('retryInvoicePayment through Stripe (stripe-mock)', () => {
  const stripeActivities = () =>
    createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({ secretKey: STRIPE_TEST_KEY, apiBase: proxy.url }),
    });

  async function stripeInvoice(totalMinor = 4900) {
    const tenantId = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const stripeInvoiceId = `in_paytest${suffix()}`;
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'stripe',
      totalMinor,
      currency: 'USD',
      stripeInvoiceId,
    });
    return { tenantId, invoiceId, stripeInvoiceId };
  }

  it('pays the invoice under the derived Idempotency-Key, records one success row and marks the invoice paid', async () => {
    const { tenantId, invoiceId, stripeInvoiceId } = await stripeInvoice(4900);
    const idempotencyKey = `dunning-${tenantId}/retry-0h/${invoiceId}`;
    const activities = stripeActivities();

    const result = await activities.retryInvoicePayment({ idempotencyKey, tenantId, invoiceId, attempt: 1 });

    const reference = paymentReference(idempotencyKey);
    expect(result).toEqual({ outcome: 'succeeded', reference, amountMinor: 4900, currency: 'USD' });
    expect(proxy.seen).toEqual([
      { method: 'POST', path: `/v1/invoices/${stripeInvoiceId}/pay`, idempotencyKey: reference },
    ]);
    const invoice = await invoiceRow(invoiceId);
    expect(invoice.status).toBe('paid');
    expect(invoice.amount_paid_minor).toBe(4900);
    expect(invoice.paid_at).toBeInstanceOf(Date);
    const rows = await transactionRows(invoiceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      processor: 'stripe',
      reference,
      status: 'success',
      amount_minor: 4900,
      currency: 'USD',
    });
    expect(rows[0]!.paid_at).toBeInstanceOf(Date);

    // Temporal retrying the same activity: nothing goes to Stripe, the row stays one.
    const again = await activities.retryInvoicePayment({ idempotencyKey, tenantId, invoiceId, attempt: 1 });
    expect(again).toEqual(result);
    expect(proxy.seen).toHaveLength(1);
    expect(await transactionRows(invoiceId)).toHaveLength(1);
  });

  it('sends the same Idempotency-Key again when a retry finds its earlier attempt unfinished', async () => {
    const { tenantId, invoiceId } = await stripeInvoice();
    const idempotencyKey = `dunning-${tenantId}/retry-6h/${invoiceId}`;
    const reference = paymentReference(idempotencyKey);
    // The first attempt opened its row, then its worker died before Stripe answered.
    await pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'stripe', $3, 'pending', 4900, 'USD')`,
      [tenantId, invoiceId, reference],
    );

    const result = await stripeActivities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 2,
    });

    expect(result.outcome).toBe('succeeded');
    expect(proxy.seen.map((r) => r.idempotencyKey)).toEqual([reference]);
    const rows = await transactionRows(invoiceId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('success');
  });

  it('also reports the key through the SDK request event', async () => {
    const { tenantId, invoiceId } = await stripeInvoice();
    const keys: (string | undefined)[] = [];
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({
        secretKey: STRIPE_TEST_KEY,
        apiBase: stripeApiBase,
        onRequest: (event) => keys.push(event.idempotency_key),
      }),
    });
    const idempotencyKey = `dunning-${tenantId}/retry-24h/${invoiceId}`;
    await activities.retryInvoicePayment({ idempotencyKey, tenantId, invoiceId, attempt: 3 });
    expect(keys).toEqual([paymentReference(idempotencyKey)]);
  });

  it('the key npm start gives its embedded stripe-mock is one stripe-mock accepts: a retry pays', async () => {
    const { tenantId, invoiceId } = await stripeInvoice(1200);
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({ secretKey: STRIPE_MOCK_SECRET_KEY, apiBase: stripeApiBase }),
    });

    const result = await activities.retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });

    expect(result).toMatchObject({ outcome: 'succeeded', amountMinor: 1200 });
    expect((await invoiceRow(invoiceId)).status).toBe('paid');
  });

  it('a wrong secret key is a non-retryable ProcessorAuthFailed that names STRIPE_SECRET_KEY, never the key', async () => {
    const { tenantId, invoiceId } = await stripeInvoice();
    const wrongKey = 'sk_live_wrongkey0000000000000000';
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({ secretKey: wrongKey, apiBase: stripeApiBase }),
    });

    const failure = await caught(
      activities.retryInvoicePayment({ idempotencyKey: `k-${suffix()}`, tenantId, invoiceId, attempt: 1 }),
    );

    expect(failure.type).toBe('ProcessorAuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('STRIPE_SECRET_KEY');
    expect(failure.message).not.toContain('wrongkey');
    expect((await invoiceRow(invoiceId)).status).toBe('open');
    expect(await transactionRows(invoiceId)).toEqual([
      expect.objectContaining({ status: 'failed', failure_code: 'ProcessorAuthFailed' }),
    ]);
  });

  it('Stripe out of reach is a retryable ProcessorUnavailable, and the row waits as pending for the retry', async () => {
    const { tenantId, invoiceId } = await stripeInvoice();
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({
        secretKey: STRIPE_TEST_KEY,
        apiBase: `http://127.0.0.1:${await deadPort()}`,
      }),
    });

    const failure = await caught(
      activities.retryInvoicePayment({ idempotencyKey: `k-${suffix()}`, tenantId, invoiceId, attempt: 1 }),
    );

    expect(failure.type).toBe('ProcessorUnavailable');
    expect(failure.nonRetryable).toBe(false);
    expect(await transactionRows(invoiceId)).toEqual([expect.objectContaining({ status: 'pending' })]);
  });

  it('gateways built from the environment talk to STRIPE_API_BASE', async () => {
    const { tenantId, invoiceId } = await stripeInvoice();
    const parsed = parseConfig({ STRIPE_SECRET_KEY: STRIPE_TEST_KEY, STRIPE_API_BASE: proxy.url });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const gateways = createGatewaysFromConfig(parsed.config);
    expect(gateways.paystack).toBeUndefined();

    const result = await createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      ...gateways,
    }).retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });
    expect(result.outcome).toBe('succeeded');
    expect(proxy.seen).toHaveLength(1);
  });

  it('an invoice already paid returns succeeded without a charge', async () => {
    const { tenantId, invoiceId } = await stripeInvoice(1200);
    await pool.query(
      `UPDATE invoices SET status = 'paid', amount_paid_minor = 1200, paid_at = now() WHERE id = $1`,
      [invoiceId],
    );
    const result = await stripeActivities().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 2,
    });
    expect(result).toMatchObject({ outcome: 'succeeded', amountMinor: 1200, currency: 'USD' });
    expect(proxy.seen).toEqual([]);
    expect(await transactionRows(invoiceId)).toEqual([]);
  });
});

describe('retryInvoicePayment through Paystack (local Paystack server)', () => {
  const paystackActivities = (overrides: { secretKey?: string; timeoutSeconds?: number } = {}) =>
    createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      paystack: createPaystackGateway({
        secretKey: overrides.secretKey ?? paystack.secretKey,
        baseUrl: paystack.url,
        timeoutSeconds: overrides.timeoutSeconds ?? 5,
      }),
    });

  async function paystackInvoice(authorizationCode: string, totalMinor = 250_000) {
    const tenantId = await insertTenant({ processor: 'paystack', currency: 'NGN', authorizationCode });
    const invoiceId = await insertInvoice(tenantId, { processor: 'paystack', totalMinor, currency: 'NGN' });
    return { tenantId, invoiceId };
  }

  it('charges the saved card in kobo integers with the bearer key, and a success marks the invoice paid', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await paystackInvoice(code, 250_000);
    const idempotencyKey = `dunning-${tenantId}/retry-0h/${invoiceId}`;

    const result = await paystackActivities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 1,
    });

    const reference = paymentReference(idempotencyKey);
    expect(result).toEqual({ outcome: 'succeeded', reference, amountMinor: 250_000, currency: 'NGN' });
    const [charge, ...more] = paystack.charges();
    expect(more).toEqual([]);
    expect(charge).toMatchObject({
      reference,
      authorizationCode: code,
      email: `billing+${tenantId}@paytest.example`,
      amount: 250_000,
      currency: 'NGN',
      metadata: { tenant_id: tenantId, invoice_id: invoiceId, attempt: 1 },
    });
    expect(Number.isInteger(charge!.amount)).toBe(true);
    const [wire] = paystack.requests();
    expect(wire).toMatchObject({ method: 'POST', path: '/transaction/charge_authorization', status: 200 });
    expect(wire!.authorization).toBe(`Bearer ${paystack.secretKey}`);
    expect(wire!.rawBody).toContain('"amount":250000,');
    const invoice = await invoiceRow(invoiceId);
    expect(invoice).toMatchObject({ status: 'paid', amount_paid_minor: 250_000 });
    expect(await transactionRows(invoiceId)).toEqual([
      expect.objectContaining({
        processor: 'paystack',
        reference,
        status: 'success',
        amount_minor: 250_000,
        currency: 'NGN',
      }),
    ]);
  });

  it('a soft decline (insufficient funds) is failed with the reason, and the invoice stays open', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'soft_decline' });
    const { tenantId, invoiceId } = await paystackInvoice(code);
    const idempotencyKey = `k-${suffix()}`;

    const result = await paystackActivities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 2,
    });

    expect(result).toEqual({
      outcome: 'failed',
      reason: 'Paystack declined the charge (insufficient_funds): Insufficient Funds',
      reference: paymentReference(idempotencyKey),
    });
    expect((await invoiceRow(invoiceId)).status).toBe('open');
    expect(await transactionRows(invoiceId)).toEqual([
      expect.objectContaining({
        status: 'failed',
        failure_code: 'insufficient_funds',
        gateway_response: 'Insufficient Funds',
      }),
    ]);
  });

  it('a hard decline (stolen card) is hard_declined with its decline code', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'hard_decline' });
    const { tenantId, invoiceId } = await paystackInvoice(code);

    const result = await paystackActivities().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });

    expect(result).toMatchObject({ outcome: 'hard_declined', declineCode: 'stolen_card' });
    expect((result as Extract<PaymentAttemptResult, { outcome: 'hard_declined' }>).reason).toContain(
      'Stolen Card, Pick-Up',
    );
    expect((await invoiceRow(invoiceId)).status).toBe('open');
  });

  it('a saved card that asks for an OTP is hard_declined: an unattended retry cannot type it', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'send_otp' });
    const { tenantId, invoiceId } = await paystackInvoice(code);

    const result = await paystackActivities().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });

    expect(result).toMatchObject({ outcome: 'hard_declined', declineCode: 'authentication_required' });
  });

  it('run twice with the same key, it charges once and keeps one transaction row', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await paystackInvoice(code);
    const request = { idempotencyKey: `k-${suffix()}`, tenantId, invoiceId, attempt: 1 };
    const activities = paystackActivities();

    const first = await activities.retryInvoicePayment(request);
    const second = await activities.retryInvoicePayment(request);

    expect(second).toEqual(first);
    expect(paystack.charges()).toHaveLength(1);
    expect(await transactionRows(invoiceId)).toHaveLength(1);
  });

  it('when the answer is lost (timeout), the retry meets "Duplicate Transaction Reference", verifies, and charges nothing twice', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success', delayMs: 1_500 });
    const { tenantId, invoiceId } = await paystackInvoice(code, 99_900);
    const request = { idempotencyKey: `k-${suffix()}`, tenantId, invoiceId, attempt: 1 };
    const activities = paystackActivities({ timeoutSeconds: 1 });

    const lost = await caught(activities.retryInvoicePayment(request));
    expect(lost.type).toBe('ProcessorUnavailable');
    expect(lost.nonRetryable).toBe(false);
    expect(await transactionRows(invoiceId)).toEqual([expect.objectContaining({ status: 'pending' })]);

    const retried = await activities.retryInvoicePayment(request);

    expect(retried).toEqual({
      outcome: 'succeeded',
      reference: paymentReference(request.idempotencyKey),
      amountMinor: 99_900,
      currency: 'NGN',
    });
    expect(paystack.charges()).toHaveLength(1);
    const paths = paystack.requests().map((r) => `${r.method} ${r.path} ${r.status}`);
    expect(paths).toContain('POST /transaction/charge_authorization 400');
    expect(paths).toContain(`GET /transaction/verify/${paymentReference(request.idempotencyKey)} 200`);
    expect(await transactionRows(invoiceId)).toEqual([expect.objectContaining({ status: 'success' })]);
    expect((await invoiceRow(invoiceId)).status).toBe('paid');
  });

  it('a Paystack outage (503) is retryable, and the retry after it charges once', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await paystackInvoice(code);
    const request = { idempotencyKey: `k-${suffix()}`, tenantId, invoiceId, attempt: 1 };
    paystack.failNext(1, 503);

    const failure = await caught(paystackActivities().retryInvoicePayment(request));
    expect(failure).toMatchObject({ type: 'ProcessorUnavailable', nonRetryable: false });

    expect((await paystackActivities().retryInvoicePayment(request)).outcome).toBe('succeeded');
    expect(paystack.charges()).toHaveLength(1);
  });

  it('a wrong secret key is a non-retryable ProcessorAuthFailed that names PAYSTACK_SECRET_KEY, never the key', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await paystackInvoice(code);
    const wrongKey = 'sk_test_wrongpaystackkey000000';

    const failure = await caught(
      paystackActivities({ secretKey: wrongKey }).retryInvoicePayment({
        idempotencyKey: `k-${suffix()}`,
        tenantId,
        invoiceId,
        attempt: 1,
      }),
    );

    expect(failure).toMatchObject({ type: 'ProcessorAuthFailed', nonRetryable: true });
    expect(failure.message).toContain('PAYSTACK_SECRET_KEY');
    expect(failure.message).not.toContain(wrongKey);
    expect(paystack.charges()).toEqual([]);
    expect(paystack.requests()[0]!.status).toBe(401);
  });

  it('a tenant without a saved card is failed with a reason, and nothing reaches Paystack', async () => {
    const tenantId = await insertTenant({ processor: 'paystack', currency: 'NGN' });
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'paystack',
      totalMinor: 5000,
      currency: 'NGN',
    });
    const result = await paystackActivities().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });
    expect(result).toMatchObject({
      outcome: 'failed',
      reason: expect.stringContaining('paystack_authorization_code'),
    });
    expect(paystack.requests()).toEqual([]);
  });

  it('the gateway refuses a fractional amount before sending it', async () => {
    const gateway = createPaystackGateway({
      secretKey: paystack.secretKey,
      baseUrl: paystack.url,
      timeoutSeconds: 5,
    });
    const failure = await caught(
      gateway.chargeAuthorization({
        authorizationCode: 'AUTH_x',
        email: 'a@b.example',
        amountMinor: 1500.5,
        currency: 'NGN',
        reference: `r-${suffix()}`,
      }),
    );
    expect(failure).toMatchObject({ type: 'InvalidAmount', nonRetryable: true });
    expect(paystack.requests()).toEqual([]);
  });
});

describe('processors that are not configured', () => {
  const bare = () => createPaymentActivities({ pool, billingPortalUrl: PORTAL });

  it('a Stripe tenant without STRIPE_SECRET_KEY is failed with the "not configured" reason and records nothing', async () => {
    const tenantId = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'stripe',
      totalMinor: 4900,
      currency: 'USD',
      stripeInvoiceId: `in_paytest${suffix()}`,
    });
    const result = await bare().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });
    expect(result).toEqual({
      outcome: 'failed',
      reason: 'no stripe processor configured (set STRIPE_SECRET_KEY)',
    });
    expect(await transactionRows(invoiceId)).toEqual([]);
    expect((await invoiceRow(invoiceId)).status).toBe('open');
  });

  it('a Paystack tenant without PAYSTACK_SECRET_KEY is failed the same way', async () => {
    const tenantId = await insertTenant({
      processor: 'paystack',
      currency: 'NGN',
      authorizationCode: 'AUTH_any',
    });
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'paystack',
      totalMinor: 5000,
      currency: 'NGN',
    });
    const result = await bare().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });
    expect(result).toEqual({
      outcome: 'failed',
      reason: 'no paystack processor configured (set PAYSTACK_SECRET_KEY)',
    });
  });

  it("a tenant whose payment_processor is 'none' is failed with a reason naming it", async () => {
    const tenantId = await insertTenant({ processor: 'none', currency: 'USD' });
    const invoiceId = await insertInvoice(tenantId, { processor: 'none', totalMinor: 4900, currency: 'USD' });
    const result = await bare().retryInvoicePayment({
      idempotencyKey: `k-${suffix()}`,
      tenantId,
      invoiceId,
      attempt: 1,
    });
    expect(result).toEqual({
      outcome: 'failed',
      reason: `no payment processor configured for tenant ${tenantId} (payment_processor is 'none')`,
    });
  });

  it('the payment link falls back to the billing portal', async () => {
    const tenantId = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'stripe',
      totalMinor: 4900,
      currency: 'USD',
      stripeInvoiceId: `in_paytest${suffix()}`,
    });
    expect(await bare().createPaymentLink({ tenantId, invoiceId, idempotencyKey: `k-${suffix()}` })).toEqual({
      url: PORTAL,
    });
  });

  it('an unknown tenant or invoice is a non-retryable InvoiceUnknown', async () => {
    const tenantId = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const otherTenant = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const othersInvoice = await insertInvoice(otherTenant, {
      processor: 'none',
      totalMinor: 100,
      currency: 'USD',
    });
    for (const [t, i] of [
      [`paytest-missing-${suffix()}`, othersInvoice],
      [tenantId, `no-such-invoice-${suffix()}`],
      [tenantId, othersInvoice],
    ] as const) {
      const failure = await caught(
        bare().retryInvoicePayment({
          idempotencyKey: `k-${suffix()}`,
          tenantId: t,
          invoiceId: i,
          attempt: 1,
        }),
      );
      expect(failure).toMatchObject({ type: 'InvoiceUnknown', nonRetryable: true });
    }
  });
});

describe('createPaymentLink (runbook "Manual Payment Link")', () => {
  it('Paystack: initializes a checkout for the amount due and returns its authorization_url; the same key reuses it', async () => {
    const tenantId = await insertTenant({
      processor: 'paystack',
      currency: 'NGN',
      authorizationCode: 'AUTH_link',
    });
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'paystack',
      totalMinor: 1_500_000,
      currency: 'NGN',
    });
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      paystack: createPaystackGateway({
        secretKey: paystack.secretKey,
        baseUrl: paystack.url,
        timeoutSeconds: 5,
      }),
    });
    const request = { tenantId, invoiceId, idempotencyKey: `dunning-${tenantId}/payment-link/${invoiceId}` };

    const link = await activities.createPaymentLink(request);

    const [initialized, ...more] = paystack.initializations();
    expect(more).toEqual([]);
    expect(link).toEqual({ url: initialized!.authorizationUrl });
    expect(initialized).toMatchObject({
      reference: paymentReference(request.idempotencyKey),
      amount: 1_500_000,
      currency: 'NGN',
      email: `billing+${tenantId}@paytest.example`,
      callbackUrl: PORTAL,
    });
    expect((await invoiceRow(invoiceId)).hosted_invoice_url).toBe(link.url);
    expect(await transactionRows(invoiceId)).toEqual([
      expect.objectContaining({ reference: paymentReference(request.idempotencyKey), status: 'pending' }),
    ]);

    expect(await activities.createPaymentLink(request)).toEqual(link);
    expect(paystack.initializations()).toHaveLength(1);
    expect(await transactionRows(invoiceId)).toHaveLength(1);
  });

  it("Stripe: returns the invoice's known hosted page without asking Stripe again", async () => {
    const tenantId = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'stripe',
      totalMinor: 4900,
      currency: 'USD',
      stripeInvoiceId: `in_paytest${suffix()}`,
    });
    const hosted = `https://invoice.stripe.com/i/acct_test/${suffix()}`;
    await pool.query('UPDATE invoices SET hosted_invoice_url = $2 WHERE id = $1', [invoiceId, hosted]);
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({ secretKey: STRIPE_TEST_KEY, apiBase: proxy.url }),
    });

    expect(
      await activities.createPaymentLink({ tenantId, invoiceId, idempotencyKey: `k-${suffix()}` }),
    ).toEqual({
      url: hosted,
    });
    expect(proxy.seen).toEqual([]);
  });

  it("Stripe: asks Stripe for the hosted page; stripe-mock's fixture is a draft without one, so the portal is returned", async () => {
    const tenantId = await insertTenant({ processor: 'stripe', currency: 'USD' });
    const stripeInvoiceId = `in_paytest${suffix()}`;
    const invoiceId = await insertInvoice(tenantId, {
      processor: 'stripe',
      totalMinor: 4900,
      currency: 'USD',
      stripeInvoiceId,
    });
    const activities = createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      stripe: createStripeGateway({ secretKey: STRIPE_TEST_KEY, apiBase: proxy.url }),
    });

    expect(
      await activities.createPaymentLink({ tenantId, invoiceId, idempotencyKey: `k-${suffix()}` }),
    ).toEqual({
      url: PORTAL,
    });
    expect(proxy.seen).toEqual([
      { method: 'GET', path: `/v1/invoices/${stripeInvoiceId}`, idempotencyKey: undefined },
    ]);
    expect((await invoiceRow(invoiceId)).hosted_invoice_url).toBeNull();
  });
});

describe('the local Paystack server checks what Paystack checks', () => {
  async function post(path: string, body: string, authorization = `Bearer ${paystack.secretKey}`) {
    const response = await fetch(`${paystack.url}${path}`, {
      method: 'POST',
      headers: { Authorization: authorization, 'Content-Type': 'application/json' },
      body,
    });
    return { status: response.status, body: (await response.json()) as { status: boolean; message: string } };
  }

  it('refuses a wrong bearer key with 401 "Invalid key"', async () => {
    expect(
      await post('/transaction/initialize', '{"email":"a@b.example","amount":100}', 'Bearer sk_test_nope'),
    ).toEqual({
      status: 401,
      body: { status: false, message: 'Invalid key' },
    });
  });

  it.each(['1500.5', '1500.0', '"1500.00"', '-100', '0', '"abc"'])('refuses amount %s', async (amount) => {
    const result = await post('/transaction/initialize', `{"email":"a@b.example","amount":${amount}}`);
    expect(result).toEqual({ status: 400, body: { status: false, message: 'Invalid Amount Sent' } });
  });

  it('refuses a second transaction with the same reference', async () => {
    const body = `{"email":"a@b.example","amount":100,"reference":"dup-${suffix()}"}`;
    expect((await post('/transaction/initialize', body)).status).toBe(200);
    expect(await post('/transaction/initialize', body)).toEqual({
      status: 400,
      body: { status: false, message: 'Duplicate Transaction Reference' },
    });
  });

  it('does not know a reference it never saw', async () => {
    const gateway = createPaystackGateway({
      secretKey: paystack.secretKey,
      baseUrl: paystack.url,
      timeoutSeconds: 5,
    });
    expect(await gateway.verifyTransaction(`never-${suffix()}`)).toBeNull();
  });

  it('signs webhooks as Paystack does: HMAC-SHA512 hex of the raw body', () => {
    const signature = signPaystackWebhook('{"event":"charge.success"}', 'sk_test_x');
    expect(signature).toMatch(/^[0-9a-f]{128}$/);
    expect(signPaystackWebhook('{"event":"charge.success"} ', 'sk_test_x')).not.toBe(signature);
  });
});

describe('payment truth: an invoice is paid only when what it received covers its total in its currency', () => {
  const paystackActivities = () =>
    createPaymentActivities({
      pool,
      billingPortalUrl: PORTAL,
      paystack: createPaystackGateway({
        secretKey: paystack.secretKey,
        baseUrl: paystack.url,
        timeoutSeconds: 5,
      }),
    });

  async function paystackTenantAndInvoice(totalMinor: number, authorizationCode?: string) {
    const tenantId = await insertTenant({ processor: 'paystack', currency: 'NGN', authorizationCode });
    const invoiceId = await insertInvoice(tenantId, { processor: 'paystack', totalMinor, currency: 'NGN' });
    const tenant = {
      id: tenantId,
      name: 'Payments Test Ltd',
      tier: 'pro' as const,
      processor: 'paystack' as const,
      deleted: false,
    };
    return { tenantId, invoiceId, tenant };
  }

  /** A Paystack charge.success for our invoice, read as the webhook reads it. */
  function chargeSuccess(invoiceId: string, reference: string, amount: number, currency: string) {
    const body = {
      event: 'charge.success',
      data: {
        reference,
        amount,
        currency,
        status: 'success',
        metadata: { invoice_id: invoiceId },
        paid_at: new Date().toISOString(),
      },
    };
    const event = readPaystackEvent(body, Buffer.from(JSON.stringify(body)));
    if (event.intent.kind !== 'paymentSucceeded') throw new Error(`read as ${event.intent.kind}`);
    return event.intent.invoice;
  }

  async function pendingLink(tenantId: string, invoiceId: string, reference: string, amountMinor: number) {
    await pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'paystack', $3, 'pending', $4, 'NGN')`,
      [tenantId, invoiceId, reference, amountMinor],
    );
  }

  it('a partial payment is recorded as partial: amount_paid_minor grows, the invoice stays open, a redelivery counts once', async () => {
    const { invoiceId, tenant } = await paystackTenantAndInvoice(250_000);
    const first = chargeSuccess(invoiceId, `part-${suffix()}`, 100_000, 'NGN');

    await recordInvoicePaid(pool, 'paystack', tenant, first);
    await recordInvoicePaid(pool, 'paystack', tenant, first);

    expect(await invoiceRow(invoiceId)).toMatchObject({
      status: 'open',
      amount_paid_minor: 100_000,
      paid_at: null,
    });
    const rest = chargeSuccess(invoiceId, `rest-${suffix()}`, 150_000, 'NGN');
    await recordInvoicePaid(pool, 'paystack', tenant, rest);
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'paid', amount_paid_minor: 250_000 });
  });

  it('a payment in another currency is recorded, not applied, with the reason', async () => {
    const { tenantId, invoiceId, tenant } = await paystackTenantAndInvoice(250_000);
    const reference = `usd-${suffix()}`;
    await pendingLink(tenantId, invoiceId, reference, 250_000);

    await recordInvoicePaid(pool, 'paystack', tenant, chargeSuccess(invoiceId, reference, 250_000, 'USD'));

    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'open', amount_paid_minor: 0 });
    const [row] = await transactionRows(invoiceId);
    expect(row).toMatchObject({ reference, status: 'pending' });
    expect(row!.gateway_response).toMatch(
      /USD 2500\.00 was paid, but invoice .* is in NGN: recorded, not applied/,
    );
  });

  it('Paystack: a customer who paid by the payment link is not charged again; the link payment settles the invoice', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await paystackTenantAndInvoice(250_000, code);
    const linkReference = `link-${suffix()}`;
    await pendingLink(tenantId, invoiceId, linkReference, 250_000);
    // The customer completed the checkout; its charge.success webhook has not arrived.
    paystack.addTransaction({
      reference: linkReference,
      amount: 250_000,
      currency: 'NGN',
      createdAt: new Date(),
    });

    const result = await paystackActivities().retryInvoicePayment({
      idempotencyKey: `dunning-${tenantId}/retry-6h/${invoiceId}`,
      tenantId,
      invoiceId,
      attempt: 2,
    });

    expect(paystack.charges()).toEqual([]);
    expect(result).toEqual({
      outcome: 'succeeded',
      reference: linkReference,
      amountMinor: 250_000,
      currency: 'NGN',
    });
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'paid', amount_paid_minor: 250_000 });
    expect(await transactionRows(invoiceId)).toEqual([
      expect.objectContaining({ reference: linkReference, status: 'success', amount_minor: 250_000 }),
    ]);
  });

  it('confirmInvoicePaid: an open invoice is not confirmed; a Paystack reference that verifies is', async () => {
    const { tenantId, invoiceId } = await paystackTenantAndInvoice(250_000);
    const activities = paystackActivities();

    const unconfirmed = await activities.confirmInvoicePaid({ tenantId, invoiceId, reference: 'never-paid' });
    expect(unconfirmed).toEqual({
      confirmed: false,
      reason: expect.stringMatching(
        /is open, NGN 0\.00 of NGN 2500\.00 paid; Paystack does not know never-paid/,
      ),
    });

    const reference = `cli-${suffix()}`;
    paystack.addTransaction({ reference, amount: 250_000, currency: 'NGN', createdAt: new Date() });
    expect(await activities.confirmInvoicePaid({ tenantId, invoiceId, reference })).toEqual({
      confirmed: true,
      detail: `Paystack confirmed the payment of invoice ${invoiceId}`,
    });
    expect(await invoiceRow(invoiceId)).toMatchObject({ status: 'paid', amount_paid_minor: 250_000 });
  });
});
