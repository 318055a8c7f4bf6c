// `billops payments record` as an operator runs it (seed 000 "Enable manual payment acceptance"): the payment and its
// audit row recorded, applied to the invoice, and a soft-limited lifecycle on the time-skipping server recovered.
import { readServiceControls } from '../../db/serviceControls';
import type { DunningStatus } from '../../domain/dunning';
import { dunningStatusQuery, paymentFailedSignal } from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { operatorEnv, runBillops, type CliRun } from '../support/billopsCli';
import { dunningInput, insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { pollUntil } from '../support/poll';
import { startTimeSkipping, terminateWhenIdle, type TimeSkipping } from '../support/timeSkipping';

const DAY = 86_400_000;
/** Nothing listens here: the CLI cannot reach Temporal. */
const NO_TEMPORAL = '127.0.0.1:1';

let ts: TimeSkipping;
/** Lifecycles a test started; one a failed assertion left running is stopped, so time can move for the next test. */
const started: string[] = [];

beforeAll(async () => {
  ts = await startTimeSkipping();
});

afterEach(async () => {
  for (const workflowId of started.splice(0)) {
    const handle = ts.env.client.workflow.getHandle(workflowId);
    const { status } = await handle.describe();
    if (status.name === 'RUNNING') await terminateWhenIdle(handle);
  }
});

afterAll(async () => {
  await ts?.close();
});

/** bin/billops against the time-skipping server (or `temporalAddress`) and the shared database. */
function billops(args: string[], temporalAddress = ts.env.address): Promise<CliRun> {
  return runBillops(
    ['payments', 'record', ...args],
    operatorEnv('cli-payments', {
      TEMPORAL_ADDRESS: temporalAddress,
      BILLOPS_OPERATOR: 'nobody@billops.test',
    }),
  );
}

function record(
  invoiceId: string,
  amount: number | string,
  reference: string,
  more: { currency?: string; method?: string; extra?: string[]; temporal?: string } = {},
): Promise<CliRun> {
  return billops(
    [
      '--invoice',
      invoiceId,
      '--amount',
      String(amount),
      '--currency',
      more.currency ?? 'USD',
      '--method',
      more.method ?? 'bank_transfer',
      '--reference',
      reference,
      '--operator',
      'alice@billops.test',
      ...(more.extra ?? []),
    ],
    more.temporal,
  );
}

async function invoiceRow(invoiceId: string) {
  const { rows } = await ts.deps.pool.query<{ status: string; amount_paid_minor: string | number }>(
    'SELECT status, amount_paid_minor FROM invoices WHERE id = $1',
    [invoiceId],
  );
  return { status: rows[0]?.status, amountPaidMinor: Number(rows[0]?.amount_paid_minor) };
}

/** A Pro tenant's lifecycle for one 4900-cent invoice, run into its soft limit (grace is 7 days). */
async function softLimitedLifecycle(label: string) {
  const tenant: TestTenant = await insertTenant(ts.deps.pool, 'pro');
  const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id, { totalMinor: 4900 });
  const taskQueue = `cli-payments-${label}-${tenant.id}`;
  const worker = await ts.newWorker(taskQueue);
  const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
    workflowId: `dunning-${tenant.id}`,
    taskQueue,
    args: [dunningInput(tenant, invoice)],
    signal: paymentFailedSignal,
    signalArgs: [invoice],
  });
  started.push(handle.workflowId);
  const status = () => handle.query(dunningStatusQuery);
  /** Runs `body` with the worker polling, after the lifecycle has reached its soft limit. */
  const whileSoftLimited = <T>(body: () => Promise<T>) =>
    worker.runUntil(async () => {
      // Skipping time while the first activities are in flight trips the server: let t=0 settle first.
      await pollUntil(status, (s) => s.timeline.some((e) => e.event === 'retry-1'), 'the first retry');
      await ts.env.sleep(8 * DAY);
      expect((await status()).phase).toBe('soft_limited');
      const limited = await readServiceControls(ts.deps.pool, tenant.id);
      expect(limited).toMatchObject({ rateLimitPercent: 10, apiBlocked: false, suspended: false });
      return body();
    });
  return { tenant, invoice, handle, status, whileSoftLimited };
}

/** The lifecycle's status once `done` holds (a signal is handled by the worker a moment after the CLI sent it). */
function statusWhen(
  status: () => Promise<DunningStatus>,
  done: (s: DunningStatus) => boolean,
  what: string,
): Promise<DunningStatus> {
  return pollUntil(status, done, what, { explain: (s) => `phase ${s.phase}` });
}

