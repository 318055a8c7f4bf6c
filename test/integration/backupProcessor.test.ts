// The backup processor really used (issue 18 item 5): while a payment processor outage's `processor_route` override
// is active, "Retry Payment" and "Manual Payment Link" for a tenant on the processor that is down go through the
// backup (the local Paystack-shaped server; stripe-mock behind a recording switch), and come back once it is lifted.
// Its own database: an active route would move every other suite's Stripe payments too.
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import { createPaymentActivities, paymentReference } from '../../activities/payments';
import { createPool } from '../../db/pool';
import { createStripeGateway } from '../../drivers/stripe';
import { privateDatabase, type PrivateDatabase } from '../support/privateDatabase';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from '../support/paystackFake';
import { startStripeSwitch, type StripeSwitch } from '../support/stripeSwitch';
import { testEnv } from '../support/testRuntime';

const PORTAL = 'http://127.0.0.1:8080/billing';
const INCIDENT = 'incident-payment_processor_outage-backup-test';
const ROUTE_REASON = 'Stripe is down: new payments go to paystack';
const suffix = () => randomBytes(4).toString('hex');

let database: PrivateDatabase;
let pool: Pool;
let stripe: StripeSwitch;
let paystack: PaystackFake;

beforeAll(async () => {
  database = await privateDatabase('backup_route');
  pool = createPool(database.url, { max: 4 });
  stripe = await startStripeSwitch(testEnv('stripeApiBase'));
  paystack = await startPaystackFake();
});

afterAll(async () => {
  await pool?.end();
  await Promise.all([stripe?.close(), paystack?.close()]);
  await database?.drop();
});

beforeEach(async () => {
  stripe.mode = 'answering';
  stripe.seen.length = 0;
  paystack.reset();
  await liftRoute();
});

const activities = () =>
  createPaymentActivities({
    pool,
    billingPortalUrl: PORTAL,
    stripe: createStripeGateway({ secretKey: 'sk_test_backuproute', apiBase: stripe.url }),
    paystack: fakePaystackGateway(paystack),
  });

/** What the outage incident's "switch new payments to Paystack" step writes (setOverride). */
async function routeStripeToPaystack(): Promise<void> {
  await pool.query(
    `INSERT INTO operational_overrides (name, value, reason, workflow_id, idempotency_key, set_by)
     VALUES ('processor_route:stripe', $1::jsonb, $2, $3, $4, 'billops')`,
    [JSON.stringify({ from: 'stripe', to: 'paystack' }), ROUTE_REASON, INCIDENT, `route-${suffix()}`],
  );
}

/** What the incident's "switch new payments back to Stripe" step does (clearOverride). */
async function liftRoute(): Promise<void> {
  await pool.query(
    `UPDATE operational_overrides SET cleared_at = now(), cleared_by = 'billops'
      WHERE name = 'processor_route:stripe' AND cleared_at IS NULL`,
  );
}

/** A Pro tenant on Stripe with an open Stripe invoice; with a saved Paystack card when `authorization` is given. */
async function stripeTenant(opts: { authorization?: string; currency?: string; totalMinor?: number } = {}) {
  const tenantId = `backup-${suffix()}`;
  const currency = opts.currency ?? 'USD';
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor, paystack_authorization_code)
     VALUES ($1, 'Backup Route Ltd', 'pro', 'ops@backup.example', $2, $3, 'stripe', $4)`,
    [tenantId, `billing+${tenantId}@backup.example`, currency, opts.authorization ?? null],
  );
  const stripeInvoiceId = `in_backup${suffix()}`;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO invoices (tenant_id, processor, processor_invoice_id, period_start, period_end, status,
                           subtotal_minor, total_minor, currency, due_at)
     VALUES ($1, 'stripe', $2, now() - interval '30 days', now(), 'open', $3, $3, $4, now())
     RETURNING id`,
    [tenantId, stripeInvoiceId, opts.totalMinor ?? 4900, currency],
  );
  return { tenantId, invoiceId: rows[0]!.id, stripeInvoiceId };
}

async function transactions(invoiceId: string) {
  const { rows } = await pool.query<{
    processor: string;
    reference: string;
    status: string;
    amount_minor: number;
    currency: string;
    failure_code: string | null;
    gateway_response: string | null;
  }>(
    `SELECT processor, reference, status, amount_minor, currency, failure_code, gateway_response
       FROM payment_transactions WHERE invoice_id = $1 ORDER BY created_at`,
    [invoiceId],
  );
  return rows;
}

