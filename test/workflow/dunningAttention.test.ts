// Steps only a person can fix, on the time-skipping server with the real policy durations, real PostgreSQL, SMTP and
// stripe-mock behind a switch: a revoked Stripe key and a voided invoice wait for attention, never fail the lifecycle.
import { WorkflowFailedError } from '@temporalio/client';
import { createStripeGateway } from '../../drivers/stripe';
import type { DunningStatus } from '../../domain/dunning';
import { defaultPolicy } from '../../domain/policy';
import { readCaughtMail } from '../../runtime/mailCatcher';
import { STRIPE_MOCK_SECRET_KEY } from '../../runtime/stripeMock';
import {
  dunningStatusQuery,
  paymentFailedSignal,
  retryNowSignal,
  skipStepUpdate,
} from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { dunningInput, insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { pollUntil } from '../support/poll';
import { privateDatabase } from '../support/privateDatabase';
import { startStripeSwitch, type StripeSwitch } from '../support/stripeSwitch';
import { testEnv } from '../support/testRuntime';
import { startTimeSkipping, terminateWhenIdle, type TimeSkipping } from '../support/timeSkipping';
import { TEST_OPS_EMAIL, testWorkerDependencies } from '../support/workerDeps';

const HOUR = 3_600_000;
const MINUTE = 60_000;

let ts: TimeSkipping;
let stripe: StripeSwitch;

beforeAll(async () => {
  stripe = await startStripeSwitch(testEnv('stripeApiBase'));
  ts = await startTimeSkipping({
    gateways: { stripe: createStripeGateway({ secretKey: STRIPE_MOCK_SECRET_KEY, apiBase: stripe.url }) },
  });
});

afterAll(async () => {
  await ts?.close();
  await stripe?.close();
});

beforeEach(() => {
  stripe.mode = 'declining';
});

function subjectsTo(address: string, about: string): string[] {
  return readCaughtMail(testEnv('mailDir'))
    .filter((m) => m.to.includes(address) && m.subject.includes(about))
    .map((m) => m.subject);
}

async function startStripeLifecycle(tenant: TestTenant, taskQueue: string) {
  const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id, {
    processor: 'stripe',
    processorInvoiceId: `in_attn${tenant.id.replace(/-/g, '')}`,
  });
  const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
    workflowId: `dunning-${tenant.id}`,
    taskQueue,
    args: [dunningInput(tenant, invoice)],
    signal: paymentFailedSignal,
    signalArgs: [invoice],
  });
  return { handle, invoice };
}

type Handle = Awaited<ReturnType<typeof startStripeLifecycle>>['handle'];

function statusWhere(handle: Handle, what: string, test: (s: DunningStatus) => boolean) {
  return pollUntil(() => handle.query(dunningStatusQuery), test, what, { timeoutMs: 60_000 });
}

const stepAt = (status: DunningStatus, event: string) => status.timeline.find((e) => e.event === event);

