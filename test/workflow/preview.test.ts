// `billops preview` against the workflow it predicts: on the time-skipping server with the real policy durations, a
// never-paid lifecycle per tier performs exactly the previewed steps, at the previewed times, sending the previewed mail.
import { readCaughtMail } from '../../runtime/mailCatcher';
import type { DunningStatus } from '../../domain/dunning';
import {
  previewLifecycle,
  previewRunningLifecycle,
  type LifecyclePreview,
} from '../../domain/dunning/preview';
import type { BillingTier } from '../../domain/policy';
import { dunningStatusQuery, paymentFailedSignal } from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { dunningInput, insertOpenInvoice, insertTenant } from '../support/dunningFixtures';
import { pollUntil } from '../support/poll';
import { testEnv } from '../support/testRuntime';
import { startTimeSkipping, type TimeSkipping } from '../support/timeSkipping';

let ts: TimeSkipping;

beforeAll(async () => {
  ts = await startTimeSkipping();
});

afterAll(async () => {
  await ts?.close();
});

/** The subject line each dunning template starts with (domain/templates.ts), to read caught mail back. */
const SUBJECTS: Record<string, string> = {
  paymentFailureNotice: 'Payment Issue',
  paymentReminder: 'Payment Reminder',
  accountManagerContact: 'Account manager contact',
  downgradeWarning: 'Service Limits Ahead',
  softLimitNotice: 'Service Limited',
  hardLimitNotice: 'New API Requests Blocked',
  suspensionNotice: 'Account Suspended',
};

/** What the preview says will be mailed: the occurrence key each notice goes out under, its subject and recipient. */
function previewedMail(preview: LifecyclePreview, billing: string, accountManager: string): string[] {
  return preview.steps
    .filter((s) => s.notice)
    .map((s) => {
      const occurrence =
        s.notice!.template === 'paymentFailureNotice' ? 'payment-failure-notice' : `${s.id}@${s.at}`;
      const to = s.notice!.to === 'account manager' ? accountManager : billing;
      return `${occurrence}: ${SUBJECTS[s.notice!.template]} → ${to}`;
    });
}

/** What the SMTP server caught for this lifecycle, in the order sent, read the same way. */
function caughtMail(workflowId: string): string[] {
  return readCaughtMail(testEnv('mailDir'))
    .filter((m) => (m.headers['x-billops-idempotency-key'] ?? '').startsWith(`${workflowId}/`))
    .map((m) => {
      const occurrence = m.headers['x-billops-idempotency-key']!.split('/').slice(2).join('/');
      return `${occurrence}: ${m.subject.split(' - ')[0]} → ${m.to.join(', ')}`;
    });
}

/** The service-control changes the preview announces, as the rows the workflow's activities write. */
function previewedControls(preview: LifecyclePreview) {
  let row = { rate_limit_percent: 100, api_blocked: false, suspended: false };
  const rows: (typeof row)[] = [];
  for (const { control } of preview.steps) {
    if (!control || control.kind === 'dataDeleted') continue;
    if (control.kind === 'rateLimit') row = { ...row, rate_limit_percent: control.rateLimitPercent };
    if (control.kind === 'apiBlocked') row = { ...row, api_blocked: true };
    if (control.kind === 'suspended') row = { ...row, suspended: true };
    rows.push(row);
  }
  return rows;
}

describe.each<BillingTier>(['pro', 'enterprise'])('billops preview for a %s tenant', (tier) => {
  it('never paid: the workflow performs exactly the previewed steps, times, mail and service controls', async () => {
    const tenant = await insertTenant(ts.deps.pool, tier);
    const workflowId = `dunning-${tenant.id}`;
    const taskQueue = `preview-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id);
    const input = dunningInput(tenant, invoice);
    const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
      workflowId,
      taskQueue,
      args: [input],
      signal: paymentFailedSignal,
      signalArgs: [invoice],
    });

    let atStart: DunningStatus | undefined;
    let final: DunningStatus | undefined;
    const outcome = await worker.runUntil(async () => {
      // Let t=0 settle before time skips (see test/workflow/dunning.test.ts), and keep the status as it stood then.
      atStart = await pollUntil(
        () => handle.query(dunningStatusQuery),
        (s) => s.timeline.some((e) => e.event === 'retry-1'),
        'the lifecycle performs retry-1',
      );
      const result = await handle.result();
      final = await handle.query(dunningStatusQuery);
      return result;
    });
    expect(outcome).toEqual({ tenantId: tenant.id, phase: 'deleted', paidInvoices: [] });

    // The preview of a failure at the lifecycle's first failure, under the policy it runs with.
    const firstFailure = Date.parse(final!.timeline[0]!.at);
    const preview = previewLifecycle({ tier, policy: input.policy, tenantId: tenant.id }, firstFailure);

    // Step by step: the same ids in the same order, due at the same offsets from the first failure.
    const performed = final!.timeline
      .filter((e) => e.dueAt)
      .map((e) => `${e.event} @ +${Date.parse(e.dueAt!) - firstFailure} ms`);
    expect(performed).toEqual(preview.steps.map((s) => `${s.id} @ +${s.afterFirstFailureMs} ms`));
    expect(final!.phase).toBe(preview.steps[preview.steps.length - 1]!.phase);

    // The same notices, to the same people, under occurrence keys that carry the previewed due times.
    expect(caughtMail(workflowId)).toEqual(
      previewedMail(preview, tenant.billingEmail, tenant.accountManagerEmail),
    );
    const controls = await ts.deps.pool.query(
      `SELECT rate_limit_percent, api_blocked, suspended FROM service_control_changes
        WHERE tenant_id = $1 AND workflow_id = $2 ORDER BY id`,
      [tenant.id, workflowId],
    );
    expect(controls.rows).toEqual(previewedControls(preview));
    const deleted = await ts.deps.pool.query('SELECT deleted_at FROM tenants WHERE id = $1', [tenant.id]);
    expect(deleted.rows[0].deleted_at).not.toBeNull();

    // Previewed while running (at t=0), the steps still to come are the same as the fresh preview's.
    const running = previewRunningLifecycle(input, atStart!, firstFailure);
    const doneAtStart = new Set(running.done.map((e) => e.event));
    expect(running.steps).toEqual(preview.steps.filter((s) => !doneAtStart.has(s.id)));
  });
});