describe('billops payments record', () => {
  it('a partial bank transfer stays partial; the rest pays the invoice and the soft-limited lifecycle recovers', async () => {
    const { tenant, invoice, handle, status, whileSoftLimited } = await softLimitedLifecycle('recover');
    const workflowId = `dunning-${tenant.id}`;

    const outcome = await whileSoftLimited(async () => {
      const partial = await record(invoice.invoiceId, 2000, `BT-${tenant.id}-1`, {
        extra: ['--reason', 'customer wired part of it while Stripe was down', '--json'],
      });
      expect(partial).toMatchObject({ code: 0, stderr: '' });
      expect(JSON.parse(partial.stdout)).toMatchObject({
        recorded: 'new',
        tenantId: tenant.id,
        invoiceId: invoice.invoiceId,
        amountMinor: 2000,
        currency: 'USD',
        method: 'bank_transfer',
        reference: `BT-${tenant.id}-1`,
        operator: 'alice@billops.test',
        reason: 'customer wired part of it while Stripe was down',
        application: { applied: 'partial', amountPaidMinor: 2000, totalMinor: 4900, currency: 'USD' },
        lifecycle: { workflowId, signalled: false },
      });
      expect(await invoiceRow(invoice.invoiceId)).toEqual({ status: 'open', amountPaidMinor: 2000 });
      // A partial payment does not recover anything.
      expect((await status()).phase).toBe('soft_limited');

      const rest = await record(invoice.invoiceId, 2900, `BT-${tenant.id}-2`, {
        currency: 'usd',
        method: 'card',
      });
      expect(rest).toMatchObject({ code: 0, stderr: '' });
      expect(rest.stdout).toContain(
        `recorded USD 29.00 by card, reference BT-${tenant.id}-2, for invoice ${invoice.invoiceId} ` +
          `of tenant ${tenant.id} (operator alice@billops.test)`,
      );
      expect(rest.stdout).toContain(`invoice ${invoice.invoiceId} is paid`);
      expect(rest.stdout).toContain(`signalled paymentSucceeded to ${workflowId}`);
      // Queries need the worker: read the final status before it stops.
      return { result: await handle.result(), final: await status() };
    });

    expect(outcome.result).toEqual({
      tenantId: tenant.id,
      phase: 'recovered',
      paidInvoices: [invoice.invoiceId],
    });
    expect(await invoiceRow(invoice.invoiceId)).toEqual({ status: 'paid', amountPaidMinor: 4900 });
    const { final } = outcome;
    expect(final.timeline).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event: 'service restored', detail: 'payment recovered' }),
      ]),
    );
    expect(JSON.stringify(final.timeline)).toContain(`reference manual BT-${tenant.id}-2`);
    // Service restored: the dunning hold is lifted and nothing else restricts the tenant.
    const controls = await readServiceControls(ts.deps.pool, tenant.id);
    expect(controls).toMatchObject({
      rateLimitPercent: 100,
      apiBlocked: false,
      suspended: false,
      readOnly: false,
    });

    const payments = await ts.deps.pool.query(
      `SELECT processor, reference, status, amount_minor::int AS amount, currency FROM payment_transactions
        WHERE invoice_id = $1 ORDER BY reference`,
      [invoice.invoiceId],
    );
    expect(payments.rows).toEqual([
      {
        processor: 'manual',
        reference: `BT-${tenant.id}-1`,
        status: 'success',
        amount: 2000,
        currency: 'USD',
      },
      {
        processor: 'manual',
        reference: `BT-${tenant.id}-2`,
        status: 'success',
        amount: 2900,
        currency: 'USD',
      },
    ]);
    const audit = await ts.deps.pool.query(
      `SELECT reference, method, operator, reason, applied, recorded_at IS NOT NULL AS dated FROM manual_payments
        WHERE invoice_id = $1 ORDER BY reference`,
      [invoice.invoiceId],
    );
    expect(audit.rows).toEqual([
      {
        reference: `BT-${tenant.id}-1`,
        method: 'bank_transfer',
        operator: 'alice@billops.test',
        reason: 'customer wired part of it while Stripe was down',
        applied: 'partial',
        dated: true,
      },
      {
        reference: `BT-${tenant.id}-2`,
        method: 'card',
        operator: 'alice@billops.test',
        reason: 'manual payment acceptance',
        applied: 'paid',
        dated: true,
      },
    ]);

    // The same reference again is answered "already recorded": no second row, nothing counted twice.
    const again = await record(invoice.invoiceId, 2900, `BT-${tenant.id}-2`, { method: 'card' });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`already recorded: reference BT-${tenant.id}-2`);
    expect(again.stdout).toContain(`no running dunning lifecycle ${workflowId}`);
    const count = await ts.deps.pool.query(
      'SELECT count(*)::int AS n FROM payment_transactions WHERE invoice_id = $1',
      [invoice.invoiceId],
    );
    expect(count.rows[0].n).toBe(2);
    expect(await invoiceRow(invoice.invoiceId)).toEqual({ status: 'paid', amountPaidMinor: 4900 });
  });

  it('with Temporal unreachable the payment is recorded, exit 1 says to re-run; the re-run recovers the lifecycle', async () => {
    const { tenant, invoice, handle, status, whileSoftLimited } = await softLimitedLifecycle('offline');
    const workflowId = `dunning-${tenant.id}`;
    const reference = `WIRE-${tenant.id}`;

    const outcome = await whileSoftLimited(async () => {
      const offline = await record(invoice.invoiceId, 4900, reference, { temporal: NO_TEMPORAL });
      expect(offline.code).toBe(1);
      expect(offline.stdout).toContain(`recorded USD 49.00 by bank_transfer, reference ${reference}`);
      expect(offline.stderr).toContain(`could not signal paymentSucceeded to ${workflowId}`);
      expect(offline.stderr).toContain('cannot reach Temporal at 127.0.0.1:1');
      expect(offline.stderr).toContain('the payment is recorded; re-run this same command');
      expect(await invoiceRow(invoice.invoiceId)).toEqual({ status: 'paid', amountPaidMinor: 4900 });
      // Nobody told the lifecycle yet: still limited.
      expect((await status()).phase).toBe('soft_limited');

      const rerun = await record(invoice.invoiceId, 4900, reference);
      expect(rerun).toMatchObject({ code: 0, stderr: '' });
      expect(rerun.stdout).toContain(`already recorded: reference ${reference}`);
      expect(rerun.stdout).toContain(`signalled paymentSucceeded to ${workflowId}`);
      await statusWhen(status, (s) => s.phase === 'recovered', 'the lifecycle recovers');
      return handle.result();
    });
    expect(outcome).toEqual({ tenantId: tenant.id, phase: 'recovered', paidInvoices: [invoice.invoiceId] });
    const controls = await readServiceControls(ts.deps.pool, tenant.id);
    expect(controls).toMatchObject({ rateLimitPercent: 100, apiBlocked: false, suspended: false });
    const count = await ts.deps.pool.query(
      'SELECT count(*)::int AS n FROM manual_payments WHERE reference = $1',
      [reference],
    );
    expect(count.rows[0].n).toBe(1);
  });

  it('refuses an unknown invoice, another currency and a reused reference (exit 1); bad amounts and methods exit 2', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id, { totalMinor: 4900 });
    const ref = (n: number) => `REF-${tenant.id}-${n}`;

    const [unknown, euro, decimal, zero, negative, cash, noReference] = await Promise.all([
      record('in_nosuchinvoice', 100, ref(1)),
      record(invoice.invoiceId, 4900, ref(2), { currency: 'EUR' }),
      record(invoice.invoiceId, '12.50', ref(3)),
      record(invoice.invoiceId, '0', ref(4)),
      billops([
        '--invoice',
        invoice.invoiceId,
        '--amount=-5',
        '--currency',
        'USD',
        '--method',
        'card',
        '--reference',
        ref(5),
      ]),
      record(invoice.invoiceId, 100, ref(6), { method: 'cash' }),
      billops(['--invoice', invoice.invoiceId, '--amount', '100', '--currency', 'USD', '--method', 'card']),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no invoice in_nosuchinvoice');
    expect(euro.code).toBe(1);
    expect(euro.stderr).toContain(`invoice ${invoice.invoiceId} is in USD, not EUR`);
    for (const bad of [decimal, zero, negative]) {
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--amount must be a positive whole number of minor units');
    }
    expect(cash.code).toBe(2);
    expect(cash.stderr).toContain('--method must be one of bank_transfer, card, other (got "cash")');
    expect(noReference.code).toBe(2);
    expect(noReference.stderr).toContain('--reference R is required');
    const nothing = await ts.deps.pool.query(
      'SELECT count(*)::int AS n FROM payment_transactions WHERE invoice_id = $1',
      [invoice.invoiceId],
    );
    expect(nothing.rows[0].n).toBe(0);
    expect(await invoiceRow(invoice.invoiceId)).toEqual({ status: 'open', amountPaidMinor: 0 });

    // A reference already recorded for another payment is refused, never applied a second time.
    const first = await record(invoice.invoiceId, 1000, ref(7), { temporal: NO_TEMPORAL });
    expect(first.code).toBe(0); // partial: nothing to signal, so Temporal is not needed
    const reused = await record(invoice.invoiceId, 1500, ref(7));
    expect(reused.code).toBe(1);
    expect(reused.stderr).toContain(`reference ${ref(7)} is already recorded for USD 10.00 by bank_transfer`);
    expect(await invoiceRow(invoice.invoiceId)).toEqual({ status: 'open', amountPaidMinor: 1000 });

    // No lifecycle was ever started for this tenant.
    await expect(ts.env.client.workflow.getHandle(`dunning-${tenant.id}`).describe()).rejects.toThrow();
  });
});
