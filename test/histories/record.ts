// Records one finished history per workflow type into test/histories/*.pb, for the replay test that guards determinism
// across changes. Run with `npm run record-histories` (not part of `npm test`); commit the files.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Pool } from 'pg';
import { defaultPolicy, parsePolicy, type BillingTier } from '../../domain/policy';
import { rollupPolicyOf, type TimeWindow } from '../../domain/rollups';
import {
  dunningWorkflow,
  customerNoticeWorkflow,
  overageWorkflow,
  usageBackfillWorkflow,
  usageRollupWorkflow,
  stuckTransactionsWorkflow,
  usageMeteringFailureWorkflow,
  billingDisputeWorkflow,
  webhookFailureWorkflow,
  refundWorkflow,
  subscriptionActivationWorkflow,
  billingSystemOutageWorkflow,
  paymentProcessorOutageWorkflow,
  webhookDeliveryWorkflow,
} from '../../workflows';
import {
  acknowledgeUpdate,
  approveStepUpdate,
  dunningStatusQuery,
  overageStatusQuery,
  paymentFailedSignal,
  recordRootCauseUpdate,
  resolveUpdate,
  rollupStatusQuery,
  usageUpdatedSignal,
  type OverageStatus,
} from '../../workflows/definitions';
import { dunningInput, insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { incidentInput, untilIncident } from '../support/incidentFixtures';
import { fakePaystackGateway } from '../support/paystackFake';
import { pollUntil } from '../support/poll';
import { privateDatabase } from '../support/privateDatabase';
import { startIncidentTimeSkipping, type IncidentTimeSkipping } from '../support/timeSkipping';
import { expectedRollups, generateUsageEvents, insertUsageEvents } from '../support/usageFixtures';
import { TEST_PORTAL_URL, testWorkerDependencies } from '../support/workerDeps';
import { startWebhookReceiver } from '../support/webhookReceiver';
import { changeServiceControlHold } from '../../db/serviceControls';
import { createEndpoint } from '../../db/outboundWebhooks';
import { webhookDeliveryWorkflowId } from '../../domain/outboundWebhooks';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const unique = () => randomUUID().replace(/-/g, '').slice(0, 10);
let ts: IncidentTimeSkipping;

beforeAll(async () => {
  // Activities get the server's client: the processor outage steers the dunning lifecycles by signal.
  ts = await startIncidentTimeSkipping({ clientForActivities: true });
});

afterAll(async () => {
  await ts?.close();
});

/**
 * The workflows a recording started. Any still running when it ends (it failed) is terminated: a workflow task nobody
 * polls any more would hold the shared server's clock and stall every later recording.
 */
const started: WorkflowHandle[] = [];
function track<H extends WorkflowHandle>(handle: H): H {
  started.push(handle);
  return handle;
}

afterEach(async () => {
  for (const handle of started.splice(0)) {
    const running = await handle.describe().then(
      (d) => d.status.name === 'RUNNING',
      () => false,
    );
    if (running) await handle.terminate('the recording ended').catch(() => undefined);
  }
});

async function save(name: string, workflowId: string): Promise<void> {
  const history = await ts.env.client.workflow.getHandle(workflowId).fetchHistory();
  // The replay runs the workflow under this id (workflowInfo().workflowId reaches keys and comparisons with what
  // activities return); the time-skipping server leaves it out of the started event, so it is written there.
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  if (started && !started.workflowId) started.workflowId = workflowId;
  // Protobuf binary: the SDK's historyToJSON trips over two protobufjs copies under jest; decode() reads it back.
  writeFileSync(join(__dirname, `${name}.pb`), temporal.api.history.v1.History.encode(history).finish());
}

/** A meter of the tenant's own, priced per unit for `tier` from 2026 on. */
async function pricedMeter(
  pool: Pool,
  prefix: string,
  tier: BillingTier,
  unitPriceMinor: number,
  currency: string,
): Promise<{ meter: string; rateId: number }> {
  const meter = `${prefix}_${unique()}`;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO rates (meter, tier, effective_from, pricing_model, unit_price_minor, currency)
     VALUES ($1, $2, '2026-01-01T00:00:00Z', 'per_unit', $3, $4) RETURNING id`,
    [meter, tier, unitPriceMinor, currency],
  );
  return { meter, rateId: Number(rows[0]!.id) };
}

/**
 * A usage invoice of the period as invoice generation writes one: one line for the meter, priced from the rollups as
 * they are now (rounded half up once for the line), open and undelivered, or paid.
 */
async function usageInvoice(
  pool: Pool,
  opts: {
    tenantId: string;
    meter: string;
    rateId: number;
    unitPriceMinor: number;
    currency: string;
    period: TimeWindow;
    paid: boolean;
  },
): Promise<{ invoiceId: string; totalMinor: number }> {
  const { rows: usage } = await pool.query<{ quantity: string }>(
    `SELECT COALESCE(sum(quantity), 0)::text AS quantity FROM usage_rollups
     WHERE tenant_id = $1 AND meter = $2 AND hour >= $3 AND hour < $4`,
    [opts.tenantId, opts.meter, opts.period.from, opts.period.to],
  );
  const quantity = usage[0]!.quantity;
  const totalMinor = Math.round(Number(quantity) * opts.unitPriceMinor);
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO invoices (tenant_id, period_start, period_end, status, subtotal_minor, total_minor, amount_paid_minor,
                           currency, generation_key, paid_at, delivered_at)
     VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9, $9) RETURNING id`,
    [
      opts.tenantId,
      opts.period.from,
      opts.period.to,
      opts.paid ? 'paid' : 'open',
      totalMinor,
      opts.paid ? totalMinor : 0,
      opts.currency,
      `record-${opts.tenantId}-${opts.period.from}`,
      opts.paid ? new Date() : null,
    ],
  );
  const invoiceId = rows[0]!.id;
  await pool.query(
    `INSERT INTO invoice_lines (invoice_id, meter, quantity, rate_id, amount_minor, description)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [invoiceId, opts.meter, quantity, opts.rateId, totalMinor, `${opts.meter}: ${quantity} units`],
  );
  return { invoiceId, totalMinor };
}

/** The root-cause step reached, a root cause recorded, the incident closed. */
async function closeWithRootCause(handle: WorkflowHandle, summary: string): Promise<void> {
  await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
  await handle.executeUpdate(recordRootCauseUpdate, { args: [{ operator: 'ada', summary }] });
  await handle.result();
}

it('records dunningWorkflow: Pro, never paid, to deletion', async () => {
  const taskQueue = 'record-dunning';
  const w = await ts.newWorker(taskQueue);
  const tenant = await insertTenant(ts.deps.pool, 'pro');
  const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id);
  const handle = track(await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
    workflowId: `dunning-${tenant.id}`,
    taskQueue,
    args: [dunningInput(tenant, invoice)],
    signal: paymentFailedSignal,
    signalArgs: [invoice],
  }));
  await w.runUntil(handle.result());
  await save('dunning-pro-deleted', handle.workflowId);
}, 300_000);

it('records stuckTransactionsWorkflow: P1, escalated twice, resolved, RCA reminder', async () => {
  const taskQueue = 'record-stuck';
  const w = await ts.newWorker(taskQueue);
  const tenant = await insertTenant(ts.deps.pool, 'pro', { processor: 'paystack' });
  const reference = `record-${tenant.id}`;
  await ts.deps.pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, created_at)
     VALUES ($1, 'paystack', $2, 'pending', 500000, 'NGN', now() - interval '2 hours')`,
    [tenant.id, reference],
  );
  ts.paystack.addTransaction({ reference, amount: 500000, currency: 'NGN', status: 'ongoing', createdAt: new Date() });
  const handle = track(await ts.env.client.workflow.start(stuckTransactionsWorkflow, {
    workflowId: `incident-stuck_transactions-${reference}`,
    taskQueue,
    args: [incidentInput('stuck_transactions', { references: [reference] }, { key: reference, severity: 'P1' })],
  }));
  await w.runUntil(async () => {
    await untilIncident(handle, (s) => s.stepsDone.length === 2, 'first verification done');
    await ts.env.sleep(50 * MINUTE);
    await handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'settled by hand' }] });
    await handle.result();
  });
  await save('incident-stuck-transactions-p1', handle.workflowId);
}, 300_000);

