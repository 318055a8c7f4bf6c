// Over/underbilling disputes on the dev server against real PostgreSQL, stripe-mock and the Paystack-shaped server:
// billing held, raw usage pulled, recalculated, then a Stripe credit note or balance credit, a Paystack refund in kobo,
// or an adjustment invoice; the Billing Error Acknowledgment arrives and the DECISIONS.log line carries the credit.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { WorkflowHandle } from '@temporalio/client';
import { createInvoicingActivities } from '../../../activities/invoicing';
import { startIncident } from '../../../temporal/incidents';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import { recordRootCauseUpdate } from '../../../workflows/definitions';
import type { BillingDisputeParams } from '../../../workflows/incidents/billingDispute';
import { forward, listenOnLoopback } from '../../support/httpProxy';
import { insertTenant } from '../../support/dunningFixtures';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import type { PaystackFake } from '../../support/paystackFake';
import { testEnv } from '../../support/testRuntime';
import { startProviderTestWorker, type ProviderTestWorker } from '../../support/testWorker';

/** The incident's keys name its occurrence: the workflow id and the run that contains it. */
async function occurrence(handle: WorkflowHandle): Promise<string> {
  return `${handle.workflowId}/${(await handle.describe()).runId}`;
}

const taskQueue = `dispute-${randomUUID().slice(0, 8)}`;
const MARCH = { periodStart: '2026-03-01T00:00:00.000Z', periodEnd: '2026-04-01T00:00:00.000Z' };
/** Ten events of 100 units each, two per hour from March 2nd 10:00. */
const HOURS = ['10', '11', '12', '13', '14'].map((h) => `2026-03-02T${h}:00:00.000Z`);

interface SeenStripeRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  form: URLSearchParams;
}

/** Forwards to stripe-mock untouched and keeps each request with its form body. */
async function startStripeRecorder(
  target: string,
): Promise<{ url: string; seen: SeenStripeRequest[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const seen: SeenStripeRequest[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const key = req.headers['idempotency-key'];
      seen.push({
        method: req.method ?? '',
        path: req.url ?? '',
        idempotencyKey: Array.isArray(key) ? key[0] : key,
        form: new URLSearchParams(body.toString('utf8')),
      });
      forward(upstream, req, res, { body });
    });
  });
  return { ...(await listenOnLoopback(server)), seen };
}

let worker: ProviderTestWorker;
let paystack: PaystackFake;
let stripe: Awaited<ReturnType<typeof startStripeRecorder>>;
let receivers: IncidentReceivers;

beforeAll(async () => {
  stripe = await startStripeRecorder(testEnv('stripeApiBase'));
  receivers = await startIncidentReceivers();
  worker = await startProviderTestWorker(taskQueue, {
    stripe: { secretKey: 'sk_test_disputes000000000000', apiBase: stripe.url },
    incidents: receivers.incidents,
  });
  ({ paystack } = worker);
});

afterAll(async () => {
  await worker?.stop();
  await stripe?.close();
  await receivers?.close();
});

interface Billed {
  tenantId: string;
  billingEmail: string;
  meter: string;
  invoiceId: string;
  billedMinor: number;
}

/**
 * A Pro tenant with 1000 units of its own meter in March (raw events), invoiced from rollups that `corrupt` may
 * change first, at `unitPrice` minor units per unit, and paid.
 */
