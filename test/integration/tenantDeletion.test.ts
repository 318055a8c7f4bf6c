// Tenant deletion against real PostgreSQL, stripe-mock (behind a recording proxy) and the Paystack-shaped server: the
// guard re-checked in the database, legal holds through the CLI, the scrub of kept records, provider charges stopped.
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import {
  createTenantDataActivities,
  describeDeletion,
  type DeleteTenantDataRequest,
} from '../../activities/tenantData';
import { createPool } from '../../db/pool';
import { createPaystackGateway } from '../../drivers/paystack';
import { createStripeGateway } from '../../drivers/stripe';
import { formatDecisionLine, parseDecisionLine } from '../../domain/decisions';
import { operatorCli, TEST_OPERATOR } from '../support/billopsCli';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from '../support/paystackFake';
import { startStripeSwitch, type StripeSwitch } from '../support/stripeSwitch';
import { testEnv } from '../support/testRuntime';

const STRIPE_TEST_KEY = 'sk_test_billopsdeletion00000000000';
const POLICY_DAYS = 90;
const suffix = () => randomBytes(4).toString('hex');

let pool: Pool;
let paystack: PaystackFake;
/** stripe-mock, every request noted (method, path, Idempotency-Key, status). */
let proxy: StripeSwitch;
const billops = operatorCli(`tenant-deletion-${Date.now()}`);

beforeAll(async () => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  paystack = await startPaystackFake();
  proxy = await startStripeSwitch(testEnv('stripeApiBase'));
});

afterAll(async () => {
  await Promise.all([pool.end(), paystack.close(), proxy.close()]);
});

const activities = () =>
  createTenantDataActivities({
    pool,
    stripe: createStripeGateway({ secretKey: STRIPE_TEST_KEY, apiBase: proxy.url }),
    paystack: fakePaystackGateway(paystack),
  });

async function insertTenant(
  opts: { stripeCustomerId?: string; paystackAuthorization?: string } = {},
): Promise<string> {
  const id = `deltest-${suffix()}`;
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor, stripe_customer_id,
                          paystack_customer_code, paystack_authorization_code)
     VALUES ($1, 'Ada Lovelace Analytics', 'pro', 'ada@lovelace.example', 'billing@lovelace.example', 'USD', $2, $3,
             $4, $5)`,
    [
      id,
      opts.paystackAuthorization ? 'paystack' : 'stripe',
      opts.stripeCustomerId ?? null,
      opts.paystackAuthorization ? `CUS_${id}` : null,
      opts.paystackAuthorization ?? null,
    ],
  );
  return id;
}

/**
 * The dunning hold as the lifecycle leaves it: restricted (soft limit) `limitedDaysAgo`, suspended `suspendedDaysAgo`,
 * with the history rows its changes wrote.
 */
async function suspendByDunning(
  tenantId: string,
  suspendedDaysAgo: number,
  limitedDaysAgo = suspendedDaysAgo + 7,
): Promise<void> {
  const workflowId = `dunning-${tenantId}`;
  const soft = { rateLimitPercent: 10, apiBlocked: false, suspended: false, readOnly: false };
  const suspended = { rateLimitPercent: 0, apiBlocked: true, suspended: true, readOnly: false };
  await pool.query(
    `INSERT INTO service_control_holds
       (tenant_id, source, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, held_by, since)
     VALUES ($1, 'dunning', 0, true, true, false, 'Suspension', $2, 'billops', now() - make_interval(days => $3))`,
    [tenantId, workflowId, limitedDaysAgo],
  );
  const change = `INSERT INTO service_control_hold_changes
      (tenant_id, source, before, after, enforced_before, enforced_after, reason, workflow_id, changed_by, changed_at)
    VALUES ($1, 'dunning', $2::jsonb, $3::jsonb, $4::jsonb, $3::jsonb, $5, $6, 'billops',
            now() - make_interval(days => $7))`;
  const normal = { rateLimitPercent: 100, apiBlocked: false, suspended: false, readOnly: false };
  await pool.query(change, [
    tenantId,
    null,
    JSON.stringify(soft),
    JSON.stringify(normal),
    'Soft Limit',
    workflowId,
    limitedDaysAgo,
  ]);
  await pool.query(change, [
    tenantId,
    JSON.stringify(soft),
    JSON.stringify(suspended),
    JSON.stringify(soft),
    'Suspension',
    workflowId,
    suspendedDaysAgo,
  ]);
}

/** An unpaid invoice with its Stripe-hosted payment page, and a usage event, as a suspended tenant has. */
async function seedOwedInvoice(tenantId: string): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO invoices (tenant_id, period_start, period_end, status, subtotal_minor, total_minor, currency,
                           hosted_invoice_url, processor, processor_invoice_id)
     VALUES ($1, '2026-05-01T00:00:00Z', '2026-06-01T00:00:00Z', 'open', 4900, 4900, 'USD',
             'https://invoice.stripe.com/i/acct_1/test_' || $1, 'stripe', 'in_' || $1) RETURNING id`,
    [tenantId],
  );
  await pool.query(
    `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key)
     VALUES ($1, 'api_calls', 10, '2026-05-02T10:00:00Z', 'ev-1')`,
    [tenantId],
  );
  return rows[0]?.id ?? '';
}