it('records customerNoticeWorkflow: a payment failure notice emailed and on the dashboard', async () => {
  const taskQueue = 'record-notice';
  const w = await ts.newWorker(taskQueue);
  const tenant = await insertTenant(ts.deps.pool, 'pro');
  const handle = track(await ts.env.client.workflow.start(customerNoticeWorkflow, {
    workflowId: `notice-${tenant.id}`,
    taskQueue,
    args: [
      {
        tenantId: tenant.id,
        template: 'paymentFailureNotice',
        vars: {
          tenant_id: tenant.id,
          invoice_id: `in_record_${tenant.id}`,
          grace_days: 7,
          billing_portal_url: TEST_PORTAL_URL,
        },
      },
    ],
  }));
  await w.runUntil(handle.result());
  await save('customer-notice-payment-failure', handle.workflowId);
}, 300_000);

it('records overageWorkflow: Pro throttled at 120 %, blocked at 150 %, lifted at the period end', async () => {
  const taskQueue = 'record-overage';
  const w = await ts.newWorker(taskQueue);
  const meter = 'api.calls';
  const tenant = await insertTenant(ts.deps.pool, 'pro');
  await ts.deps.pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, 1000)', [
    tenant.id,
    meter,
  ]);
  // A monthly period that ends two days from the server's clock: enforcement started late in the month.
  const periodEnd = new Date(Math.floor((await ts.env.currentTimeMs()) / HOUR) * HOUR + 2 * DAY);
  const periodStart = new Date(periodEnd.getTime() - 30 * DAY);
  const handle = track(await ts.env.client.workflow.start(overageWorkflow, {
    workflowId: `overage-${tenant.id}-${periodStart.toISOString().slice(0, 7)}`,
    taskQueue,
    args: [
      {
        tenantId: tenant.id,
        tier: 'pro',
        periodStart: periodStart.toISOString(),
        periodEnd: periodEnd.toISOString(),
        policy: defaultPolicy,
        measureEveryMinutes: 60,
      },
    ],
  }));
  let hour = 0;
  /** Lands another hour of rollups and tells the workflow, as the rollup job does. */
  const addUsage = async (quantity: number) => {
    await ts.deps.pool.query(
      'INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, $4, 1)',
      [tenant.id, meter, new Date(periodStart.getTime() + hour++ * HOUR), quantity],
    );
    await handle.signal(usageUpdatedSignal);
  };
  const until = (predicate: (s: OverageStatus) => boolean, what: string) =>
    pollUntil(() => handle.query(overageStatusQuery), predicate, what, {
      explain: (last) => `last status: ${JSON.stringify(last)}`,
    });
  await w.runUntil(async () => {
    await addUsage(1100);
    await until((s) => s.usage.some((u) => u.quantity === '1100'), 'usage at 110 % measured');
    await addUsage(100);
    await until((s) => s.enforced === 'throttled', 'throttled at 120 %');
    await addUsage(300);
    await until((s) => s.enforced === 'blocked', 'blocked at 150 %');
    await handle.result();
  });
  await save('overage-pro-throttled-blocked-reset', handle.workflowId);
}, 300_000);