async function billedTenant(opts: {
  processor: 'stripe' | 'paystack';
  currency: 'USD' | 'NGN';
  unitPrice: string;
  corrupt?: 'double_an_hour' | 'lose_an_hour';
  stripeInvoice?: boolean;
  stripeCustomer?: boolean;
}): Promise<Billed> {
  const { pool } = worker.deps;
  const tenant = await insertTenant(pool, 'pro', {
    processor: opts.processor,
    ...(opts.processor === 'paystack' ? { paystackAuthorization: `AUTH_${randomUUID().slice(0, 8)}` } : {}),
  });
  await pool.query('UPDATE tenants SET currency = $2, stripe_customer_id = $3 WHERE id = $1', [
    tenant.id,
    opts.currency,
    opts.stripeCustomer ? `cus_${randomUUID().replaceAll('-', '').slice(0, 14)}` : null,
  ]);
  const meter = `dsp_calls_${randomUUID().slice(0, 8)}`;
  await pool.query(
    `INSERT INTO rates (meter, tier, effective_from, pricing_model, unit_price_minor, currency)
     VALUES ($1, 'pro', '2026-01-01T00:00:00Z', 'per_unit', $2, $3)`,
    [meter, opts.unitPrice, opts.currency],
  );
  for (const [i, hour] of HOURS.entries()) {
    for (const minute of [5, 35]) {
      await pool.query(
        `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key)
         VALUES ($1, $2, 100, $3::timestamptz + make_interval(mins => $4), $5)`,
        [tenant.id, meter, hour, minute, `ev-${i}-${minute}`],
      );
    }
  }
  await pool.query(
    `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count)
     SELECT tenant_id, meter, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(quantity), count(*)
     FROM usage_events WHERE tenant_id = $1 GROUP BY 1, 2, 3`,
    [tenant.id],
  );
  if (opts.corrupt === 'double_an_hour') {
    await pool.query('UPDATE usage_rollups SET quantity = quantity * 2 WHERE tenant_id = $1 AND hour = $2', [
      tenant.id,
      HOURS[0],
    ]);
  }
  if (opts.corrupt === 'lose_an_hour') {
    await pool.query('DELETE FROM usage_rollups WHERE tenant_id = $1 AND hour = $2', [tenant.id, HOURS[0]]);
  }
  const { invoices } = await createInvoicingActivities({ pool }).generateInvoices({
    ...MARCH,
    tenants: [tenant.id],
    idempotencyKey: `march-${tenant.id}`,
  });
  const invoice = invoices[0]!;
  await pool.query(
    `UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = now(), delivered_at = now(),
                         processor = $2, processor_invoice_id = $3
     WHERE id = $1`,
    [
      invoice.invoiceId,
      opts.stripeInvoice ? 'stripe' : 'none',
      opts.stripeInvoice ? `in_${randomUUID().replaceAll('-', '').slice(0, 14)}` : null,
    ],
  );
  return {
    tenantId: tenant.id,
    billingEmail: tenant.billingEmail,
    meter,
    invoiceId: invoice.invoiceId,
    billedMinor: invoice.totalMinor,
  };
}

async function dispute(billed: Billed, params: Partial<BillingDisputeParams> = {}) {
  const handle = await startIncident(
    worker.client,
    taskQueue,
    incidentInput(
      'overbilling_dispute',
      {
        tenantId: billed.tenantId,
        invoiceId: billed.invoiceId,
        from: MARCH.periodStart,
        to: MARCH.periodEnd,
        reason: 'customer reports more API calls billed than made',
        ...params,
      } satisfies BillingDisputeParams,
      { key: billed.invoiceId, tenantIds: [billed.tenantId] },
    ),
  );
  const status = await untilIncident(
    handle,
    (s) => s.currentStep === 'waiting for the root-cause analysis',
    'the dispute handled',
  );
  await handle.executeUpdate(recordRootCauseUpdate, {
    args: [{ operator: 'ada', summary: 'rollup job double-counted a retried hour' }],
  });
  const outcome = await handle.result();
  return { handle, status, outcome };
}

async function creditsOf(tenantId: string) {
  const { rows } = await worker.deps.pool.query<{
    kind: string;
    invoice_id: string;
    amount_minor: number;
    currency: string;
    processor: string | null;
    processor_reference: string | null;
    idempotency_key: string;
  }>(
    `SELECT kind, invoice_id, amount_minor, currency, processor, processor_reference, idempotency_key
     FROM credits_adjustments WHERE tenant_id = $1`,
    [tenantId],
  );
  return rows;
}

async function holdsOf(workflowId: string) {
  const { rows } = await worker.deps.pool.query<{
    tenant_id: string;
    meter: string | null;
    held_by: string;
    released_at: Date | null;
  }>('SELECT tenant_id, meter, held_by, released_at FROM billing_holds WHERE workflow_id = $1', [workflowId]);
  return rows;
}

