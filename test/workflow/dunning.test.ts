// The dunning lifecycle on the time-skipping server with the real policy durations, real PostgreSQL and real SMTP.
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { createPaystackGateway } from '../../drivers/paystack';
import { readCaughtMail } from '../../runtime/mailCatcher';
import { formatNoticeTime } from '../../domain/templates';
import type { DunningStatus } from '../../domain/dunning';
import {
  dunningStatusQuery,
  extendGraceUpdate,
  pauseSignal,
  paymentFailedSignal,
  paymentSucceededSignal,
  resumeSignal,
  retryNowSignal,
} from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { dunningInput, insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { startPaystackFake } from '../support/paystackFake';
import { pollUntil } from '../support/poll';
import { testEnv } from '../support/testRuntime';
import { startTimeSkipping, terminateWhenIdle, type TimeSkipping } from '../support/timeSkipping';
import { testWorkerDependencies } from '../support/workerDeps';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let ts: TimeSkipping;

beforeAll(async () => {
  ts = await startTimeSkipping();
});

afterAll(async () => {
  await ts?.close();
});

/** Hours after the first failure at which each timeline event was due, in workflow time. */
function hoursByEvent(status: DunningStatus): string[] {
  const t0 = Date.parse(status.timeline[0]!.at);
  return status.timeline.map((e) => `${e.event} @ ${(Date.parse(e.dueAt ?? e.at) - t0) / HOUR}h`);
}

/** Every scheduled step was performed within a minute of when it was due. */
function lateness(status: DunningStatus): number {
  return Math.max(
    ...status.timeline.filter((e) => e.dueAt).map((e) => Date.parse(e.at) - Date.parse(e.dueAt!)),
  );
}

/** Workflow-clock offsets carry the few real milliseconds between a test's signals; compare to the second. */
function toSeconds(ms: number): number {
  return Math.round(ms / 1000);
}

function subjectsTo(address: string): string[] {
  return readCaughtMail(testEnv('mailDir'))
    .filter((m) => m.to.includes(address))
    .map((m) => m.subject);
}

/**
 * Waits in real time until the lifecycle has recorded an event. Skipping time while the first activities are still
 * in flight trips the time-skipping server ("invalid history builder state"), so tests let t=0 settle first.
 */
function settled(handle: { query: (q: typeof dunningStatusQuery) => Promise<DunningStatus> }, event: string) {
  return pollUntil(
    () => handle.query(dunningStatusQuery),
    (status) => status.timeline.some((e) => e.event === event),
    `the lifecycle records "${event}"`,
  );
}

/** The payment recorded as our invoices table records one: what paymentSucceeded confirms before it counts. */
async function payInDatabase(invoiceId: string): Promise<void> {
  await ts.deps.pool.query(
    `UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = now() WHERE id = $1`,
    [invoiceId],
  );
}

async function startLifecycle(tenant: TestTenant, taskQueue: string) {
  const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id);
  const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
    workflowId: `dunning-${tenant.id}`,
    taskQueue,
    args: [dunningInput(tenant, invoice)],
    signal: paymentFailedSignal,
    signalArgs: [invoice],
  });
  return { handle, invoice };
}