it('records usageBackfillWorkflow: three days of one tenant rebuilt in 6-hour chunks, four per call', async () => {
  const taskQueue = 'record-backfill';
  const w = await ts.newWorker(taskQueue);
  const window: TimeWindow = { from: '2026-10-05T00:00:00.000Z', to: '2026-10-08T00:00:00.000Z' };
  const { id: tenantId } = await insertTenant(ts.deps.pool, 'pro');
  await insertUsageEvents(
    ts.deps.pool,
    generateUsageEvents({
      tenants: [tenantId],
      meters: ['api.calls', 'compute.seconds', 'storage.gb_hours'],
      window,
      count: 3000,
      seed: 5,
    }),
  );
  const handle = track(await ts.env.client.workflow.start(usageBackfillWorkflow, {
    workflowId: `usage-backfill-${tenantId}`,
    taskQueue,
    args: [
      {
        ...window,
        tenants: [tenantId],
        chunkHours: 6,
        chunksPerCall: 4,
        policy: rollupPolicyOf(defaultPolicy),
      },
    ],
  }));
  await w.runUntil(handle.result());
  await save('usage-backfill-three-days', handle.workflowId);
}, 300_000);

it('records usageRollupWorkflow: the first attempt fails on a locked row, the rerun 2 hours later succeeds', async () => {
  const taskQueue = 'record-rollup';
  const w = await ts.newWorker(taskQueue);
  const window: TimeWindow = { from: '2026-11-01T10:00:00.000Z', to: '2026-11-01T12:00:00.000Z' };
  const meters = ['api.calls', 'storage.gb_hours'];
  const { pool } = ts.deps;
  const { id: tenantId } = await insertTenant(pool, 'pro');
  await insertUsageEvents(
    pool,
    generateUsageEvents({ tenants: [tenantId], meters, window, count: 400, seed: 7 }),
  );
  // A stale rollup row held in an open transaction: the first attempt waits out its lock timeout on it and fails.
  await pool.query(
    `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, 1, 1)`,
    [tenantId, meters[0], window.from],
  );
  const session = await pool.connect();
  let held = true;
  const release = async () => {
    if (!held) return;
    held = false;
    await session.query('ROLLBACK');
    session.release();
  };
  try {
    await session.query('BEGIN');
    await session.query(
      'SELECT 1 FROM usage_rollups WHERE tenant_id = $1 AND meter = $2 AND hour = $3 FOR UPDATE',
      [tenantId, meters[0], window.from],
    );
    const handle = track(await ts.env.client.workflow.start(usageRollupWorkflow, {
      workflowId: `usage-rollup-${tenantId}`,
      taskQueue,
      args: [{ window, lookbackHours: 2, tenants: [tenantId], policy: rollupPolicyOf(defaultPolicy) }],
    }));
    await w.runUntil(async () => {
      // Time only skips while the result is awaited: the first attempt fails in real time and the job waits.
      await pollUntil(
        () => handle.query(rollupStatusQuery),
        (s) => s.state === 'waiting_to_rerun',
        'the first attempt failing',
        { explain: (last) => `last status: ${JSON.stringify(last)}` },
      );
      await release();
      await handle.result();
    });
    await save('usage-rollup-rerun-recovers', handle.workflowId);
  } finally {
    await release();
  }
}, 300_000);