describe('a step only a person can fix waits for attention', () => {
  it('Stripe refuses the key for five minutes at the 6-hour retry: the lifecycle waits, then goes on on schedule, nothing sent twice', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `attention-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle } = await startStripeLifecycle(tenant, taskQueue);
    await worker.runUntil(async () => {
      // Retry 1 and the downgrade warning (grace ends in 7 days) are both due at once.
      const before = await statusWhere(handle, 'warning sent', (s) => !!stepAt(s, 'warning'));
      expect(stepAt(before, 'retry-1')?.detail).toMatch(/failed|declined/);
      await ts.env.sleep(5 * HOUR);

      // The key is revoked just before the second retry.
      stripe.mode = 'key_revoked';
      await ts.env.sleep(1 * HOUR + MINUTE);
      const waiting = await statusWhere(handle, 'waiting for attention', (s) => s.attention !== null);
      expect(waiting.attention).toMatchObject({
        step: 'retry-2',
        errorType: 'ProcessorAuthFailed',
        attempts: 1,
      });
      expect(waiting.attention!.reason).toMatch(/STRIPE_SECRET_KEY/);
      expect(JSON.stringify(waiting)).not.toMatch(/revk/); // no part of the key in the answer
      expect(waiting.phase).toBe(before.phase);
      expect(waiting.deadlines).toEqual(before.deadlines); // the grace clock did not restart
      await pollUntil(
        async () => subjectsTo(TEST_OPS_EMAIL, `dunning-${tenant.id}: retry-2`),
        (subjects) => subjects.length === 1,
        'the operators are emailed',
      );

      // Still revoked at the policy's first backoff (2 minutes): a second attempt, still waiting.
      await ts.env.sleep(4 * MINUTE);
      await statusWhere(handle, 'second attempt', (s) => s.attention?.attempts === 2);

      // The key is fixed five minutes in; the operator asks for a retry now instead of waiting for the backoff.
      stripe.mode = 'declining';
      await handle.signal(retryNowSignal, { operator: 'ana' });
      const after = await statusWhere(handle, 'attention cleared', (s) => s.attention === null);
      expect(stepAt(after, 'retry-2')?.detail).toMatch(/failed|declined/);
      const retry2 = stepAt(after, 'retry-2')!;
      expect(Date.parse(retry2.at) - Date.parse(retry2.dueAt!)).toBeGreaterThanOrEqual(5 * MINUTE);

      // The rest of the lifecycle keeps its first schedule: the soft limit at 7 days, not 7 days after the wait.
      await ts.env.sleep(7 * 24 * HOUR);
      const limited = await statusWhere(handle, 'soft limited', (s) => s.phase === 'soft_limited');
      const t0 = Date.parse(limited.timeline[0]!.at);
      expect(Date.parse(stepAt(limited, 'soft-limit')!.dueAt!) - t0).toBe(168 * HOUR);
      expect(limited.deadlines).toEqual(before.deadlines);
      await terminateWhenIdle(handle);
    });

    // Each customer notice once; the one retry's charge went out under one idempotency key however many attempts.
    const toCustomer = readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(tenant.billingEmail));
    const subjects = toCustomer.map((m) => m.subject.replace(` - Account #${tenant.id}`, ''));
    expect(subjects.filter((s) => s === 'Payment Issue')).toHaveLength(1);
    expect(subjects.filter((s) => s === 'Service Limits Ahead')).toHaveLength(1);
    expect(subjectsTo(TEST_OPS_EMAIL, `dunning-${tenant.id}: retry-2`)).toHaveLength(1);
    const invoicePath = `/v1/invoices/in_attn${tenant.id.replace(/-/g, '')}/pay`;
    const pays = stripe.seen.filter((r) => r.method === 'POST' && r.path.startsWith(invoicePath));
    // Retry 1 declined; retry 2 refused twice, then declined; retries 3 and 4 (24 h, 48 h) declined.
    expect(pays.map((r) => r.status)).toEqual([402, 401, 401, 402, 402, 402]);
    expect(new Set(pays.slice(1, 4).map((r) => r.idempotencyKey)).size).toBe(1);
    expect(new Set(pays.map((r) => r.idempotencyKey)).size).toBe(4);
  });

  it('a voided invoice waits for attention; an operator skips the retry with a reason and the lifecycle goes on', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `attention-void-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const { handle, invoice } = await startStripeLifecycle(tenant, taskQueue);
    await worker.runUntil(async () => {
      await statusWhere(handle, 'warning sent', (s) => !!stepAt(s, 'warning'));
      // Nothing waits yet: a skip is refused, and says why.
      await expect(
        handle.executeUpdate(skipStepUpdate, { args: [{ operator: 'ana', reason: 'voided' }] }),
      ).rejects.toMatchObject({
        cause: { message: expect.stringMatching(/no step is waiting for attention/) },
      });

      await ts.deps.pool.query(`UPDATE invoices SET status = 'void' WHERE id = $1`, [invoice.invoiceId]);
      await ts.env.sleep(6 * HOUR + MINUTE);
      const waiting = await statusWhere(handle, 'waiting for attention', (s) => s.attention !== null);
      expect(waiting.attention).toMatchObject({ step: 'retry-2', errorType: 'InvoiceNotPayable' });
      expect(waiting.attention!.reason).toMatch(/void/);
      // A skip needs a reason.
      await expect(
        handle.executeUpdate(skipStepUpdate, { args: [{ operator: 'ana', reason: ' ' }] }),
      ).rejects.toMatchObject({ cause: { message: expect.stringMatching(/a reason is required/) } });

      await handle.executeUpdate(skipStepUpdate, {
        args: [{ operator: 'ana', reason: 'invoice voided in Stripe; credit note issued' }],
      });
      const after = await statusWhere(handle, 'retry-2 skipped', (s) => !!stepAt(s, 'retry-2'));
      expect(after.attention).toBeNull();
      expect(stepAt(after, 'retry-2')?.detail).toBe(
        'skipped by ana: invoice voided in Stripe; credit note issued',
      );
      expect(after.nextAction?.step).toBe('retry-3');
      await terminateWhenIdle(handle);
    });
  });

  it("a lifecycle started while its processor's outage is open gets the outage's grace and pause", async () => {
    // Its own database: an active dunning_hold:stripe would hold every other suite's new Stripe lifecycles.
    const database = await privateDatabase('outage_join');
    const deps = testWorkerDependencies({ databaseUrl: database.url });
    try {
      const tenant = await insertTenant(deps.pool, 'pro');
      const invoice = await insertOpenInvoice(deps.pool, tenant.id);
      await deps.pool.query(
        `INSERT INTO operational_overrides (name, value, reason, workflow_id, idempotency_key, set_by)
         VALUES ('dunning_hold:stripe', $1, 'Stripe is down', 'incident-payment_processor_outage-f1', 'k-f1', 'billops')`,
        [{ lifecycles: 3, graceHours: 48, suspensionsStopped: true }],
      );
      const taskQueue = `attention-outage-${tenant.id}`;
      const worker = await ts.newWorker(taskQueue, deps);
      const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
        workflowId: `dunning-${tenant.id}`,
        taskQueue,
        args: [dunningInput(tenant, invoice)],
        signal: paymentFailedSignal,
        signalArgs: [invoice],
      });
      await worker.runUntil(async () => {
        const held = await statusWhere(handle, 'paused by the outage', (s) => s.paused);
        const t0 = Date.parse(held.timeline[0]!.at);
        // Pro's 7 days of grace, plus the outage's 48 hours.
        expect(Math.round((Date.parse(held.deadlines.graceEndsAt) - t0) / HOUR)).toBe(7 * 24 + 48);
        const why = 'stripe outage incident-payment_processor_outage-f1 open: Stripe is down';
        expect(held.timeline.map((e) => [e.event, e.reason])).toEqual(
          expect.arrayContaining([
            ['grace extended', why],
            ['paused', why],
          ]),
        );
        expect(held.nextAction).toBeNull();
        await terminateWhenIdle(handle);
      });
    } finally {
      await deps.close();
      await database.drop();
    }
  });

  it('a direct start with a policy below a safety floor is refused before anything happens', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const taskQueue = `attention-floor-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id);
    const crafted = {
      ...dunningInput(tenant, invoice),
      policy: { ...defaultPolicy, downgrade: { ...defaultPolicy.downgrade, deletionDaysAfterSuspension: 1 } },
    };
    const failure = await worker.runUntil(
      ts.env.client.workflow
        .execute(dunningWorkflow, { workflowId: `dunning-${tenant.id}`, taskQueue, args: [crafted] })
        .then(
          () => null,
          (err: unknown) => err,
        ),
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(
      /policy snapshot is refused: .*deletionDaysAfterSuspension: must be at least 30 days/,
    );
    const records = await ts.deps.pool.query('SELECT 1 FROM dunning_records WHERE tenant_id = $1', [
      tenant.id,
    ]);
    expect(records.rowCount).toBe(0);
    expect(readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(tenant.billingEmail))).toEqual([]);
  });
});