describe('dunningWorkflow on the time-skipping server', () => {
  it('Pro, never paid: retries, notices, soft limit, hard limit, suspension and deletion at the runbook times', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-pro-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startLifecycle(tenant, taskQueue);
    let status: DunningStatus | undefined;
    const outcome = await worker.runUntil(async () => {
      const result = await handle.result();
      status = await handle.query(dunningStatusQuery);
      return result;
    });
    expect(outcome).toEqual({ tenantId: tenant.id, phase: 'deleted', paidInvoices: [] });
    expect(hoursByEvent(status!)).toEqual([
      'payment failed @ 0h',
      'retry-1 @ 0h',
      'warning @ 0h',
      'retry-2 @ 6h',
      'retry-3 @ 24h',
      'retry-4 @ 48h',
      'past-due-7d @ 168h',
      'soft-limit @ 168h',
      'hard-limit @ 240h',
      'past-due-14d @ 336h',
      'suspension @ 336h',
      'past-due-21d @ 504h',
      'deletion @ 2496h',
    ]);
    expect(lateness(status!)).toBeLessThan(60_000);
    // No processor is configured in this worker: each retry is recorded as failed for that reason.
    expect(status!.timeline[1]?.detail).toMatch(/failed \(no stripe processor configured/);

    // One of each, in the order sent: the failure notice, the downgrade warning, reminders at 7/14/21 days, the limits.
    expect(subjectsTo(tenant.billingEmail).map((s) => s.replace(` - Account #${tenant.id}`, ''))).toEqual([
      'Payment Issue',
      'Service Limits Ahead',
      'Payment Reminder',
      'Service Limited',
      'New API Requests Blocked',
      'Payment Reminder',
      'Account Suspended',
      'Payment Reminder',
    ]);

    const controls = await ts.deps.pool.query(
      `SELECT rate_limit_percent, api_blocked, suspended FROM service_control_changes
        WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY id`,
      [tenant.id, `dunning-${tenant.id}`],
    );
    expect(controls.rows).toEqual([
      { rate_limit_percent: 10, api_blocked: false, suspended: false },
      { rate_limit_percent: 10, api_blocked: true, suspended: false },
      { rate_limit_percent: 10, api_blocked: true, suspended: true },
    ]);
    const dashboard = await ts.deps.pool.query(
      'SELECT kind FROM dashboard_notifications WHERE tenant_id = $1',
      [tenant.id],
    );
    expect(dashboard.rows).toEqual([]); // deleted with the tenant's data after 90 days
    const decision = await ts.deps.pool.query('SELECT line FROM decisions WHERE workflow_id = $1', [
      `dunning-${tenant.id}`,
    ]);
    expect(decision.rows).toHaveLength(1);
    expect(decision.rows[0].line).toMatch(
      / \| OPERATOR=billops \| ACTION=billing_incident \| TYPE=dunning_data_deletion \| TENANTS=1 \| /,
    );
    const tenantRow = await ts.deps.pool.query('SELECT deleted_at FROM tenants WHERE id = $1', [tenant.id]);
    expect(tenantRow.rows[0].deleted_at).not.toBeNull();
    const record = await ts.deps.pool.query(
      'SELECT phase, outcome FROM dunning_records WHERE tenant_id = $1',
      [tenant.id],
    );
    expect(record.rows).toEqual([{ phase: 'deleted', outcome: 'deleted' }]);
  });

  it('Enterprise paid while soft limited: account manager contacted at 14 days, then service restored and confirmed', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'enterprise');
    const taskQueue = `dunning-ent-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle, invoice } = await startLifecycle(tenant, taskQueue);
    const outcome = await worker.runUntil(async () => {
      await settled(handle, 'retry-1');
      await ts.env.sleep(15 * DAY);
      const status = await handle.query(dunningStatusQuery);
      expect(status.phase).toBe('soft_limited');
      // The Web UI's "current details" line follows the phase.
      const metadata = await handle.query<{ currentDetails: string }>('__temporal_workflow_metadata');
      const softLimitDay = status.deadlines.hardLimitAt.slice(0, 10);
      expect(metadata.currentDetails).toBe(
        `Dunning · ${tenant.id} (Enterprise) · soft limited until ${softLimitDay}`,
      );
      const limited = await ts.deps.pool.query(
        'SELECT rate_limit_percent FROM service_controls WHERE tenant_id = $1',
        [tenant.id],
      );
      expect(limited.rows[0].rate_limit_percent).toBe(10);
      await payInDatabase(invoice.invoiceId);
      await handle.signal(paymentSucceededSignal, { invoiceId: invoice.invoiceId, reference: 'ch_manual_1' });
      return handle.result();
    });
    expect(outcome).toEqual({ tenantId: tenant.id, phase: 'recovered', paidInvoices: [invoice.invoiceId] });
    const controls = await ts.deps.pool.query(
      'SELECT rate_limit_percent, api_blocked, suspended, read_only FROM service_controls WHERE tenant_id = $1',
      [tenant.id],
    );
    expect(controls.rows[0]).toEqual({
      rate_limit_percent: 100,
      api_blocked: false,
      suspended: false,
      read_only: false,
    });
    expect(subjectsTo(tenant.accountManagerEmail)).toHaveLength(1);
    expect(subjectsTo(tenant.billingEmail)).toEqual(
      expect.arrayContaining([expect.stringMatching(/received|recovered|thank/i)]),
    );
    const record = await ts.deps.pool.query(
      'SELECT outcome, closed_at FROM dunning_records WHERE tenant_id = $1',
      [tenant.id],
    );
    expect(record.rows[0].outcome).toBe('recovered');
    expect(record.rows[0].closed_at).not.toBeNull();
  });

  it('a second failed invoice joins the running lifecycle; paying one of two does not recover', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-two-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle, invoice: first } = await startLifecycle(tenant, taskQueue);
    const second = await insertOpenInvoice(ts.deps.pool, tenant.id, { totalMinor: 1500 });
    const joined = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
      workflowId: `dunning-${tenant.id}`,
      taskQueue,
      args: [dunningInput(tenant, second)],
      signal: paymentFailedSignal,
      signalArgs: [second],
    });
    expect(joined.signaledRunId).toBe(handle.signaledRunId);
    const outcome = await worker.runUntil(async () => {
      await settled(handle, 'warning');
      await ts.env.sleep(2 * DAY + HOUR);
      await payInDatabase(first.invoiceId);
      await handle.signal(paymentSucceededSignal, { invoiceId: first.invoiceId });
      await ts.env.sleep(HOUR);
      const status = await handle.query(dunningStatusQuery);
      expect(status.phase).not.toBe('recovered');
      expect(status.outstandingInvoices.map((i) => i.invoiceId)).toEqual([second.invoiceId]);
      await payInDatabase(second.invoiceId);
      await handle.signal(paymentSucceededSignal, { invoiceId: second.invoiceId });
      return handle.result();
    });
    expect(outcome.phase).toBe('recovered');
    expect(outcome.paidInvoices.sort()).toEqual([first.invoiceId, second.invoiceId].sort());
  });

  it('an unconfirmed paymentSucceeded signal does not recover; one the database confirms does', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-confirm-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle, invoice } = await startLifecycle(tenant, taskQueue);
    const outcome = await worker.runUntil(async () => {
      await settled(handle, 'warning');
      // Nothing recorded the payment: a bare signal (an operator's typo, a forged call) is noted, not counted.
      await handle.signal(paymentSucceededSignal, { invoiceId: invoice.invoiceId, reference: 'ch_unpaid' });
      const noted = await settled(handle, 'payment not confirmed');
      const entry = noted.timeline.find((e) => e.event === 'payment not confirmed')!;
      expect(entry.detail).toMatch(
        new RegExp(
          `^${invoice.invoiceId}: invoice ${invoice.invoiceId} is open, USD 0\\.00 of USD 49\\.00 paid`,
        ),
      );
      await ts.env.sleep(8 * DAY);
      const later = await handle.query(dunningStatusQuery);
      expect(later.phase).toBe('soft_limited');
      expect(later.outstandingInvoices.map((i) => i.invoiceId)).toEqual([invoice.invoiceId]);
      // Recorded as paid (a webhook, a reconcile): the same signal now recovers.
      await payInDatabase(invoice.invoiceId);
      await handle.signal(paymentSucceededSignal, { invoiceId: invoice.invoiceId, reference: 'ch_paid' });
      return handle.result();
    });
    expect(outcome).toEqual({ tenantId: tenant.id, phase: 'recovered', paidInvoices: [invoice.invoiceId] });
  });

  it("an operator's retryNow charges the open invoices at once and leaves the schedule as it was", async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-retry-now-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startLifecycle(tenant, taskQueue);
    await worker.runUntil(async () => {
      await settled(handle, 'warning');
      await ts.env.sleep(2 * HOUR);
      await handle.signal(retryNowSignal, { operator: 'ana', reason: 'customer says the card is topped up' });
      const retried = await settled(handle, 'retry-now-1');
      const entry = retried.timeline.find((e) => e.event === 'retry-now-1')!;
      expect(entry).toMatchObject({ operator: 'ana', reason: 'customer says the card is topped up' });
      expect(entry.detail).toMatch(/failed \(no stripe processor configured/);
      // At two hours (to the minute: the test's own signals take real milliseconds), between the scheduled retries.
      expect(Math.round((Date.parse(entry.at) - Date.parse(retried.timeline[0]!.at)) / 60_000)).toBe(120);
      expect(retried.nextAction).toMatchObject({ step: 'retry-2' });
      await ts.env.sleep(5 * HOUR);
      const later = await settled(handle, 'retry-2');
      expect(hoursByEvent(later)).toContain('retry-2 @ 6h');
      // One Payment Issue notice however many retries.
      expect(subjectsTo(tenant.billingEmail).filter((s) => s.startsWith('Payment Issue'))).toHaveLength(1);
      await terminateWhenIdle(handle);
    });
  });

  it('a pause freezes the clock: resuming moves the soft limit by the time spent paused', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-pause-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startLifecycle(tenant, taskQueue);
    await worker.runUntil(async () => {
      await settled(handle, 'warning');
      await ts.env.sleep(DAY);
      await handle.signal(pauseSignal, { operator: 'ops@billops.test', reason: 'stripe outage' });
      await ts.env.sleep(3 * DAY);
      const paused = await handle.query(dunningStatusQuery);
      expect(paused.paused).toBe(true);
      expect(paused.nextAction).toBeNull();
      await handle.signal(resumeSignal, { operator: 'ops@billops.test' });
      await ts.env.sleep(7 * DAY);
      const status = await handle.query(dunningStatusQuery);
      const t0 = Date.parse(status.timeline[0]!.at);
      expect(toSeconds(Date.parse(status.deadlines.softLimitAt) - t0)).toBe(toSeconds(10 * DAY));
      expect(status.phase).toBe('soft_limited');
      const softLimit = status.timeline.find((e) => e.event === 'soft-limit');
      expect(toSeconds(Date.parse(softLimit!.dueAt!) - t0)).toBe(toSeconds(10 * DAY));
      expect(status.timeline.find((e) => e.event === 'paused')).toMatchObject({
        operator: 'ops@billops.test',
        reason: 'stripe outage',
      });
      await handle.terminate('test done');
    });
  });

  it('extendGrace validates its arguments and answers with the new deadlines', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-extend-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startLifecycle(tenant, taskQueue);
    await worker.runUntil(async () => {
      await settled(handle, 'warning');
      await ts.env.sleep(HOUR);
      for (const days of [0, -1, 91]) {
        await expect(
          handle.executeUpdate(extendGraceUpdate, {
            args: [{ days, reason: 'test', operator: 'cs@billops.test' }],
          }),
        ).rejects.toThrow(WorkflowUpdateFailedError);
      }
      const deadlines = await handle.executeUpdate(extendGraceUpdate, {
        args: [{ days: 5, reason: 'bank transfer pending', operator: 'cs@billops.test' }],
      });
      const status = await handle.query(dunningStatusQuery);
      const t0 = Date.parse(status.timeline[0]!.at);
      expect(toSeconds(Date.parse(deadlines.graceEndsAt) - t0)).toBe(toSeconds(12 * DAY));
      expect(toSeconds(Date.parse(deadlines.suspensionAt) - t0)).toBe(toSeconds(19 * DAY));
      expect(status.timeline.at(-1)).toMatchObject({
        event: 'grace extended',
        operator: 'cs@billops.test',
        reason: 'bank transfer pending',
      });
      await handle.terminate('test done');
    });
  });

  it('a payment failed while the lifecycle is finishing its recovery is dunned, not dropped', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-late-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle, invoice: first } = await startLifecycle(tenant, taskQueue);
    const latest = ts.env.client.workflow.getHandle(`dunning-${tenant.id}`);
    // Holding the record's row keeps the recovering run in closeDunningRecord: the window this test is about.
    const lock = await ts.deps.pool.connect();
    lock.on('error', () => undefined); // reported by the failing query instead
    try {
      await worker.runUntil(async () => {
        await settled(handle, 'warning');
        await lock.query('BEGIN');
        await lock.query('SELECT 1 FROM dunning_records WHERE tenant_id = $1 FOR UPDATE', [tenant.id]);
        await payInDatabase(first.invoiceId);
        await handle.signal(paymentSucceededSignal, { invoiceId: first.invoiceId });
        await settled(handle, 'recovered');
        const second = await insertOpenInvoice(ts.deps.pool, tenant.id, { totalMinor: 1500 });
        const joined = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
          workflowId: `dunning-${tenant.id}`,
          taskQueue,
          args: [dunningInput(tenant, second)],
          signal: paymentFailedSignal,
          signalArgs: [second],
        });
        expect(joined.signaledRunId).toBe(handle.signaledRunId); // the closing run got the signal
        await lock.query('ROLLBACK');
        const status = await pollUntil(
          () => latest.query(dunningStatusQuery),
          // Up to the warning, its last step at t=0: terminating with an activity in flight stalls the server's clock.
          (s) => s.timeline.some((e) => e.event === 'warning') && s.phase !== 'recovered',
          'a new lifecycle dunning the second invoice',
          { timeoutMs: 30_000 },
        );
        expect(status.outstandingInvoices.map((i) => i.invoiceId)).toEqual([second.invoiceId]);
        expect(status.timeline[0]!.detail).toContain(second.invoiceId);
        const failureNotices = () =>
          subjectsTo(tenant.billingEmail).filter((s) => s.startsWith('Payment Issue')).length;
        await pollUntil(
          async () => failureNotices(),
          (n) => n === 2,
          'a failure notice for each invoice',
        );
        await terminateWhenIdle(latest);
      });
    } finally {
      await lock.query('ROLLBACK').catch(() => undefined);
      lock.release();
      await latest.terminate('test done').catch(() => undefined); // already closed when the test passed
    }
    const records = await ts.deps.pool.query(
      'SELECT outcome, invoice_ids FROM dunning_records WHERE tenant_id = $1 ORDER BY created_at',
      [tenant.id],
    );
    expect(records.rows[0]).toEqual({ outcome: 'recovered', invoice_ids: [first.invoiceId] });
    expect(records.rows).toHaveLength(2);
  });

  it('extendGrace sends the downgrade warning again, with the new dates, when it comes due again', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-rewarn-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startLifecycle(tenant, taskQueue);
    const status = await worker.runUntil(async () => {
      await settled(handle, 'warning');
      await ts.env.sleep(HOUR);
      await handle.executeUpdate(extendGraceUpdate, {
        args: [{ days: 5, reason: 'bank transfer pending', operator: 'cs@billops.test' }],
      });
      await ts.env.sleep(6 * DAY);
      const current = await handle.query(dunningStatusQuery);
      await terminateWhenIdle(handle);
      return current;
    });
    const t0 = Date.parse(status.timeline[0]!.at);
    const warnings = status.timeline.filter((e) => e.event === 'warning');
    expect(warnings.map((e) => toSeconds(Date.parse(e.dueAt!) - t0))).toEqual([0, toSeconds(5 * DAY)]);
    const mails = readCaughtMail(testEnv('mailDir')).filter(
      (m) => m.to.includes(tenant.billingEmail) && m.subject.startsWith('Service Limits Ahead'),
    );
    expect(mails).toHaveLength(2);
    const softLimitBefore = formatNoticeTime(new Date(t0 + 7 * DAY));
    const softLimitAfter = formatNoticeTime(new Date(Date.parse(status.deadlines.softLimitAt)));
    expect(toSeconds(Date.parse(status.deadlines.softLimitAt) - t0)).toBe(toSeconds(12 * DAY));
    expect(mails.filter((m) => m.text.includes(softLimitBefore))).toHaveLength(1);
    expect(mails.filter((m) => m.text.includes(softLimitAfter))).toHaveLength(1);
    const outbox = await ts.deps.pool.query(
      `SELECT idempotency_key, status FROM email_outbox WHERE tenant_id = $1 AND template = 'downgradeWarning'`,
      [tenant.id],
    );
    expect(new Set(outbox.rows.map((r) => r.idempotency_key)).size).toBe(2);
  });

  it('a billing address corrected mid-lifecycle receives the next notice', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `dunning-contact-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startLifecycle(tenant, taskQueue);
    const corrected = `accounts@${tenant.id}.test`;
    await worker.runUntil(async () => {
      await settled(handle, 'warning');
      await ts.deps.pool.query('UPDATE tenants SET billing_email = $2 WHERE id = $1', [tenant.id, corrected]);
      await ts.env.sleep(7 * DAY + HOUR);
      await terminateWhenIdle(handle);
    });
    expect(subjectsTo(corrected).map((s) => s.replace(` - Account #${tenant.id}`, ''))).toEqual([
      'Payment Reminder',
      'Service Limited',
    ]);
    expect(subjectsTo(tenant.billingEmail)).toHaveLength(2); // the failure notice and the warning, before
  });

  it('Paystack hard decline: retried no more; the failure notice carries the Paystack payment link', async () => {
    const fake = await startPaystackFake();
    const paystackDeps = testWorkerDependencies({
      gateways: {
        paystack: createPaystackGateway({ secretKey: fake.secretKey, baseUrl: fake.url, timeoutSeconds: 10 }),
      },
    });
    try {
      const tenant = await insertTenant(ts.deps.pool, 'pro', {
        processor: 'paystack',
        paystackAuthorization: 'AUTH_stolen',
      });
      fake.authorize('AUTH_stolen', { outcome: 'hard_decline' });
      const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id, {
        processor: 'paystack',
        totalMinor: 2_500_000,
      });
      const taskQueue = `dunning-paystack-${tenant.id}`;
      const worker = await ts.newWorker(taskQueue, paystackDeps);
      const handle = await ts.env.client.workflow.start(dunningWorkflow, {
        workflowId: `dunning-${tenant.id}`,
        taskQueue,
        args: [dunningInput(tenant, invoice, 'paystack')],
      });
      const status = await worker.runUntil(async () => {
        await settled(handle, 'warning');
        await ts.env.sleep(3 * DAY);
        const current = await handle.query(dunningStatusQuery);
        await handle.terminate('test done');
        return current;
      });
      expect(status.timeline.filter((e) => e.event.startsWith('retry-')).map((e) => e.event)).toEqual([
        'retry-1',
      ]);
      expect(status.timeline.find((e) => e.event === 'hard decline: no further retries')).toBeDefined();
      expect(status.phase).toBe('warning');
      expect(fake.charges()).toHaveLength(1);
      expect(fake.charges()[0]).toMatchObject({ amount: 2_500_000, authorizationCode: 'AUTH_stolen' });
      const notice = readCaughtMail(testEnv('mailDir')).find(
        (m) => m.to.includes(tenant.billingEmail) && m.subject.startsWith('Payment Issue'),
      );
      expect(notice?.text).toContain(fake.initializations()[0]!.authorizationUrl);
    } finally {
      await paystackDeps.close();
      await fake.close();
    }
  });

  it('refuses a Free tenant with a non-retryable error', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'free');
    const taskQueue = `dunning-free-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const invoice = { invoiceId: 'in_free', amountMinor: 100, currency: 'USD' };
    const handle = await ts.env.client.workflow.start(dunningWorkflow, {
      workflowId: `dunning-${tenant.id}`,
      taskQueue,
      args: [dunningInput(tenant, invoice, 'none')],
    });
    const failure = await worker.runUntil(handle.result().catch((err: unknown) => err));
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause as { type?: string; message: string };
    expect(cause.type).toBe('DunningRefused');
    expect(cause.message).toMatch(/free tier, which has no payment processing/);
  });
});