function acknowledgment(billed: Billed) {
  const mail = readCaughtMail(testEnv('mailDir')).filter(
    (m) =>
      m.to.includes(billed.billingEmail) && m.subject === `Billing Adjustment - Invoice #${billed.invoiceId}`,
  );
  expect(mail).toHaveLength(1);
  return mail[0]!.text;
}

async function decisionOf(workflowId: string) {
  const { rows } = await worker.deps.pool.query<{ line: string }>(
    'SELECT line FROM decisions WHERE workflow_id = $1',
    [workflowId],
  );
  expect(rows).toHaveLength(1);
  return parseDecisionLine(rows[0]!.line);
}

describe('billing dispute incident', () => {
  it('overbilled from a double-counted hour, Stripe invoice paid: rollups rebuilt, a credit note for the difference, the acknowledgment, CREDITS in DECISIONS.log', async () => {
    const billed = await billedTenant({
      processor: 'stripe',
      currency: 'USD',
      unitPrice: '2',
      corrupt: 'double_an_hour',
      stripeInvoice: true,
    });
    // 1200 units billed at 2 cents; 1000 were used.
    expect(billed.billedMinor).toBe(2400);
    const { handle, status } = await dispute(billed, { meter: billed.meter });

    expect(status.stepsDone.map((s) => s.name)).toEqual([
      `stop billing meter ${billed.meter} of tenant ${billed.tenantId}`,
      'pull raw usage for the disputed period',
      'backfill rollups from raw events (attempt 1 of 25)',
      'validate: spot check rollups against raw events',
      'recalculate with the correct rates',
      'issue the credit',
      'send the Billing Error Acknowledgment',
      'resume billing',
    ]);
    expect(status.stepsDone[1]?.detail).toContain(
      `${billed.meter}: 1000 from 10 raw events, 1200 rolled up, 1200 invoiced`,
    );
    expect(status.stepsDone[4]?.detail).toBe('USD 24.00 billed, USD 20.00 correct (needs_adjustment)');

    // The hold stopped billing of that meter, and is released now the dispute is settled.
    const holds = await holdsOf(handle.workflowId);
    expect(holds).toEqual([
      { tenant_id: billed.tenantId, meter: billed.meter, held_by: 'billops', released_at: expect.any(Date) },
    ]);
    // The credit note went to Stripe once, for the difference, credited to the customer's balance (the invoice is paid).
    const notes = stripe.seen.filter((r) => r.method === 'POST' && r.path === '/v1/credit_notes');
    expect(notes).toHaveLength(1);
    const [note] = notes;
    const { rows: inv } = await worker.deps.pool.query<{ processor_invoice_id: string }>(
      'SELECT processor_invoice_id FROM invoices WHERE id = $1',
      [billed.invoiceId],
    );
    expect(note!.form.get('invoice')).toBe(inv[0]!.processor_invoice_id);
    expect(note!.form.get('amount')).toBe('400');
    expect(note!.form.get('credit_amount')).toBe('400');
    expect(note!.form.get('metadata[tenant_id]')).toBe(billed.tenantId);
    expect(note!.idempotencyKey).toBe(`${await occurrence(handle)}/credit`);
    const credits = await creditsOf(billed.tenantId);
    expect(credits).toEqual([
      {
        kind: 'credit',
        invoice_id: billed.invoiceId,
        amount_minor: 400,
        currency: 'USD',
        processor: 'stripe',
        processor_reference: expect.stringMatching(/^cn_/),
        idempotency_key: `${await occurrence(handle)}/credit`,
      },
    ]);
    // Rollups now equal the raw events.
    const { rows: hour } = await worker.deps.pool.query<{ quantity: string }>(
      'SELECT quantity::text AS quantity FROM usage_rollups WHERE tenant_id = $1 AND hour = $2',
      [billed.tenantId, HOURS[0]],
    );
    expect(hour[0]?.quantity).toBe('200');

    const text = acknowledgment(billed);
    expect(text).toContain("We've identified and corrected a billing error on your account.");
    expect(text).toContain('Credit Applied: USD 4.00');
    expect(text).toContain('Revised Total: USD 20.00');
    expect(text).toMatch(
      /Correction: customer reports more API calls billed than made: invoice .* USD 24\.00 → USD 20\.00; credited by Stripe credit note cn_/,
    );
    expect(await decisionOf(handle.workflowId)).toMatchObject({
      operator: 'billops',
      incidentType: 'overbilling_dispute',
      tenants: 1,
      credits: { amountMinor: 400, currency: 'USD' },
      impact: `invoice ${billed.invoiceId} overbilled by USD 4.00`,
      executor: 'billops',
    });
  });

  it('overbilled at the wrong rate, Paystack payment known: repriced with the correct rate version, refunded in kobo', async () => {
    const billed = await billedTenant({ processor: 'paystack', currency: 'NGN', unitPrice: '5' });
    expect(billed.billedMinor).toBe(5000);
    const reference = `dsp-${billed.tenantId}`;
    await worker.deps.pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency, paid_at)
       VALUES ($1, $2, 'paystack', $3, 'success', 5000, 'NGN', now())`,
      [billed.tenantId, billed.invoiceId, reference],
    );
    paystack.addTransaction({
      reference,
      amount: 5000,
      currency: 'NGN',
      status: 'success',
      createdAt: new Date(),
    });
    // The contract price: 3 kobo per unit, recorded as the tenant's own rate.
    const { rows: rate } = await worker.deps.pool.query<{ id: string }>(
      `INSERT INTO rates (meter, tenant_id, effective_from, pricing_model, unit_price_minor, currency)
       VALUES ($1, $2, '2026-04-01T00:00:00Z', 'per_unit', 3, 'NGN') RETURNING id`,
      [billed.meter, billed.tenantId],
    );
    const { handle, status } = await dispute(billed, { correctRateVersion: Number(rate[0]!.id) });

    expect(status.timeline.find((e) => e.event === 'skipped')?.detail).toBe(
      'rebuild rollups: the rollups of the invoice period match the raw events',
    );
    expect(status.stepsDone.find((s) => s.name === 'recalculate with the correct rates')?.detail).toBe(
      'NGN 50.00 billed, NGN 30.00 correct (needs_adjustment)',
    );
    const refunds = paystack.refunds();
    expect(refunds).toEqual([
      {
        id: expect.any(Number),
        reference,
        amount: 2000,
        currency: 'NGN',
        merchantNote: `${await occurrence(handle)}/credit`,
        customerNote: expect.stringContaining('customer reports more API calls'),
      },
    ]);
    const posted = paystack.requests().filter((r) => r.method === 'POST' && r.path === '/refund');
    expect(posted).toHaveLength(1);
    expect(posted[0]!.authorization).toBe(`Bearer ${paystack.secretKey}`);
    expect(posted[0]!.rawBody).toContain('"amount":2000,');
    const { rows: tx } = await worker.deps.pool.query<{
      status: string;
      refund_reference: string;
      refund_amount_minor: number;
    }>(
      'SELECT status, refund_reference, refund_amount_minor FROM payment_transactions WHERE reference = $1',
      [reference],
    );
    expect(tx[0]).toEqual({
      status: 'partially_refunded',
      refund_reference: String(refunds[0]!.id),
      refund_amount_minor: 2000,
    });
    expect(await creditsOf(billed.tenantId)).toEqual([
      expect.objectContaining({
        kind: 'refund',
        amount_minor: 2000,
        currency: 'NGN',
        processor: 'paystack',
        processor_reference: String(refunds[0]!.id),
      }),
    ]);
    const text = acknowledgment(billed);
    expect(text).toContain('Credit Applied: NGN 20.00');
    expect(text).toContain('Revised Total: NGN 30.00');
    expect(text).toContain(`Paystack refund ${refunds[0]!.id}`);
    expect((await decisionOf(handle.workflowId)).credits).toEqual({ amountMinor: 2000, currency: 'NGN' });
  });

  it('overbilled, Stripe customer without a Stripe invoice: the correct per-unit price given, a customer balance credit', async () => {
    const billed = await billedTenant({
      processor: 'stripe',
      currency: 'USD',
      unitPrice: '2',
      stripeCustomer: true,
    });
    const { handle } = await dispute(billed, { meter: billed.meter, rates: { [billed.meter]: '1.5' } });
    const { rows } = await worker.deps.pool.query<{ stripe_customer_id: string }>(
      'SELECT stripe_customer_id FROM tenants WHERE id = $1',
      [billed.tenantId],
    );
    const balance = stripe.seen.filter(
      (r) =>
        r.method === 'POST' && r.path === `/v1/customers/${rows[0]!.stripe_customer_id}/balance_transactions`,
    );
    expect(balance).toHaveLength(1);
    expect(balance[0]!.form.get('amount')).toBe('-500');
    expect(balance[0]!.form.get('currency')).toBe('usd');
    expect(balance[0]!.idempotencyKey).toBe(`${await occurrence(handle)}/credit`);
    expect(await creditsOf(billed.tenantId)).toEqual([
      expect.objectContaining({
        kind: 'credit',
        amount_minor: 500,
        processor: 'stripe',
        processor_reference: expect.stringMatching(/^cbtxn_/),
      }),
    ]);
    const text = acknowledgment(billed);
    expect(text).toContain('Credit Applied: USD 5.00');
    expect(text).toContain('Revised Total: USD 15.00');
    expect((await decisionOf(handle.workflowId)).credits).toEqual({ amountMinor: 500, currency: 'USD' });
  });

  it('underbilled from a lost hour: an adjustment invoice bills the difference, no credit in DECISIONS.log', async () => {
    const billed = await billedTenant({
      processor: 'stripe',
      currency: 'USD',
      unitPrice: '2',
      corrupt: 'lose_an_hour',
    });
    expect(billed.billedMinor).toBe(1600);
    const { handle, status } = await dispute(billed, { reason: 'audit finding: March usage under-invoiced' });
    const adjustment = await creditsOf(billed.tenantId);
    expect(adjustment).toEqual([
      expect.objectContaining({
        kind: 'adjustment_invoice',
        amount_minor: 400,
        currency: 'USD',
        processor: null,
        idempotency_key: `${await occurrence(handle)}/adjustment invoice`,
      }),
    ]);
    const { rows: invoice } = await worker.deps.pool.query<{
      tenant_id: string;
      status: string;
      total_minor: number;
      period_start: Date;
      generation_key: string | null;
    }>('SELECT tenant_id, status, total_minor, period_start, generation_key FROM invoices WHERE id = $1', [
      adjustment[0]!.invoice_id,
    ]);
    expect(invoice[0]).toEqual({
      tenant_id: billed.tenantId,
      status: 'open',
      total_minor: 400,
      period_start: new Date(MARCH.periodStart),
      generation_key: null,
    });
    expect(status.stepsDone.find((s) => s.name === 'generate an adjustment invoice')?.detail).toBe(
      `adjustment invoice ${adjustment[0]!.invoice_id} for USD 4.00`,
    );
    // The paid invoice itself is left as it was issued.
    const { rows: original } = await worker.deps.pool.query<{ total_minor: number; status: string }>(
      'SELECT total_minor, status FROM invoices WHERE id = $1',
      [billed.invoiceId],
    );
    expect(original[0]).toEqual({ total_minor: 1600, status: 'paid' });
    const text = acknowledgment(billed);
    expect(text).toContain('Credit Applied: USD 0.00');
    expect(text).toContain('Revised Total: USD 20.00');
    expect(text).toContain(`adjustment invoice ${adjustment[0]!.invoice_id}`);
    expect(await decisionOf(handle.workflowId)).toMatchObject({
      credits: null,
      impact: `invoice ${billed.invoiceId} underbilled by USD 4.00`,
    });
    expect(stripe.seen.filter((r) => r.form.get('metadata[tenant_id]') === billed.tenantId)).toEqual([]);
  });
});