it('records usageMeteringFailureWorkflow: P1, backfill fails then succeeds, invoice recalculated, release approved late', async () => {
  const taskQueue = 'record-metering';
  const w = await ts.newWorker(taskQueue);
  const { pool } = ts.deps;
  const window: TimeWindow = { from: '2026-06-01T00:00:00.000Z', to: '2026-06-01T06:00:00.000Z' };
  const { id: tenantId } = await insertTenant(pool, 'pro');
  const { meter, rateId } = await pricedMeter(pool, 'rec_calls', 'pro', 2, 'USD');
  const events = generateUsageEvents({ tenants: [tenantId], meters: [meter], window, count: 60, seed: 11 });
  await insertUsageEvents(pool, events);
  // Half the hours' rollups lost: the open invoice was priced from what was left.
  for (const r of expectedRollups(events, window, [tenantId]).filter((_, i) => i % 2 === 0)) {
    await pool.query(
      'INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, $4, $5)',
      [r.tenantId, r.meter, r.hour, r.quantity, r.eventCount],
    );
  }
  await usageInvoice(pool, {
    tenantId,
    meter,
    rateId,
    unitPriceMinor: 2,
    currency: 'USD',
    period: window,
    paid: false,
  });
  // Writing the tenant's rollups fails until the trigger is dropped.
  const refuse = `record_refuse_rollup_${unique()}`;
  await pool.query(
    `CREATE FUNCTION ${refuse}() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN RAISE EXCEPTION 'rollup storage unavailable (recording)'; END $$`,
  );
  await pool.query(
    `CREATE TRIGGER ${refuse} BEFORE INSERT OR UPDATE ON usage_rollups FOR EACH ROW
     WHEN (NEW.tenant_id = '${tenantId}') EXECUTE FUNCTION ${refuse}()`,
  );
  const repair = async () => {
    await pool.query(`DROP TRIGGER IF EXISTS ${refuse} ON usage_rollups`);
    await pool.query(`DROP FUNCTION IF EXISTS ${refuse}()`);
  };
  try {
    const handle = track(await ts.env.client.workflow.start(usageMeteringFailureWorkflow, {
      workflowId: `incident-usage_metering_failure-record-${tenantId}`,
      taskQueue,
      args: [
        incidentInput(
          'usage_metering_failure',
          { ...window, tenantIds: [tenantId] },
          { key: `record-${tenantId}`, tenantIds: [tenantId] },
        ),
      ],
    }));
    await w.runUntil(async () => {
      await untilIncident(handle, (s) => s.currentStep?.startsWith('waiting to rerun') ?? false, 'attempt 1');
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
      await repair();
      await ts.env.sleep(2 * HOUR);
      await untilIncident(handle, (s) => s.waitingForApproval !== null, 'release approval requested');
      // Nobody answers for the P1 response time: the next level is paged.
      await ts.env.sleep(31 * MINUTE);
      await untilIncident(
        handle,
        (s) => s.timeline.some((e) => e.event === 'approval_overdue'),
        'approval overdue',
      );
      await handle.executeUpdate(approveStepUpdate, {
        args: [{ step: 'release invoice delivery', approved: true, operator: 'ada', reason: 'totals checked' }],
      });
      await closeWithRootCause(handle, 'rollup tablespace full');
    });
    await save('incident-usage-metering-failure-p1', handle.workflowId);
  } finally {
    await repair();
  }
}, 300_000);