const invoiceStatus = async (invoiceId: string) =>
  (await pool.query<{ status: string }>('SELECT status FROM invoices WHERE id = $1', [invoiceId])).rows[0]
    ?.status;

const stripePays = () => stripe.seen.filter((r) => r.method === 'POST' && /\/pay$/.test(r.path));

jest.setTimeout(60_000);

describe('Retry Payment while Stripe is routed to Paystack', () => {
  it('charges a Stripe tenant with a saved Paystack card on Paystack, in minor units, and records why', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await stripeTenant({ authorization: code, totalMinor: 4999 });
    await routeStripeToPaystack();
    const idempotencyKey = `dunning-${tenantId}/retry-6h/${invoiceId}`;
    const reference = paymentReference(idempotencyKey);

    const result = await activities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 2,
    });

    expect(result).toEqual({ outcome: 'succeeded', reference, amountMinor: 4999, currency: 'USD' });
    expect(paystack.charges()).toEqual([
      expect.objectContaining({ reference, authorizationCode: code, amount: 4999, currency: 'USD' }),
    ]);
    const wire = paystack.requests().find((r) => r.path === '/transaction/charge_authorization');
    expect(wire?.rawBody).toContain('"amount":4999,');
    expect(stripePays()).toEqual([]);
    expect(await invoiceStatus(invoiceId)).toBe('paid');
    const [row, ...others] = await transactions(invoiceId);
    expect(others).toEqual([]);
    expect(row).toMatchObject({ processor: 'paystack', reference, status: 'success', currency: 'USD' });
    expect(Number(row!.amount_minor)).toBe(4999);
    expect(row!.gateway_response).toBe(
      `Approved (through paystack, the backup for stripe: ${ROUTE_REASON} (${INCIDENT}))`,
    );

    // Temporal retrying the activity, even after the route is lifted: the step was paid, nothing is charged again.
    await liftRoute();
    const again = await activities().retryInvoicePayment({ idempotencyKey, tenantId, invoiceId, attempt: 2 });
    expect(again).toEqual(result);
    expect(paystack.charges()).toHaveLength(1);
    expect(stripePays()).toEqual([]);
  });

  it('without a Paystack card: failed with the reason, recorded on Paystack, and a Paystack payment link offered', async () => {
    const { tenantId, invoiceId } = await stripeTenant({ totalMinor: 12_000 });
    await routeStripeToPaystack();
    const idempotencyKey = `dunning-${tenantId}/retry-24h/${invoiceId}`;
    const reference = paymentReference(idempotencyKey);

    const result = await activities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 3,
    });

    const [link] = paystack.initializations();
    expect(link).toMatchObject({
      amount: 12_000,
      currency: 'USD',
      email: `billing+${tenantId}@backup.example`,
    });
    expect(result).toEqual({
      outcome: 'failed',
      reference,
      reason:
        `no payment method on paystack (stripe is routed there: ${ROUTE_REASON}): tenant ${tenantId} has no saved ` +
        `Paystack card (paystack_authorization_code); the customer can pay and save one at ${link!.authorizationUrl}`,
    });
    expect(paystack.charges()).toEqual([]);
    expect(stripePays()).toEqual([]);
    expect(await invoiceStatus(invoiceId)).toBe('open');
    // The link's pending transaction (what charge.success will find), then the attempt itself, failed.
    const rows = await transactions(invoiceId);
    expect(rows).toEqual([
      expect.objectContaining({
        processor: 'paystack',
        reference: link!.reference,
        status: 'pending',
        amount_minor: 12_000,
      }),
      expect.objectContaining({
        processor: 'paystack',
        reference,
        status: 'failed',
        failure_code: 'no_payment_method',
      }),
    ]);
    expect(rows[1]!.gateway_response).toBe(result.outcome === 'failed' ? result.reason : '');

    // The lifecycle's Manual Payment Link hands out the same Paystack link while the route holds.
    const offered = await activities().createPaymentLink({
      tenantId,
      invoiceId,
      idempotencyKey: `dunning-${tenantId}/payment-link/${invoiceId}`,
    });
    expect(offered).toEqual({ url: link!.authorizationUrl });
    expect(paystack.initializations()).toHaveLength(1);

    // The route is lifted: the same step goes back to Stripe (the Paystack attempt charged nothing).
    await liftRoute();
    const back = await activities().retryInvoicePayment({ idempotencyKey, tenantId, invoiceId, attempt: 3 });
    expect(back).toMatchObject({ outcome: 'succeeded', reference, amountMinor: 12_000 });
    expect(stripePays().map((r) => r.idempotencyKey)).toEqual([reference]);
    expect(paystack.charges()).toEqual([]);
    expect(await invoiceStatus(invoiceId)).toBe('paid');
  });

  it('refuses a currency the backup does not take, with the reason, and charges nothing', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await stripeTenant({ authorization: code, currency: 'EUR' });
    await routeStripeToPaystack();
    const idempotencyKey = `dunning-${tenantId}/retry-0h/${invoiceId}`;

    const result = await activities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 1,
    });

    expect(result).toMatchObject({ outcome: 'failed', reference: paymentReference(idempotencyKey) });
    expect(result.outcome === 'failed' && result.reason).toMatch(
      /^paystack \(the backup for stripe\) does not take EUR \(it takes .*USD.*\): /,
    );
    expect(paystack.charges()).toEqual([]);
    expect(paystack.initializations()).toEqual([]);
    expect(stripePays()).toEqual([]);
    expect(await transactions(invoiceId)).toEqual([
      expect.objectContaining({
        processor: 'paystack',
        status: 'failed',
        failure_code: 'currency_not_supported',
      }),
    ]);
  });

  it('a step whose charge already went to Stripe stays on Stripe under its key when the route begins', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId } = await stripeTenant({ authorization: code });
    const idempotencyKey = `dunning-${tenantId}/retry-0h/${invoiceId}`;
    const reference = paymentReference(idempotencyKey);
    // The first attempt opened its Stripe row and met Stripe's 503; Stripe may have taken it, so the key stays there.
    await pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'stripe', $3, 'pending', 4900, 'USD')`,
      [tenantId, invoiceId, reference],
    );
    await routeStripeToPaystack();

    const result = await activities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 1,
    });

    expect(result).toMatchObject({ outcome: 'succeeded', reference });
    expect(stripePays().map((r) => r.idempotencyKey)).toEqual([reference]);
    expect(paystack.charges()).toEqual([]);
    // The lifecycle's next step is a new occurrence: it goes to Paystack.
    await pool.query(
      `UPDATE invoices SET status = 'open', amount_paid_minor = 0, paid_at = NULL WHERE id = $1`,
      [invoiceId],
    );
    const next = `dunning-${tenantId}/retry-6h/${invoiceId}`;
    const second = await activities().retryInvoicePayment({
      idempotencyKey: next,
      tenantId,
      invoiceId,
      attempt: 2,
    });
    expect(second).toMatchObject({ outcome: 'succeeded', reference: paymentReference(next) });
    expect(paystack.charges().map((c) => c.reference)).toEqual([paymentReference(next)]);
    expect(stripePays()).toHaveLength(1);
  });
});

describe('payments back on Stripe once the route is lifted', () => {
  it('charges Stripe again, and Manual Payment Link gives the Stripe page instead of a Paystack link', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const { tenantId, invoiceId, stripeInvoiceId } = await stripeTenant({ authorization: code });
    const linkKey = `dunning-${tenantId}/payment-link/${invoiceId}`;
    await routeStripeToPaystack();
    const during = await activities().createPaymentLink({ tenantId, invoiceId, idempotencyKey: linkKey });
    expect(during.url).toBe(paystack.initializations()[0]?.authorizationUrl);

    await liftRoute();
    const after = await activities().createPaymentLink({ tenantId, invoiceId, idempotencyKey: linkKey });
    // Stripe's own answer again: stripe-mock's fixture invoice is a draft without a hosted page, so the portal.
    expect(after.url).toBe(PORTAL);
    expect(stripe.seen.map((r) => `${r.method} ${r.path}`)).toContain(`GET /v1/invoices/${stripeInvoiceId}`);
    const idempotencyKey = `dunning-${tenantId}/retry-48h/${invoiceId}`;
    const result = await activities().retryInvoicePayment({
      idempotencyKey,
      tenantId,
      invoiceId,
      attempt: 4,
    });
    expect(result).toMatchObject({ outcome: 'succeeded', reference: paymentReference(idempotencyKey) });
    expect(stripePays().map((r) => r.path)).toEqual([`/v1/invoices/${stripeInvoiceId}/pay`]);
    expect(paystack.charges()).toEqual([]);
    expect((await transactions(invoiceId)).find((r) => r.status === 'success')?.processor).toBe('stripe');
  });
});