function request(tenantId: string): DeleteTenantDataRequest {
  return {
    tenantId,
    workflowId: `dunning-${tenantId}`,
    operator: 'billops',
    reason: `Data Retention: ${POLICY_DAYS} days after suspension`,
    requiredSuspendedDays: POLICY_DAYS,
  };
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

async function countRows(table: string, tenantId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1`,
    [tenantId],
  );
  return rows[0]?.n ?? 0;
}

async function deletedAt(tenantId: string): Promise<Date | null> {
  const { rows } = await pool.query<{ deleted_at: Date | null }>(
    'SELECT deleted_at FROM tenants WHERE id = $1',
    [tenantId],
  );
  return rows[0]?.deleted_at ?? null;
}

/** A refusal leaves everything as it was: usage kept, tenant not scrubbed. */
async function expectUntouched(tenantId: string): Promise<void> {
  expect(await countRows('usage_events', tenantId)).toBe(1);
  expect(await deletedAt(tenantId)).toBeNull();
}

describe('deleteTenantData: the guard re-checked in the database', () => {
  it('refuses a tenant that is not suspended now, deleting nothing', async () => {
    const tenantId = await insertTenant();
    await seedOwedInvoice(tenantId);

    const failure = await failureOf(activities().deleteTenantData(request(tenantId)));

    expect(failure).toMatchObject({ type: 'DeletionRefused', nonRetryable: true });
    expect(failure.message).toContain('is not suspended now');
    await expectUntouched(tenantId);
  });

  it("refuses a tenant suspended for less than the policy's days, counted from the suspension, not the soft limit", async () => {
    const tenantId = await insertTenant();
    await seedOwedInvoice(tenantId);
    // Restricted 100 days ago, suspended 85 days ago: 90 days after suspension is 5 days away.
    await suspendByDunning(tenantId, 85, 100);

    const failure = await failureOf(activities().deleteTenantData(request(tenantId)));

    expect(failure).toMatchObject({ type: 'DeletionRefused', nonRetryable: true });
    expect(failure.message).toContain('(85 days)');
    expect(failure.message).toContain(`only after ${POLICY_DAYS} days`);
    await expectUntouched(tenantId);
  });

  it('refuses a tenant that owes nothing any more: the lifecycle should recover', async () => {
    const tenantId = await insertTenant();
    const invoiceId = await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    await pool.query(
      "UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = now() WHERE id = $1",
      [invoiceId],
    );

    const failure = await failureOf(activities().deleteTenantData(request(tenantId)));

    expect(failure).toMatchObject({ type: 'DeletionRefused', nonRetryable: true });
    expect(failure.message).toContain('nothing is owed: the lifecycle should recover, not delete');
    await expectUntouched(tenantId);
  });

  it('refuses a request without the policy days', async () => {
    const tenantId = await insertTenant();
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    const { requiredSuspendedDays: _omitted, ...old } = request(tenantId);

    const failure = await failureOf(activities().deleteTenantData(old as unknown as DeleteTenantDataRequest));

    expect(failure).toMatchObject({ type: 'DeletionRefused', nonRetryable: true });
    expect(failure.message).toContain('requiredSuspendedDays');
    await expectUntouched(tenantId);
  });

  it('keeps TenantUnknown for a tenant that does not exist', async () => {
    const failure = await failureOf(activities().deleteTenantData(request(`nobody-${suffix()}`)));
    expect(failure).toMatchObject({ type: 'TenantUnknown', nonRetryable: true });
  });

  it('refuses under a legal hold placed with the CLI, naming it and how to release it; after release it deletes', async () => {
    const tenantId = await insertTenant();
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);

    const placed = await billops(
      'tenants',
      'hold',
      tenantId,
      '--reason',
      'litigation 2026-17: preserve records',
    );
    expect(placed).toMatchObject({ code: 0 });
    expect(placed.stdout).toContain(`placed a legal hold on ${tenantId}`);

    const listed = await billops('tenants', 'holds', '--json');
    expect(listed.code).toBe(0);
    const mine = (JSON.parse(listed.stdout) as Array<Record<string, unknown>>).filter(
      (h) => h.tenantId === tenantId,
    );
    expect(mine).toEqual([
      expect.objectContaining({
        tenantId,
        reason: 'litigation 2026-17: preserve records',
        operator: TEST_OPERATOR,
        releasedAt: null,
      }),
    ]);
    const text = await billops('tenants', 'holds');
    expect(text.stdout.split('\n').find((l) => l.startsWith(tenantId))).toContain('litigation 2026-17');

    const failure = await failureOf(activities().deleteTenantData(request(tenantId)));
    expect(failure).toMatchObject({ type: 'DeletionRefused', nonRetryable: true });
    expect(failure.message).toContain('legal hold');
    expect(failure.message).toContain('litigation 2026-17: preserve records');
    expect(failure.message).toContain(TEST_OPERATOR);
    expect(failure.message).toContain(`billops tenants hold ${tenantId} --release`);
    await expectUntouched(tenantId);

    const released = await billops(
      'tenants',
      'hold',
      tenantId,
      '--release',
      '--reason',
      'case closed',
      '--json',
    );
    expect(released.code).toBe(0);
    expect(JSON.parse(released.stdout)).toMatchObject({
      tenantId,
      releasedBy: TEST_OPERATOR,
      releaseReason: 'case closed',
      releasedAt: expect.stringMatching(/^\d{4}-/),
    });
    const after = await billops('tenants', 'holds', '--json');
    expect(
      (JSON.parse(after.stdout) as Array<{ tenantId: string }>).some((h) => h.tenantId === tenantId),
    ).toBe(false);

    const result = await activities().deleteTenantData(request(tenantId));
    expect(result.deleted.usage_events).toBe(1);
    expect(await deletedAt(tenantId)).toBeInstanceOf(Date);

    // The record of the hold stays; a hold on deleted data is refused.
    expect(await countRows('legal_holds', tenantId)).toBe(1);
    const late = await billops('tenants', 'hold', tenantId, '--reason', 'too late');
    expect(late.code).toBe(1);
    expect(late.stderr).toContain('was deleted');
  });

  it('answers the CLI mistakes with exit 1 (not found, refused) and 2 (bad arguments)', async () => {
    const tenantId = await insertTenant();

    const unknown = await billops('tenants', 'hold', `nobody-${suffix()}`, '--reason', 'x');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no tenant nobody-/);

    const noReason = await billops('tenants', 'hold', tenantId);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason');

    const nothingToRelease = await billops('tenants', 'hold', tenantId, '--release', '--reason', 'x');
    expect(nothingToRelease.code).toBe(1);
    expect(nothingToRelease.stderr).toContain('no active legal hold');

    expect((await billops('tenants', 'hold', tenantId, '--reason', 'audit')).code).toBe(0);
    const twice = await billops('tenants', 'hold', tenantId, '--reason', 'another matter');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('already on legal hold');
    expect(twice.stderr).toContain('audit');
  });
});

describe('deleteTenantData: complete', () => {
  it('scrubs personal data from stored webhook payloads and payment links, keeps amounts and ids, says what it kept', async () => {
    const tenantId = await insertTenant({ stripeCustomerId: `cus_${suffix()}` });
    const invoiceId = await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    const eventKey = `evt_${suffix()}`;
    const payload = {
      id: eventKey,
      type: 'invoice.payment_failed',
      created: 1780000000,
      data: {
        object: {
          id: `in_${tenantId}`,
          object: 'invoice',
          amount_due: 4900,
          currency: 'usd',
          status: 'open',
          customer: 'cus_x',
          customer_email: 'ada@lovelace.example',
          customer_name: 'Ada Lovelace',
          customer_phone: '+44 20 7946 0000',
          customer_address: { line1: '12 St James Square', city: 'London' },
          hosted_invoice_url: 'https://invoice.stripe.com/i/acct_1/secretpage',
          metadata: { tenant_id: tenantId, contact: 'Ada Lovelace' },
          charge: {
            id: 'ch_1',
            amount: 4900,
            billing_details: { name: 'Ada Lovelace', email: 'ada@lovelace.example' },
          },
        },
      },
    };
    const rawBody = Buffer.from(JSON.stringify(payload));
    await pool.query(
      `INSERT INTO webhook_events (provider, event_key, event_type, tenant_id, payload, signature_valid, status,
                                   processed_at, raw_body)
       VALUES ('stripe', $1, 'invoice.payment_failed', $2, $3::jsonb, true, 'processed', now(), $4)`,
      [eventKey, tenantId, JSON.stringify(payload), rawBody],
    );

    const result = await activities().deleteTenantData(request(tenantId));

    expect(result.deleted).toMatchObject({ usage_events: 1 });
    expect(result.scrubbed).toEqual({ webhook_events: 1, invoices: 1, tenants: 1 });
    expect(result.kept.map((k) => k.table)).toEqual(
      expect.arrayContaining([
        'invoices',
        'payment_transactions',
        'credits_adjustments',
        'subscriptions',
        'decisions',
        'dunning_records',
        'webhook_events',
      ]),
    );
    for (const kept of result.kept) expect(kept.why.length).toBeGreaterThan(10);

    const { rows } = await pool.query<{ payload: typeof payload; raw_body: Buffer | null }>(
      'SELECT payload, raw_body FROM webhook_events WHERE provider = $1 AND event_key = $2',
      ['stripe', eventKey],
    );
    const stored = rows[0];
    const text = JSON.stringify(stored?.payload);
    for (const personal of ['ada@lovelace.example', 'Ada Lovelace', '+44 20', 'St James', 'secretpage']) {
      expect(text).not.toContain(personal);
    }
    expect(stored?.raw_body).toBeNull();
    expect(stored?.payload).toMatchObject({
      id: eventKey,
      type: 'invoice.payment_failed',
      created: 1780000000,
      data: {
        object: {
          id: `in_${tenantId}`,
          amount_due: 4900,
          currency: 'usd',
          status: 'open',
          metadata: { tenant_id: tenantId },
          charge: { id: 'ch_1', amount: 4900 },
        },
      },
    });

    const invoice = await pool.query<{ hosted_invoice_url: string | null; total_minor: number }>(
      'SELECT hosted_invoice_url, total_minor FROM invoices WHERE id = $1',
      [invoiceId],
    );
    expect(invoice.rows[0]).toEqual({ hosted_invoice_url: null, total_minor: 4900 });

    // The DECISIONS.log resolution: counts, what was kept and why, and a line the log format accepts.
    const resolution = describeDeletion(result);
    expect(resolution).toContain('1 usage_events');
    expect(resolution).toContain('1 webhook_events');
    expect(resolution).toContain('payment_transactions');
    expect(resolution.length).toBeLessThan(400);
    const line = formatDecisionLine({
      timestamp: new Date().toISOString(),
      operator: 'billops',
      incidentType: 'dunning_data_deletion',
      tenants: 1,
      impact: 'service; USD 49.00 uncollected',
      resolution,
      credits: null,
      executor: 'billops',
    });
    expect(parseDecisionLine(line).resolution).toBe(resolution);

    // Already deleted: the previous outcome, with nothing left to do, even though the debt has since been settled.
    await pool.query(
      "UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = now() WHERE id = $1",
      [invoiceId],
    );
    const again = await activities().deleteTenantData(request(tenantId));
    expect(Object.values(again.deleted).every((n) => n === 0)).toBe(true);
    expect(Object.values(again.scrubbed).every((n) => n === 0)).toBe(true);
    expect(describeDeletion(again)).toContain('nothing left to delete');
  });
});

describe('stopProviderCharges', () => {
  beforeEach(() => {
    proxy.seen.length = 0;
    paystack.reset();
  });

  it("Stripe: cancels the customer's subscriptions and detaches its payment methods under derived idempotency keys", async () => {
    const customer = `cus_${suffix()}`;
    const tenantId = await insertTenant({ stripeCustomerId: customer });
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    const idempotencyKey = `dunning-${tenantId}/run-1/stop-charges`;

    const stopped = await activities().stopProviderCharges({
      tenantId,
      workflowId: `dunning-${tenantId}`,
      idempotencyKey,
    });

    const cancels = proxy.seen.filter(
      (r) => r.method === 'DELETE' && r.path.startsWith('/v1/subscriptions/'),
    );
    const detaches = proxy.seen.filter((r) => /^\/v1\/payment_methods\/[^/]+\/detach/.test(r.path));
    expect(stopped.stripe?.subscriptionsCancelled.length).toBeGreaterThan(0);
    expect(stopped.stripe?.paymentMethodsDetached.length).toBeGreaterThan(0);
    expect(cancels.map((r) => r.path.split('?')[0]?.split('/')[3])).toEqual(
      stopped.stripe?.subscriptionsCancelled,
    );
    expect(detaches.map((r) => r.path.split('/')[3])).toEqual(stopped.stripe?.paymentMethodsDetached);
    for (const r of [...cancels, ...detaches])
      expect(r.idempotencyKey).toMatch(new RegExp(`^${idempotencyKey}/`));
    const lists = proxy.seen.filter((r) => r.method === 'GET').map((r) => r.path);
    expect(lists.some((p) => p.startsWith('/v1/subscriptions?') && p.includes(customer))).toBe(true);
    expect(lists.some((p) => p.startsWith(`/v1/customers/${customer}/payment_methods`))).toBe(true);
    expect(stopped.paystack).toBeUndefined();
    expect(stopped.summary).toMatch(
      /^Stripe: \d+ subscription\(s\) cancelled, \d+ payment method\(s\) detached$/,
    );

    // A retry sends the same keys: Stripe answers it as the first time, so nothing happens twice.
    const firstKeys = [...cancels, ...detaches].map((r) => r.idempotencyKey);
    proxy.seen.length = 0;
    await activities().stopProviderCharges({ tenantId, workflowId: `dunning-${tenantId}`, idempotencyKey });
    expect(proxy.seen.filter((r) => r.method !== 'GET').map((r) => r.idempotencyKey)).toEqual(firstKeys);
  });

  it('Stripe answering 401 is a non-retryable ProcessorAuthFailed that never shows the key', async () => {
    const tenantId = await insertTenant({ stripeCustomerId: `cus_${suffix()}` });
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    const wrongKey = 'sk_live_wrongdeletionkey00000000';
    const tenantData = createTenantDataActivities({
      pool,
      stripe: createStripeGateway({ secretKey: wrongKey, apiBase: proxy.url }),
    });

    const failure = await failureOf(
      tenantData.stopProviderCharges({ tenantId, workflowId: `dunning-${tenantId}`, idempotencyKey: 'k' }),
    );

    expect(failure).toMatchObject({ type: 'ProcessorAuthFailed', nonRetryable: true });
    expect(failure.message).toContain('STRIPE_SECRET_KEY');
    expect(failure.message).not.toContain('wrongdeletionkey');
  });

  it('Paystack: deactivates the saved card, which the processor then refuses to charge; a second run is harmless', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const tenantId = await insertTenant({ paystackAuthorization: code });
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    const req = { tenantId, workflowId: `dunning-${tenantId}`, idempotencyKey: `dunning-${tenantId}/stop` };

    const stopped = await activities().stopProviderCharges(req);

    expect(stopped).toEqual({
      paystack: { authorizationDeactivated: true },
      summary: 'Paystack: saved card deactivated',
    });
    expect(paystack.deactivations()).toEqual([code]);
    const [call] = paystack.requests();
    expect(call).toMatchObject({
      method: 'POST',
      path: '/customer/authorization/deactivate',
      authorization: `Bearer ${paystack.secretKey}`,
      status: 200,
    });
    expect(JSON.parse(call?.rawBody ?? '{}')).toEqual({ authorization_code: code });

    const charge = await fakePaystackGateway(paystack).chargeAuthorization({
      authorizationCode: code,
      email: 'billing@lovelace.example',
      amountMinor: 4900,
      currency: 'USD',
      reference: `ref-${suffix()}`,
    });
    expect(charge).toMatchObject({ status: 'failed', decline: { kind: 'hard' } });
    expect(paystack.charges()).toEqual([]);

    const again = await activities().stopProviderCharges(req);
    expect(again).toEqual({
      paystack: { authorizationDeactivated: true },
      summary: 'Paystack: saved card already inactive',
    });
    expect(paystack.deactivations()).toEqual([code]);
  });

  it('the Paystack server checks the bearer key and refuses an unknown authorization code', async () => {
    const wrong = createPaystackGateway({
      secretKey: 'sk_test_wrong',
      baseUrl: paystack.url,
      timeoutSeconds: 5,
    });
    const failure = await failureOf(
      wrong.request('POST', '/customer/authorization/deactivate', { authorization_code: 'AUTH_x' }),
    );
    expect(failure).toMatchObject({ type: 'ProcessorAuthFailed', nonRetryable: true });
    expect(failure.message).not.toContain('sk_test_wrong');

    const unknown = await fakePaystackGateway(paystack).request(
      'POST',
      '/customer/authorization/deactivate',
      {
        authorization_code: `AUTH_unknown_${suffix()}`,
      },
    );
    expect(unknown).toEqual({
      httpStatus: 400,
      envelope: { status: false, message: 'Authorization code does not exist or has been deactivated' },
    });
    expect(paystack.deactivations()).toEqual([]);
  });

  it('a Paystack that cannot be reached is retryable', async () => {
    const code = `AUTH_${suffix()}`;
    const tenantId = await insertTenant({ paystackAuthorization: code });
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    const closed = await startPaystackFake();
    const url = closed.url;
    await closed.close();
    const tenantData = createTenantDataActivities({
      pool,
      paystack: createPaystackGateway({ secretKey: 'sk_test_x', baseUrl: url, timeoutSeconds: 2 }),
    });

    const failure = await failureOf(
      tenantData.stopProviderCharges({ tenantId, workflowId: `dunning-${tenantId}`, idempotencyKey: 'k' }),
    );

    expect(failure).toMatchObject({ type: 'ProcessorUnavailable', nonRetryable: false });
  });

  it('refuses before touching a processor when the deletion guard does not hold (legal hold)', async () => {
    const code = `AUTH_${suffix()}`;
    paystack.authorize(code, { outcome: 'success' });
    const tenantId = await insertTenant({ paystackAuthorization: code });
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);
    await pool.query(
      "INSERT INTO legal_holds (tenant_id, reason, operator) VALUES ($1, 'regulator inquiry', 'counsel')",
      [tenantId],
    );

    const failure = await failureOf(
      activities().stopProviderCharges({ tenantId, workflowId: `dunning-${tenantId}`, idempotencyKey: 'k' }),
    );

    expect(failure).toMatchObject({ type: 'DeletionRefused', nonRetryable: true });
    expect(failure.message).toContain('regulator inquiry');
    expect(paystack.requests()).toEqual([]);
  });

  it('a tenant with no processor ids has nothing to stop, and says so', async () => {
    const tenantId = await insertTenant();
    await seedOwedInvoice(tenantId);
    await suspendByDunning(tenantId, 91);

    const stopped = await activities().stopProviderCharges({
      tenantId,
      workflowId: `dunning-${tenantId}`,
      idempotencyKey: 'k',
    });

    expect(stopped).toEqual({ summary: expect.stringContaining('nothing to stop') });
    expect(proxy.seen).toEqual([]);
    expect(paystack.requests()).toEqual([]);
  });
});