it('records billingDisputeWorkflow: a double-counted hour rebuilt, the paid invoice recalculated, a Paystack refund', async () => {
  const taskQueue = 'record-dispute';
  const w = await ts.newWorker(taskQueue);
  const { pool } = ts.deps;
  const march: TimeWindow = { from: '2026-03-01T00:00:00.000Z', to: '2026-04-01T00:00:00.000Z' };
  const tenant = await insertTenant(pool, 'pro', {
    processor: 'paystack',
    paystackAuthorization: `AUTH_${unique()}`,
  });
  await pool.query(`UPDATE tenants SET currency = 'NGN' WHERE id = $1`, [tenant.id]);
  const { meter, rateId } = await pricedMeter(pool, 'dsp_calls', 'pro', 5, 'NGN');
  // Ten events of 100 units, two per hour from March 2nd 10:00; the first hour's rollup counted twice.
  const hours = ['10', '11', '12', '13', '14'].map((h) => `2026-03-02T${h}:00:00.000Z`);
  for (const [i, hour] of hours.entries()) {
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
  await pool.query('UPDATE usage_rollups SET quantity = quantity * 2 WHERE tenant_id = $1 AND hour = $2', [
    tenant.id,
    hours[0],
  ]);
  // Billed 1200 units at 5 kobo and paid on Paystack; 1000 were used.
  const invoice = await usageInvoice(pool, {
    tenantId: tenant.id,
    meter,
    rateId,
    unitPriceMinor: 5,
    currency: 'NGN',
    period: march,
    paid: true,
  });
  const reference = `dsp-${tenant.id}`;
  await pool.query(
    `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency, paid_at)
     VALUES ($1, $2, 'paystack', $3, 'success', $4, 'NGN', now())`,
    [tenant.id, invoice.invoiceId, reference, invoice.totalMinor],
  );
  ts.paystack.addTransaction({
    reference,
    amount: invoice.totalMinor,
    currency: 'NGN',
    status: 'success',
    createdAt: new Date(),
  });
  const handle = track(await ts.env.client.workflow.start(billingDisputeWorkflow, {
    workflowId: `incident-overbilling_dispute-${invoice.invoiceId}`,
    taskQueue,
    args: [
      incidentInput(
        'overbilling_dispute',
        {
          tenantId: tenant.id,
          invoiceId: invoice.invoiceId,
          meter,
          from: march.from,
          to: march.to,
          reason: 'customer reports more API calls billed than made',
        },
        { key: invoice.invoiceId, tenantIds: [tenant.id] },
      ),
    ],
  }));
  await w.runUntil(closeWithRootCause(handle, 'rollup job double-counted a retried hour'));
  await save('incident-billing-dispute-paystack-refund', handle.workflowId);
}, 300_000);

it('records webhookFailureWorkflow: a missed Paystack charge applied, a failing Stripe event retried until fixed; RCA reminder', async () => {
  // A database of its own: the incident replays every failed event in its window, and only this one's may be there.
  const database = await privateDatabase('record_wh');
  const deps = testWorkerDependencies({
    databaseUrl: database.url,
    gateways: { paystack: fakePaystackGateway(ts.paystack) },
    incidents: ts.receivers.incidents,
    temporalClient: ts.env.client,
  });
  try {
    const taskQueue = 'record-webhook-failure';
    const w = await ts.newWorker(taskQueue, deps);
    const { pool } = deps;
    // invoice.paid names tenant `payer`, but our invoice belongs to `owner`: every replay fails until it is corrected.
    const [payer, owner] = [await insertTenant(pool, 'pro'), await insertTenant(pool, 'pro')];
    const processorInvoiceId = `in_${unique()}`;
    const invoice = await insertOpenInvoice(pool, owner.id, { processor: 'stripe', processorInvoiceId });
    const eventId = `evt_${unique()}`;
    const paidAt = Math.floor(Date.now() / 1000) - 3600;
    const payload = {
      id: eventId,
      object: 'event',
      type: 'invoice.paid',
      created: paidAt,
      data: {
        object: {
          id: processorInvoiceId,
          object: 'invoice',
          customer: `cus_${unique()}`,
          metadata: { tenant_id: payer.id },
          amount_due: invoice.amountMinor,
          amount_paid: invoice.amountMinor,
          currency: 'usd',
          status: 'paid',
          status_transitions: { paid_at: paidAt },
        },
      },
    };
    await pool.query(
      `INSERT INTO webhook_events (provider, event_key, event_type, payload, signature_valid, status, attempts, error,
                                   received_at)
       VALUES ('stripe', $1, 'invoice.paid', $2::jsonb, true, 'failed', 1, 'InvoiceOwnerMismatchError: ...',
               now() - interval '1 hour')`,
      [eventId, JSON.stringify(payload)],
    );
    // A Paystack charge whose charge.success never reached us: our row is still pending, Paystack says success.
    // The Paystack fake starts empty, so reconciliation sees only this recording's transactions.
    ts.paystack.reset();
    const paystackPayer = await insertTenant(pool, 'pro', { processor: 'paystack' });
    const paystackInvoice = await insertOpenInvoice(pool, paystackPayer.id, { processor: 'paystack' });
    const reference = `missed-${paystackPayer.id}`;
    await pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'paystack', $3, 'pending', $4, 'USD')`,
      [paystackPayer.id, paystackInvoice.invoiceId, reference, paystackInvoice.amountMinor],
    );
    ts.paystack.addTransaction({
      reference,
      amount: paystackInvoice.amountMinor,
      currency: 'USD',
      createdAt: new Date(),
      email: paystackPayer.billingEmail,
    });
    // Two deliveries whose signature did not verify, as the ingress records them.
    for (const [provider, n] of [
      ['stripe', 1],
      ['paystack', 2],
    ] as const) {
      await pool.query(
        `INSERT INTO webhook_events (provider, event_key, event_type, payload, signature_valid, status, attempts, error)
         VALUES ($1, $2, 'unverified', '{}'::jsonb, false, 'rejected', 1, 'bad')`,
        [provider, `rejected:record-${n}-${unique()}`],
      );
    }
    const input = incidentInput('webhook_failure', {}, { key: `fp-${unique()}`, source: 'alertmanager' });
    const handle = track(await ts.env.client.workflow.start(webhookFailureWorkflow, {
      workflowId: `incident-webhook_failure-${input.key}`,
      taskQueue,
      args: [input],
    }));
    await w.runUntil(async () => {
      await untilIncident(
        handle,
        (s) => s.stepsDone.some((d) => d.name.startsWith('post to the status page')),
        'the first replay and reconciliation',
      );
      // Retry rounds at 15, 45 and 105 minutes still fail; then someone corrects the invoice's tenant.
      await ts.env.sleep(2 * HOUR);
      await untilIncident(
        handle,
        (s) => s.stepsDone.some((d) => d.name === 'retry round 4') && s.currentStep === null,
        'three retry rounds',
      );
      await pool.query('UPDATE invoices SET tenant_id = $2 WHERE id = $1', [invoice.invoiceId, payer.id]);
      await handle.result();
    });
    await save('incident-webhook-failure-fixed-on-retry', handle.workflowId);
  } finally {
    await deps.close();
    await database.drop();
  }
}, 300_000);

it('records refundWorkflow: above the approval threshold, approval overdue after 4 hours, approved, refunded', async () => {
  const taskQueue = 'record-refund';
  const w = await ts.newWorker(taskQueue);
  const { pool } = ts.deps;
  // NGN 10,000.00: refunds above it wait for a person.
  const policy = parsePolicy({ refund: { approvalAboveMinor: { NGN: 1_000_000 } } });
  // A NGN 50,000.00 payment made 3 days ago by the server's clock, which runs ahead of the database's.
  const now = new Date(await ts.env.currentTimeMs());
  const tenant = await insertTenant(pool, 'pro', { processor: 'paystack' });
  await pool.query(
    `INSERT INTO subscriptions (tenant_id, tier, status, current_period_start, current_period_end, processor)
     VALUES ($1, 'pro', 'active', $2::timestamptz - interval '3 days', $2::timestamptz + interval '27 days', 'paystack')`,
    [tenant.id, now],
  );
  const reference = `T-${tenant.id}`;
  await pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, paid_at)
     VALUES ($1, 'paystack', $2, 'success', 5000000, 'NGN', $3::timestamptz - interval '3 days')`,
    [tenant.id, reference, now],
  );
  ts.paystack.addTransaction({ reference, amount: 5_000_000, currency: 'NGN', createdAt: new Date() });
  const handle = track(await ts.env.client.workflow.start(refundWorkflow, {
    workflowId: `incident-refund-${reference}`,
    taskQueue,
    args: [
      incidentInput(
        'refund',
        { tenantId: tenant.id, reference, reason: 'service outage goodwill', subscriptionChange: 'none' as const },
        { key: reference, tenantIds: [tenant.id], policy },
      ),
    ],
  }));
  await w.runUntil(async () => {
    await untilIncident(handle, (s) => s.waitingForApproval !== null, 'waiting for approval');
    await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
    await ts.env.sleep(241 * MINUTE);
    await untilIncident(
      handle,
      (s) => s.timeline.some((e) => e.event === 'approval_overdue'),
      'approval overdue',
    );
    await handle.executeUpdate(approveStepUpdate, {
      args: [{ step: 'approve the refund', approved: true, operator: 'finance-lead' }],
    });
    await closeWithRootCause(handle, 'goodwill');
  });
  await save('incident-refund-approved', handle.workflowId);
}, 300_000);

