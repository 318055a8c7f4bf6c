// `billops webhooks retry` and `billops reconcile` as an operator runs them: bin/billops in its own process, against a
// private database (so no other suite's events or transactions are in the window), the shared dev server, stripe-mock
// and the Paystack-shaped fake.
import { randomUUID } from 'node:crypto';
import { Client as TemporalClient, Connection, WorkflowNotFoundError } from '@temporalio/client';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { STRIPE_API_VERSION, stripeHostOptions } from '../../drivers/stripe';
import { dunningWorkflowId } from '../../temporal/dunning';
import type { ReplayReport } from '../../paymentEvents/replay';
import { createPaystackGateway } from '../../drivers/paystack';
import { paystackLedger } from '../../paymentEvents/ledgers';
import { reconcileDay, type ReconcileReport, type ReconcileRow } from '../../cli/reconcile/report';
import { createPool } from '../../db/pool';
import { operatorEnv, runBillops } from '../support/billopsCli';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { startPaystackFake, type PaystackFake } from '../support/paystackFake';
import { privateDatabase, type PrivateDatabase } from '../support/privateDatabase';
import { testEnv } from '../support/testRuntime';

const DAY_MS = 86_400_000;
const STRIPE_KEY = 'sk_test_reconcileCli123';

const unique = () => randomUUID().replace(/-/g, '').slice(0, 12);
const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('billops webhooks retry and billops reconcile', () => {
  const taskQueue = `cli-webhooks-${unique()}`;
  let database: PrivateDatabase;
  let pool: Pool;
  let temporal: TemporalClient;
  let paystack: PaystackFake;
  const workflowIds = new Set<string>();

  /** bin/billops with only the environment an operator would set, on this suite's database, plus `env`. */
  const billops = (args: string[], env: Record<string, string> = {}) =>
    runBillops(args, operatorEnv(taskQueue, { DATABASE_URL: database.url, ...env }), 90_000);

  beforeAll(async () => {
    database = await privateDatabase('cliwr');
    pool = createPool(database.url, { max: 4 });
    temporal = new TemporalClient({
      connection: await Connection.connect({ address: testEnv('temporalAddress') }),
    });
    paystack = await startPaystackFake();
  });

  afterAll(async () => {
    for (const workflowId of workflowIds) {
      await temporal?.workflow
        .getHandle(workflowId)
        .terminate('cli webhooks/reconcile test done')
        .catch(() => undefined);
    }
    await temporal?.connection.close();
    await paystack?.close();
    await pool?.end();
    await database?.drop();
  });

  // ---- webhooks retry ----

  interface StoredEvent {
    provider: 'stripe' | 'paystack';
    key: string;
    type: string;
    payload: Record<string, unknown>;
    status: 'failed' | 'processing' | 'received';
    /** A PostgreSQL interval before now(). */
    receivedAgo: string;
    claimedAgo?: string;
  }

  /** A verified event the ingress stored and could not finish, as webhook_events holds it. */
  async function storeEvent(e: StoredEvent): Promise<void> {
    await pool.query(
      `INSERT INTO webhook_events
         (provider, event_key, event_type, payload, signature_valid, status, attempts, error, received_at, claimed_at)
       VALUES ($1, $2, $3, $4::jsonb, true, $5, 1, $6, now() - $7::interval, now() - $8::interval)`,
      [
        e.provider,
        e.key,
        e.type,
        JSON.stringify(e.payload),
        e.status,
        e.status === 'failed' ? 'Error: Temporal did not answer within 10 s' : null,
        e.receivedAgo,
        e.claimedAgo ?? null,
      ],
    );
  }

  function stripeFailedInvoice(eventId: string, tenantId: string, invoiceId: string, amountDue = 4900) {
    const start = nowSeconds() - 30 * 86_400;
    return {
      id: eventId,
      object: 'event',
      type: 'invoice.payment_failed',
      created: nowSeconds() - 7200,
      data: {
        object: {
          id: invoiceId,
          object: 'invoice',
          customer: `cus_${unique()}`,
          metadata: { tenant_id: tenantId },
          amount_due: amountDue,
          currency: 'usd',
          status: 'open',
          period_start: start,
          period_end: start + 30 * 86_400,
        },
      },
    };
  }

  async function eventRow(provider: string, key: string) {
    const { rows } = await pool.query<{ status: string; attempts: number; tenant_id: string | null }>(
      'SELECT status, attempts, tenant_id FROM webhook_events WHERE provider = $1 AND event_key = $2',
      [provider, key],
    );
    return rows[0];
  }

  function dunningOf(tenantId: string) {
    const workflowId = dunningWorkflowId(tenantId);
    workflowIds.add(workflowId);
    return temporal.workflow.getHandle(workflowId);
  }

  /** paymentFailed signals the lifecycle received: one per event acted on, however often it is retried. */
  async function signalsReceived(tenantId: string): Promise<number> {
    const history = await dunningOf(tenantId).fetchHistory();
    return (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes).length;
  }

  const eventA = { key: `evt_${unique()}`, invoice: `in_${unique()}` };
  const eventB = { key: `evt_${unique()}`, invoice: `in_${unique()}` };
  const liveKey = `evt_${unique()}`;
  const oldKey = `evt_${unique()}`;
  let tenantA: TestTenant;
  let tenantB: TestTenant;
  let tenantOld: TestTenant;

  it('retries a failed event from 2 h ago and an abandoned claim once: dunning starts, rows become processed', async () => {
    [tenantA, tenantB, tenantOld] = await Promise.all([
      insertTenant(pool, 'pro'),
      insertTenant(pool, 'pro'),
      insertTenant(pool, 'pro'),
    ]);
    const live = await insertTenant(pool, 'pro');
    await storeEvent({
      provider: 'stripe',
      key: eventA.key,
      type: 'invoice.payment_failed',
      payload: stripeFailedInvoice(eventA.key, tenantA.id, eventA.invoice),
      status: 'failed',
      receivedAgo: '2 hours',
    });
    // A delivery that crashed 10 minutes ago while acting: its claim outlived the 60 s lease.
    await storeEvent({
      provider: 'stripe',
      key: eventB.key,
      type: 'invoice.payment_failed',
      payload: stripeFailedInvoice(eventB.key, tenantB.id, eventB.invoice, 12_000),
      status: 'processing',
      receivedAgo: '3 hours',
      claimedAgo: '10 minutes',
    });
    // A delivery acting right now, and a failure outside the 24 h asked for: neither is touched.
    await storeEvent({
      provider: 'stripe',
      key: liveKey,
      type: 'invoice.payment_failed',
      payload: stripeFailedInvoice(liveKey, live.id, `in_${unique()}`),
      status: 'processing',
      receivedAgo: '90 minutes',
      claimedAgo: '0 seconds',
    });
    await storeEvent({
      provider: 'stripe',
      key: oldKey,
      type: 'invoice.payment_failed',
      payload: stripeFailedInvoice(oldKey, tenantOld.id, `in_${unique()}`),
      status: 'failed',
      receivedAgo: '30 hours',
    });

    const run = await billops(['webhooks', 'retry', '--hours', '24', '--json']);

    expect(run).toMatchObject({ code: 0, stderr: '' });
    const report = JSON.parse(run.stdout) as ReplayReport;
    expect(report).toMatchObject({ hours: 24, retryWindowDays: 7 });
    // Oldest first, each through the ingress's own path: the lifecycle of the tenant the event names.
    expect(report.events).toEqual([
      expect.objectContaining({
        provider: 'stripe',
        eventKey: eventB.key,
        previousStatus: 'processing',
        outcome: 'processed',
        tenantId: tenantB.id,
        workflowId: dunningWorkflowId(tenantB.id),
        attempts: 2,
      }),
      expect.objectContaining({
        provider: 'stripe',
        eventKey: eventA.key,
        previousStatus: 'failed',
        outcome: 'processed',
        tenantId: tenantA.id,
        workflowId: dunningWorkflowId(tenantA.id),
        attempts: 2,
      }),
    ]);
    expect(report.totals).toEqual({ ok: 2, failing: 0, expired: 0, skipped: 0 });

    for (const tenant of [tenantA, tenantB]) {
      const description = await dunningOf(tenant.id).describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.taskQueue).toBe(taskQueue);
      const attribute = description.typedSearchAttributes.getAll().find((p) => p.key.name === 'TenantId');
      expect(attribute?.value).toBe(tenant.id);
      expect(await signalsReceived(tenant.id)).toBe(1);
    }
    expect(await eventRow('stripe', eventA.key)).toEqual({
      status: 'processed',
      attempts: 2,
      tenant_id: tenantA.id,
    });
    expect(await eventRow('stripe', eventB.key)).toEqual({
      status: 'processed',
      attempts: 2,
      tenant_id: tenantB.id,
    });
    // Our invoice was recorded from the stored event's amount_due, in minor units.
    const { rows } = await pool.query<{ tenant_id: string; total_minor: number; status: string }>(
      `SELECT tenant_id, total_minor, status FROM invoices WHERE processor = 'stripe' AND processor_invoice_id = $1`,
      [eventB.invoice],
    );
    expect(rows).toEqual([{ tenant_id: tenantB.id, total_minor: 12_000, status: 'open' }]);

    expect(await eventRow('stripe', liveKey)).toMatchObject({ status: 'processing', attempts: 1 });
    expect(await eventRow('stripe', oldKey)).toMatchObject({ status: 'failed', attempts: 1 });
    await expect(temporal.workflow.getHandle(dunningWorkflowId(live.id)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    // The live delivery finishes on its own.
    await pool.query(
      `UPDATE webhook_events SET status = 'processed', processed_at = now(), claimed_at = NULL WHERE event_key = $1`,
      [liveKey],
    );
  });

  it('does nothing on a second retry: no event left, no second signal, one run', async () => {
    const { runId } = await dunningOf(tenantA.id).describe();

    const run = await billops(['webhooks', 'retry', '--hours', '24']);

    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toMatch(
      /^no failed webhook events received in the last 24 h \(since .+\): nothing to retry$/m,
    );
    expect(await eventRow('stripe', eventA.key)).toMatchObject({ status: 'processed', attempts: 2 });
    expect(await signalsReceived(tenantA.id)).toBe(1);
    expect((await dunningOf(tenantA.id).describe()).runId).toBe(runId);
  });

  it('reports an event that still fails with its reason (exit 1), then processes it once the mapping is fixed', async () => {
    const [payer, owner] = await Promise.all([
      insertTenant(pool, 'pro', { processor: 'paystack' }),
      insertTenant(pool, 'pro', { processor: 'paystack' }),
    ]);
    const ownersInvoice = await insertOpenInvoice(pool, owner.id, {
      processor: 'paystack',
      totalMinor: 250_000,
    });
    const reference = `psk_${unique()}`;
    const key = `charge.failed:${reference}`;
    await storeEvent({
      provider: 'paystack',
      key,
      type: 'charge.failed',
      // The charge names one tenant but carries another tenant's invoice: no retry can settle that.
      payload: {
        event: 'charge.failed',
        data: {
          reference,
          amount: 250_000,
          currency: 'NGN',
          metadata: { tenant_id: payer.id, invoice_id: ownersInvoice.invoiceId },
          customer: { customer_code: `CUS_${unique()}` },
          created_at: new Date(Date.now() - 5 * 3_600_000).toISOString(),
        },
      },
      status: 'failed',
      receivedAgo: '5 hours',
    });

    const failing = await billops(['webhooks', 'retry', '--hours', '24', '--json']);

    expect(failing).toMatchObject({ code: 1, stderr: '' });
    const report = JSON.parse(failing.stdout) as ReplayReport;
    expect(report.events).toEqual([
      expect.objectContaining({ provider: 'paystack', eventKey: key, outcome: 'failed', attempts: 2 }),
    ]);
    expect(report.events[0]!.reason).toMatch(
      new RegExp(`^InvoiceOwnerMismatchError: .*belongs to tenant ${owner.id}`),
    );
    expect(report.totals).toEqual({ ok: 0, failing: 1, expired: 0, skipped: 0 });
    expect(await eventRow('paystack', key)).toMatchObject({ status: 'failed', attempts: 2 });

    // The operator corrects the invoice's tenant, as the reason says, and retries.
    await pool.query('UPDATE invoices SET tenant_id = $2 WHERE id = $1', [ownersInvoice.invoiceId, payer.id]);
    const fixed = await billops(['webhooks', 'retry', '--hours', '24']);

    expect(fixed).toMatchObject({ code: 0, stderr: '' });
    expect(fixed.stdout).toMatch(
      new RegExp(
        `^ {2}paystack +${key} +charge\\.failed +\\S+ \\S+Z +processed +${dunningWorkflowId(payer.id)}$`,
        'm',
      ),
    );
    expect(fixed.stdout).toMatch(
      /^retried ok: 1, still failing: 0, expired: 0 \(older than the 7-day retry window/m,
    );
    expect((await dunningOf(payer.id).describe()).status.name).toBe('RUNNING');
    expect(await eventRow('paystack', key)).toMatchObject({
      status: 'processed',
      attempts: 3,
      tenant_id: payer.id,
    });
  });

  it('reports an 8-day-old failed event as expired and leaves it alone; a wider window retries the 30 h one', async () => {
    const late = await insertTenant(pool, 'pro');
    const expiredKey = `evt_${unique()}`;
    await storeEvent({
      provider: 'stripe',
      key: expiredKey,
      type: 'invoice.payment_failed',
      payload: stripeFailedInvoice(expiredKey, late.id, `in_${unique()}`),
      status: 'failed',
      receivedAgo: '8 days',
    });

    const run = await billops(['webhooks', 'retry', '--hours', '240', '--json']);

    expect(run).toMatchObject({ code: 0, stderr: '' });
    const report = JSON.parse(run.stdout) as ReplayReport;
    expect(report.events).toEqual([
      expect.objectContaining({
        eventKey: expiredKey,
        previousStatus: 'failed',
        outcome: 'expired',
        attempts: 1,
      }),
      expect.objectContaining({
        eventKey: oldKey,
        outcome: 'processed',
        workflowId: dunningWorkflowId(tenantOld.id),
      }),
    ]);
    expect(report.events[0]!.reason).toMatch(
      /^received more than 7 days ago, beyond the webhook retry window/,
    );
    expect(report.totals).toEqual({ ok: 1, failing: 0, expired: 1, skipped: 0 });
    expect(await eventRow('stripe', expiredKey)).toMatchObject({ status: 'failed', attempts: 1 });
    await expect(temporal.workflow.getHandle(dunningWorkflowId(late.id)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    expect((await dunningOf(tenantOld.id).describe()).status.name).toBe('RUNNING');
  });

  it('rejects --hours that is not a positive whole number with exit 2 and the usage', async () => {
    const runs = await Promise.all([
      billops(['webhooks', 'retry']),
      ...['abc', '0', '-3', '1.5', ''].map((hours) => billops(['webhooks', 'retry', '--hours', hours])),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/--hours/);
      expect(run.stderr).toContain('usage: billops webhooks retry --hours N [--json]');
      expect(run.stdout).toBe('');
    }
  });

  // ---- reconcile ----

  const day = new Date(Date.now() - 3 * DAY_MS).toISOString().slice(0, 10);
  const at = (hhmm: string, dayOffset = 0) => new Date(Date.parse(`${day}T${hhmm}:00Z`) + dayOffset * DAY_MS);

  async function insertTransaction(t: {
    tenantId: string;
    processor: 'stripe' | 'paystack';
    reference: string;
    status: 'pending' | 'success' | 'failed' | 'refunded' | 'partially_refunded';
    amountMinor: number;
    currency: string;
    createdAt: Date;
  }): Promise<void> {
    const refunded = t.status === 'refunded' || t.status === 'partially_refunded';
    await pool.query(
      `INSERT INTO payment_transactions
         (tenant_id, processor, reference, status, amount_minor, currency, paid_at, created_at,
          refund_amount_minor, refunded_at)
       VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4 <> 'pending' AND $4 <> 'failed' THEN $7::timestamptz END, $7,
               $8, CASE WHEN $8::bigint IS NOT NULL THEN $7::timestamptz END)`,
      [
        t.tenantId,
        t.processor,
        t.reference,
        t.status,
        t.amountMinor,
        t.currency,
        t.createdAt,
        refunded ? t.amountMinor : null,
      ],
    );
  }

  const rowFor = (report: ReconcileReport, id: string): ReconcileRow | undefined =>
    report.rows.find((r) => r.provider?.id === id || r.ours?.reference === id);

  const paystackEnv = () => ({ PAYSTACK_SECRET_KEY: paystack.secretKey, PAYSTACK_BASE_URL: paystack.url });
  const stripeEnv = () => ({ STRIPE_SECRET_KEY: STRIPE_KEY, STRIPE_API_BASE: testEnv('stripeApiBase') });

  const ref = {
    match: `psk-match-${unique()}`,
    amount: `psk-amount-${unique()}`,
    status: `psk-status-${unique()}`,
    noDb: `psk-nodb-${unique()}`,
    dbOnly: `psk-dbonly-${unique()}`,
    late: `psk-late-${unique()}`,
    midnight: `psk-midnight-${unique()}`,
    dayBefore: `psk-daybefore-${unique()}`,
  };

  it('reconciles a Paystack day: matched, missing in the database, missing at Paystack, amount and status mismatches', async () => {
    const tenant = await insertTenant(pool, 'pro', { processor: 'paystack' });
    const ours = (reference: string, status: 'pending' | 'success', amountMinor: number, createdAt: Date) =>
      insertTransaction({
        tenantId: tenant.id,
        processor: 'paystack',
        reference,
        status,
        amountMinor,
        currency: 'NGN',
        createdAt,
      });
    paystack.addTransaction({ reference: ref.match, amount: 500_000, createdAt: at('09:00') });
    paystack.addTransaction({ reference: ref.amount, amount: 750_000, createdAt: at('10:00') });
    paystack.addTransaction({ reference: ref.status, amount: 120_000, createdAt: at('11:00') });
    paystack.addTransaction({
      reference: ref.noDb,
      amount: 200_000,
      status: 'failed',
      createdAt: at('12:00'),
    });
    // The next day's first instant (Paystack's `to` may include it) and the day before: neither is this day's.
    paystack.addTransaction({ reference: ref.midnight, amount: 990_000, createdAt: at('00:00', 1) });
    paystack.addTransaction({ reference: ref.dayBefore, amount: 100_000, createdAt: at('12:00', -1) });
    // Written by us a minute before midnight, created at Paystack just after it.
    paystack.addTransaction({
      reference: ref.late,
      amount: 80_000,
      createdAt: new Date(at('00:00', 1).getTime() + 5000),
    });
    await ours(ref.match, 'success', 500_000, at('09:00'));
    await ours(ref.amount, 'success', 700_000, at('10:00'));
    await ours(ref.status, 'pending', 120_000, at('11:00'));
    await ours(ref.dbOnly, 'pending', 300_000, at('13:00'));
    await ours(ref.late, 'success', 80_000, at('23:59'));

    const run = await billops(
      ['reconcile', '--date', day, '--processor', 'paystack', '--json'],
      paystackEnv(),
    );

    expect(run).toMatchObject({ code: 1, stderr: '' });
    const report = JSON.parse(run.stdout) as ReconcileReport;
    expect(report).toMatchObject({
      date: day,
      from: `${day}T00:00:00.000Z`,
      to: at('00:00', 1).toISOString(),
      processors: ['paystack'],
    });
    expect(rowFor(report, ref.match)).toMatchObject({
      outcome: 'matched',
      provider: { id: ref.match, status: 'success', amountMinor: 500_000, currency: 'NGN' },
      ours: {
        kind: 'transaction',
        reference: ref.match,
        status: 'success',
        amountMinor: 500_000,
        tenantId: tenant.id,
      },
      differences: [],
    });
    expect(rowFor(report, ref.amount)).toMatchObject({
      outcome: 'mismatch',
      differences: [{ field: 'amount', ours: 700_000, provider: 750_000 }],
    });
    expect(rowFor(report, ref.status)).toMatchObject({
      outcome: 'mismatch',
      differences: [{ field: 'status', ours: 'pending', provider: 'success' }],
    });
    expect(rowFor(report, ref.noDb)).toMatchObject({
      outcome: 'missing_in_db',
      provider: { id: ref.noDb, status: 'failed', amountMinor: 200_000 },
    });
    expect(rowFor(report, ref.noDb)!.ours).toBeUndefined();
    expect(rowFor(report, ref.dbOnly)).toMatchObject({
      outcome: 'missing_at_provider',
      ours: { reference: ref.dbOnly, status: 'pending', amountMinor: 300_000 },
    });
    expect(rowFor(report, ref.dbOnly)!.provider).toBeUndefined();
    expect(rowFor(report, ref.late)).toMatchObject({
      outcome: 'matched',
      note: expect.stringMatching(/by reference/),
    });
    expect(rowFor(report, ref.midnight)).toBeUndefined();
    expect(rowFor(report, ref.dayBefore)).toBeUndefined();
    expect(report.totals).toEqual({
      providerTransactions: 5,
      matched: 2,
      mismatch: 2,
      missingInDb: 1,
      missingAtProvider: 1,
    });

    // One listing request with the bearer key and the day's bounds, then the runbook's verify for our strays.
    const requests = paystack.requests();
    const listings = requests.filter((r) => r.path.startsWith('/transaction?'));
    expect(listings).toHaveLength(1);
    const query = new URL(listings[0]!.path, 'http://x').searchParams;
    expect(Object.fromEntries(query)).toEqual({
      from: `${day}T00:00:00.000Z`,
      to: at('00:00', 1).toISOString(),
      perPage: '100',
      page: '1',
    });
    expect(listings[0]!.authorization).toBe(`Bearer ${paystack.secretKey}`);
    expect(
      requests
        .filter((r) => r.path.startsWith('/transaction/verify/'))
        .map((r) => r.path)
        .sort(),
    ).toEqual([`/transaction/verify/${ref.dbOnly}`, `/transaction/verify/${ref.late}`].sort());

    const text = await billops(['reconcile', '--date', day, '--processor', 'paystack'], paystackEnv());
    expect(text).toMatchObject({ code: 1, stderr: '' });
    expect(text.stdout).toMatch(
      new RegExp(
        `^ {2}mismatch +paystack +${ref.amount} \\(success\\) .*amount: ours 700000, provider 750000$`,
        'm',
      ),
    );
    expect(text.stdout).toMatch(
      new RegExp(`^ {2}missing_in_db +paystack +${ref.noDb} \\(failed\\) +- `, 'm'),
    );
    expect(text.stdout).toMatch(
      new RegExp(`^ {2}missing_at_provider +paystack +- +${ref.dbOnly} \\(pending\\) `, 'm'),
    );
    expect(text.stdout).toMatch(
      /^matched: 2, mismatch: 2, missing in the database: 1, missing at the provider: 1$/m,
    );
  });

  it('follows Paystack’s pages (the same module an activity would call)', async () => {
    const before = paystack.requests().length;
    const gateway = createPaystackGateway({
      secretKey: paystack.secretKey,
      baseUrl: paystack.url,
      timeoutSeconds: 10,
    });
    const ledger = paystackLedger(gateway, 2);

    const report = await reconcileDay({ pool, ledgers: { paystack: ledger } }, { date: day });

    expect(report.totals).toEqual({
      providerTransactions: 5,
      matched: 2,
      mismatch: 2,
      missingInDb: 1,
      missingAtProvider: 1,
    });
    // match, amount, status, nodb and the midnight one are in Paystack's inclusive range: 5 at 2 per page.
    const pages = paystack
      .requests()
      .slice(before)
      .filter((r) => r.path.startsWith('/transaction?'))
      .map((r) => new URL(r.path, 'http://x').searchParams.get('page'));
    expect(pages).toEqual(['1', '2', '3']);
  });

  it('reconciles Stripe charges from stripe-mock: missing in the database, then matched, then an amount mismatch', async () => {
    const stripe = new Stripe(STRIPE_KEY, {
      apiVersion: STRIPE_API_VERSION as Stripe.LatestApiVersion,
      ...stripeHostOptions(testEnv('stripeApiBase')),
      maxNetworkRetries: 0,
    });
    const charges = (await stripe.charges.list({ limit: 100 })).data;
    // stripe-mock is stateless: whatever day is asked for, it lists its fixture charges.
    expect(charges.length).toBeGreaterThan(0);
    const charge = charges[0]!;
    const chargeStatus =
      charge.status === 'succeeded'
        ? charge.refunded
          ? 'refunded'
          : charge.amount_refunded > 0
            ? 'partially_refunded'
            : 'success'
        : charge.status === 'failed'
          ? 'failed'
          : 'pending';
    const tenant = await insertTenant(pool, 'pro');
    const ownReference = `dunning-${tenant.id}-retry-1-${unique()}`;
    await insertTransaction({
      tenantId: tenant.id,
      processor: 'stripe',
      reference: ownReference,
      status: 'success',
      amountMinor: 4900,
      currency: 'USD',
      createdAt: at('08:00'),
    });
    const reconcileStripe = async () => {
      const run = await billops(['reconcile', '--date', day, '--processor', 'stripe', '--json'], stripeEnv());
      expect(run).toMatchObject({ code: 1, stderr: '' });
      return JSON.parse(run.stdout) as ReconcileReport;
    };

    const first = await reconcileStripe();
    expect(first.processors).toEqual(['stripe']);
    expect(first.totals.providerTransactions).toBe(charges.length);
    expect(rowFor(first, charge.id)).toMatchObject({
      processor: 'stripe',
      outcome: 'missing_in_db',
      provider: { id: charge.id, amountMinor: charge.amount, currency: charge.currency.toUpperCase() },
    });
    expect(rowFor(first, ownReference)).toMatchObject({
      outcome: 'missing_at_provider',
      ours: { reference: ownReference, amountMinor: 4900 },
    });

    await insertTransaction({
      tenantId: tenant.id,
      processor: 'stripe',
      reference: charge.id,
      status: chargeStatus,
      amountMinor: charge.amount,
      currency: charge.currency.toUpperCase(),
      createdAt: at('08:30'),
    });
    const second = await reconcileStripe();
    expect(rowFor(second, charge.id)).toMatchObject({
      outcome: 'matched',
      provider: { id: charge.id, status: charge.status },
      ours: { reference: charge.id, status: chargeStatus, amountMinor: charge.amount },
      differences: [],
    });
    expect(rowFor(second, ownReference)).toMatchObject({ outcome: 'missing_at_provider' });

    await pool.query(
      `UPDATE payment_transactions SET amount_minor = amount_minor + 250 WHERE processor = 'stripe' AND reference = $1`,
      [charge.id],
    );
    // Both processors configured and none named: each is reconciled.
    const paystackRequestsBefore = paystack.requests().length;
    const both = await billops(['reconcile', '--date', day, '--json'], { ...stripeEnv(), ...paystackEnv() });
    expect(both).toMatchObject({ code: 1, stderr: '' });
    const third = JSON.parse(both.stdout) as ReconcileReport;
    expect(third.processors).toEqual(['stripe', 'paystack']);
    expect(rowFor(third, charge.id)).toMatchObject({
      processor: 'stripe',
      outcome: 'mismatch',
      differences: [{ field: 'amount', ours: charge.amount + 250, provider: charge.amount }],
    });
    const listedAtPaystack = paystack
      .requests()
      .slice(paystackRequestsBefore)
      .filter((r) => r.path.startsWith('/transaction?'));
    expect(listedAtPaystack).toHaveLength(1);
  });

  it('rejects a bad --date, an unknown --processor and a missing processor key with exit 2 and the usage', async () => {
    const future = new Date(Date.now() + 2 * DAY_MS).toISOString().slice(0, 10);
    const runs = await Promise.all([
      billops(['reconcile'], paystackEnv()),
      ...['2026-02-30', '24-01-2026', 'yesterday', '2026-1-5', future].map((date) =>
        billops(['reconcile', '--date', date], paystackEnv()),
      ),
      billops(['reconcile', '--date', day, '--processor', 'paypal'], paystackEnv()),
      billops(['reconcile', '--date', day, '--processor', 'stripe'], paystackEnv()),
      billops(['reconcile', '--date', day]),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(
        'usage: billops reconcile --date YYYY-MM-DD [--processor stripe|paystack] [--json]',
      );
      expect(run.stdout).toBe('');
    }
    expect(runs[1]!.stderr).toMatch(/--date: the date is not a calendar day \(got "2026-02-30"\)/);
    expect(runs[5]!.stderr).toMatch(/is in the future/);
    expect(runs[6]!.stderr).toMatch(/--processor must be one of stripe, paystack/);
    expect(runs[7]!.stderr).toMatch(/stripe not configured: set STRIPE_SECRET_KEY/);
  });
});