it('records subscriptionActivationWorkflow: a Paystack trial converted once Paystack confirms the payment', async () => {
  const taskQueue = 'record-activation';
  const w = await ts.newWorker(taskQueue);
  const { pool } = ts.deps;
  const tenant = await insertTenant(pool, 'pro', { processor: 'paystack' });
  await pool.query(
    `INSERT INTO subscriptions (tenant_id, tier, status, billing_cycle, current_period_start, current_period_end,
                                trial_ends_at, processor)
     VALUES ($1, 'pro', 'trialing', 'monthly', now() - interval '12 days', now() + interval '2 days',
             now() + interval '2 days', 'paystack')`,
    [tenant.id],
  );
  const reference = `T${unique()}`;
  await pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency)
     VALUES ($1, 'paystack', $2, 'pending', 490000, 'NGN')`,
    [tenant.id, reference],
  );
  ts.paystack.addTransaction({ reference, amount: 490_000, currency: 'NGN', createdAt: new Date() });
  const handle = track(await ts.env.client.workflow.start(subscriptionActivationWorkflow, {
    workflowId: `incident-subscription_activation_failure-${tenant.id}-${reference}`,
    taskQueue,
    args: [
      incidentInput(
        'subscription_activation_failure',
        { tenantId: tenant.id, reference, tier: 'pro' as const, billingCycle: 'monthly' as const, trialConversion: true },
        { key: `${tenant.id}-${reference}`, tenantIds: [tenant.id] },
      ),
    ],
  }));
  await w.runUntil(closeWithRootCause(handle, 'webhook lost'));
  await save('incident-subscription-activation-trial', handle.workflowId);
}, 300_000);

it('records billingSystemOutageWorkflow: P1 writes failing, read-only, failover approved late, probes back off', async () => {
  // A database of its own: read-only mode and the table lock are global to a database.
  const database = await privateDatabase('record_outage');
  // The billing API's health endpoint, answering 503 until the outage ends.
  let healthStatus = 503;
  const healthServer = createServer((_req, res) => {
    res.writeHead(healthStatus, { 'Content-Type': 'text/plain' });
    res.end(healthStatus === 200 ? 'ok' : 'down');
  });
  await new Promise<void>((r) => healthServer.listen(0, '127.0.0.1', r));
  const healthUrl = `http://127.0.0.1:${(healthServer.address() as AddressInfo).port}/healthz`;
  const deps = testWorkerDependencies({
    databaseUrl: database.url,
    gateways: { paystack: fakePaystackGateway(ts.paystack) },
    incidents: {
      ...ts.receivers.incidents,
      healthUrl,
      scaleUpHook: ts.receivers.hookUrl('scale-up'),
      failoverHook: ts.receivers.hookUrl('failover'),
    },
  });
  // Writes to payments stall behind a lock nobody releases.
  const locker = await deps.pool.connect();
  let locked = true;
  const unlock = async () => {
    if (!locked) return;
    locked = false;
    await locker.query('ROLLBACK');
    locker.release();
  };
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE payment_transactions IN EXCLUSIVE MODE');
    const taskQueue = 'record-billing-outage';
    const w = await ts.newWorker(taskQueue, deps);
    const named = await insertTenant(deps.pool, 'enterprise');
    const key = `fp-${unique()}`;
    // Real durations; only the database probe's I/O timeout is shortened, since each probe waits it out on the lock.
    const policy = parsePolicy({ billingSystemOutage: { databaseTimeoutMs: 500 } });
    const handle = track(await ts.env.client.workflow.start(billingSystemOutageWorkflow, {
      workflowId: `incident-billing_system_outage-${key}`,
      taskQueue,
      args: [
        incidentInput(
          'billing_system_outage',
          { symptom: 'payments and account changes are failing' },
          { key, tenantIds: [named.id], policy, source: 'alertmanager', openedBy: 'alertmanager' },
        ),
      ],
    }));
    await w.runUntil(async () => {
      await untilIncident(handle, (s) => s.waitingForApproval !== null, 'the failover question');
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
      // Nobody answers the failover question for the P1 response time: the next level hears of it.
      await ts.env.sleep(16 * MINUTE);
      await untilIncident(
        handle,
        (s) => s.timeline.some((e) => e.event === 'approval_overdue'),
        'approval overdue',
      );
      await handle.executeUpdate(approveStepUpdate, {
        args: [{ step: 'failover', approved: true, operator: 'ada', reason: 'region B is healthy' }],
      });
      await untilIncident(handle, (s) => s.currentStep === 'waiting for recovery', 'waiting for recovery');
      // Still failing: probes at 1, 3 and 7 minutes find writes blocked.
      await ts.env.sleep(8 * MINUTE);
      // The lock is released and the API recovers: the probe at 15 minutes finds it healthy.
      await unlock();
      healthStatus = 200;
      await ts.env.sleep(8 * MINUTE);
      await closeWithRootCause(handle, 'a migration held a lock on payment_transactions');
    });
    await save('incident-billing-system-outage-p1-failover', handle.workflowId);
  } finally {
    await unlock();
    await deps.close();
    await new Promise<void>((r) => healthServer.close(() => r()));
    await database.drop();
  }
}, 300_000);

it('records paymentProcessorOutageWorkflow: Paystack down 45 minutes, grace and paused dunning, retries and credits', async () => {
  const taskQueue = 'record-processor-outage';
  const w = await ts.newWorker(taskQueue);
  const { pool } = ts.deps;
  const paystackTenant = async (): Promise<{ tenant: TestTenant; code: string }> => {
    const code = `AUTH_${unique()}`;
    const tenant = await insertTenant(pool, 'pro', { processor: 'paystack', paystackAuthorization: code });
    return { tenant, code };
  };
  await w.runUntil(async () => {
    // A tenant in dunning after a declined retry, and one whose payment just failed on Paystack.
    const dunned = await paystackTenant();
    ts.paystack.authorize(dunned.code, { outcome: 'soft_decline' });
    const dunnedInvoice = await insertOpenInvoice(pool, dunned.tenant.id, { totalMinor: 4900 });
    const dunning = track(await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
      workflowId: `dunning-${dunned.tenant.id}`,
      taskQueue,
      args: [dunningInput(dunned.tenant, dunnedInvoice, 'paystack')],
      signal: paymentFailedSignal,
      signalArgs: [dunnedInvoice],
    }));
    await pollUntil(
      () => dunning.query(dunningStatusQuery),
      (s) => s.phase === 'warning',
      'the dunning lifecycle in its warning phase',
    );
    const failed = await paystackTenant();
    const failedInvoice = await insertOpenInvoice(pool, failed.tenant.id, { totalMinor: 4900 });
    await pool.query(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
       VALUES ($1, $2, 'paystack', $3, 'failed', 4900, 'USD')`,
      [failed.tenant.id, failedInvoice.invoiceId, `failed-${failed.tenant.id}`],
    );
    // Paystack goes down: the first check and the next five probes fail; the cards work once it is back.
    ts.paystack.authorize(dunned.code, { outcome: 'success' });
    ts.paystack.authorize(failed.code, { outcome: 'success' });
    ts.paystack.failNext(6, 503);
    const input = incidentInput('payment_processor_outage', {
      processor: 'paystack' as const,
      tenantIds: [dunned.tenant.id, failed.tenant.id],
    });
    const handle = track(await ts.env.client.workflow.start(paymentProcessorOutageWorkflow, {
      workflowId: `incident-payment_processor_outage-${input.key}`,
      taskQueue,
      args: [input],
    }));
    try {
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
      await untilIncident(handle, (s) => s.currentStep === 'waiting for recovery', 'containment done');
      // Probes back off 1, 2, 4, 8, 15 minutes; the one at 45 minutes finds Paystack answering.
      await ts.env.sleep(46 * MINUTE);
      await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'recovered and closing',
      );
      // Dunning resumed and the retried payment collected: the lifecycle ends recovered.
      await pollUntil(
        () => dunning.query(dunningStatusQuery),
        (s) => s.phase === 'recovered',
        'the dunning lifecycle recovered',
      );
      // The root cause before awaiting any result: time skips while a result is awaited, to the RCA reminder too.
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'Paystack regional outage' }],
      });
      await handle.result();
      await dunning.result();
    } finally {
      ts.paystack.failNext(0, 503);
    }
    await save('incident-payment-processor-outage-paystack', handle.workflowId);
  });
}, 300_000);

it('records webhookDeliveryWorkflow: a receiver down for an hour, then two access changes delivered in order', async () => {
  // A database of its own: no other worker may dispatch this stream.
  const database = await privateDatabase('record_whout');
  const deps = testWorkerDependencies({ databaseUrl: database.url });
  const receiver = await startWebhookReceiver();
  try {
    const taskQueue = 'record-webhook-delivery';
    const w = await ts.newWorker(taskQueue, deps);
    const { pool } = deps;
    const tenant = await insertTenant(pool, 'pro');
    const { endpoint } = await createEndpoint(pool, { url: receiver.url, events: null, tenants: [tenant.id] });
    const change = { tenantId: tenant.id, source: 'dunning' as const, workflowId: `dunning-${tenant.id}` };
    await changeServiceControlHold(pool, { ...change, operator: 'billops', reason: 'soft limit', fields: { rateLimitPercent: 10 } });
    await changeServiceControlHold(pool, { ...change, operator: 'billops', reason: 'recovered', fields: { rateLimitPercent: 100 } });
    receiver.answer(503);
    const workflowId = webhookDeliveryWorkflowId(endpoint.id, tenant.id);
    await w.runUntil(async () => {
      const handle = track(
        await ts.env.client.workflow.start(webhookDeliveryWorkflow, {
          workflowId,
          taskQueue,
          args: [
            {
              endpointId: endpoint.id,
              stream: tenant.id,
              policy: { webhookRetry: defaultPolicy.webhookRetry, apiRetry: defaultPolicy.apiRetry },
            },
          ],
        }),
      );
      // Retries at 15 and 45 minutes fail; the one at 1 h 45 finds the receiver back.
      await ts.env.sleep(HOUR);
      receiver.answer(200);
      await handle.result();
    });
    await save('webhook-delivery-down-then-delivered', workflowId);
  } finally {
    await receiver.close();
    await deps.close();
    await database.drop();
  }
}, 300_000);
