// Every incident's clock on the time-skipping server, with the real policy durations: escalation at the response time of
// each severity (15 min, 1 h, 4 h, 24 h) when nobody acknowledges, operator messages refused with a reason, the
// DECISIONS.log line on resolution and the root-cause reminder 48 hours later. Exercised through stuck transactions.
import { readFileSync } from 'node:fs';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { readCaughtMail } from '../../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../../domain/decisions';
import type { IncidentStatus } from '../../../../domain/incident';
import type { Severity } from '../../../../domain/policy';
import {
  acknowledgeSignal,
  acknowledgeUpdate,
  incidentStatusQuery,
  pauseSignal,
  recordRootCauseUpdate,
  resolveSignal,
  resolveUpdate,
  resumeSignal,
} from '../../../../workflows/definitions';
import { stuckTransactionsWorkflow } from '../../../../workflows/incidents/stuckTransactions';
import { insertTenant } from '../../../support/dunningFixtures';
import { incidentInput, TEST_ROUTING_KEY, untilIncident } from '../../../support/incidentFixtures';
import { pollUntil } from '../../../support/poll';
import { testEnv } from '../../../support/testRuntime';
import { startIncidentTimeSkipping, type IncidentTimeSkipping } from '../../../support/timeSkipping';
import { TEST_OPS_EMAIL } from '../../../support/workerDeps';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let ts: IncidentTimeSkipping;

beforeAll(async () => {
  ts = await startIncidentTimeSkipping();
});

afterAll(async () => {
  await ts?.close();
});

/** A Paystack payment pending in our table for two hours, which Paystack still reports as in flight. */
async function stuckPaystackPayment(): Promise<{ tenantId: string; reference: string }> {
  const tenant = await insertTenant(ts.deps.pool, 'pro', { processor: 'paystack' });
  const reference = `stuck-${tenant.id}`;
  await ts.deps.pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, created_at)
     VALUES ($1, 'paystack', $2, 'pending', 500000, 'NGN', now() - interval '2 hours')`,
    [tenant.id, reference],
  );
  ts.paystack.addTransaction({
    reference,
    amount: 500000,
    currency: 'NGN',
    status: 'ongoing',
    createdAt: new Date(),
  });
  return { tenantId: tenant.id, reference };
}

const minutesAfterOpen = (status: IncidentStatus, event: string) =>
  status.timeline
    .filter((e) => e.event === event)
    .map((e) => Math.round((Date.parse(e.at) - Date.parse(status.openedAt)) / MINUTE));

async function openStuckIncident(taskQueue: string, severity?: Severity) {
  const { tenantId, reference } = await stuckPaystackPayment();
  const input = incidentInput(
    'stuck_transactions',
    { references: [reference] },
    {
      key: reference,
      tenantIds: [tenantId],
      ...(severity ? { severity } : {}),
    },
  );
  const handle = await ts.env.client.workflow.start(stuckTransactionsWorkflow, {
    workflowId: `incident-stuck_transactions-${reference}`,
    taskQueue,
    args: [input],
  });
  return { handle, reference, tenantId };
}

jest.setTimeout(300_000);

describe('incident escalation on the time-skipping server', () => {
  it('P1: pages the first responder at once, escalates at 15 min and 45 min unacknowledged; ack stops it; resolution writes DECISIONS.log; the RCA reminder comes 48 h later', async () => {
    const taskQueue = `incident-p1-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const { handle, reference, tenantId } = await openStuckIncident(taskQueue, 'P1');
      const opened = await untilIncident(handle, (s) => s.stepsDone.length === 2, 'first verification done');
      expect(opened.severity).toBe('P1');
      expect(opened.stepsDone[1]?.detail).toBe('0 settled, 1 still pending at the provider');
      expect(ts.receivers.pagerDutyEvents(handle.workflowId)).toHaveLength(1);

      await ts.env.sleep(14 * MINUTE);
      expect((await handle.query(incidentStatusQuery)).escalationLevel).toBe(0);
      await ts.env.sleep(2 * MINUTE);
      let status = await handle.query(incidentStatusQuery);
      expect(status.escalationLevel).toBe(1);
      expect(status.nextEscalationAt).toBe(new Date(Date.parse(status.openedAt) + 45 * MINUTE).toISOString());
      await ts.env.sleep(30 * MINUTE);
      status = await handle.query(incidentStatusQuery);
      expect(status.escalationLevel).toBe(2);
      expect(minutesAfterOpen(status, 'escalated')).toEqual([15, 45]);
      const triggers = ts.receivers
        .pagerDutyEvents(handle.workflowId)
        .filter((e) => e.event_action === 'trigger');
      expect(
        triggers.map(
          (e) =>
            (e.payload as { custom_details: { escalation_level: number } }).custom_details.escalation_level,
        ),
      ).toEqual([0, 1, 2]);
      expect(ts.receivers.slackMessages().length).toBeGreaterThanOrEqual(3);

      // Acknowledged: the update answers with the new state; a second one is refused with who did it.
      status = await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
      expect(status.acknowledgedBy).toBe('ada');
      expect(status.phase).toBe('acknowledged');
      expect(await refusal(handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'bob' }] }))).toMatch(
        /^incident already acknowledged by ada at /,
      );
      // Bad signals do not crash the workflow: they are refused in its timeline.
      await handle.signal(acknowledgeSignal, { operator: '   ' });
      await handle.signal(resolveSignal, { operator: 'ada', summary: '' });
      status = await untilIncident(
        handle,
        (s) => s.timeline.filter((e) => e.event === 'refused').length === 2,
        'refusals',
      );
      expect(status.timeline.filter((e) => e.event === 'refused').map((e) => e.detail)).toEqual([
        'acknowledge: an operator name is required',
        'resolve: a resolution summary is required',
      ]);
      expect(status.phase).toBe('acknowledged');

      // Resolved by the operator: the line, the report, then 48 hours for the RCA.
      status = await handle.executeUpdate(resolveUpdate, {
        args: [{ operator: 'ada', summary: 'Paystack confirmed the charge by phone; settled by hand' }],
      });
      expect(status.phase).toBe('resolved');
      const closing = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'closing',
      );
      expect(
        await refusal(handle.executeUpdate(resolveUpdate, { args: [{ operator: 'bob', summary: 'again' }] })),
      ).toMatch(/^incident already resolved by ada at /);
      const { rows } = await ts.deps.pool.query<{ line: string; status: string; report_md: string }>(
        `SELECT d.line, i.status, i.report_md FROM decisions d JOIN incidents i ON i.workflow_id = d.workflow_id
         WHERE d.workflow_id = $1`,
        [handle.workflowId],
      );
      expect(rows).toHaveLength(1);
      const entry = parseDecisionLine(rows[0]!.line);
      expect(entry).toMatchObject({
        operator: 'ada',
        incidentType: 'stuck_transactions',
        tenants: 1,
        resolution: 'Paystack confirmed the charge by phone; settled by hand',
        credits: null,
        executor: 'billops',
      });
      expect(readFileSync(ts.deps.decisionsLogPath, 'utf8')).toContain(rows[0]!.line);
      expect(rows[0]!.report_md).toContain('## Incident Report: stuck transactions (test)');
      expect(rows[0]!.report_md).toContain('**Severity:** P1');
      expect(rows[0]!.report_md).toMatch(/- Acknowledged: .* by ada/);
      expect(closing.timeline.some((e) => e.event === 'decision_recorded')).toBe(true);
      // The payment is still pending in our table: nothing was written without the provider's word.
      const tx = await ts.deps.pool.query('SELECT status FROM payment_transactions WHERE reference = $1', [
        reference,
      ]);
      expect(tx.rows[0]?.status).toBe('pending');
      expect(tenantId).toBeTruthy();

      await ts.env.sleep(47 * HOUR);
      expect(reminderSubjects(handle.workflowId)).toHaveLength(0);
      await ts.env.sleep(2 * HOUR);
      const outcome = await handle.result();
      expect(outcome.status.phase).toBe('closed');
      expect(outcome.status.rcaRecorded).toBe(false);
      const reminded = outcome.status.timeline.find((e) => e.event === 'rca_reminder_sent')!;
      expect(Date.parse(reminded.at) - Date.parse(outcome.status.resolution!.at)).toBeGreaterThanOrEqual(
        48 * HOUR,
      );
      expect(reminderSubjects(handle.workflowId)).toEqual([
        `Root cause analysis due - stuck_transactions ${handle.workflowId}`,
      ]);
      expect(ts.receivers.pagerDutyEvents(handle.workflowId).at(-1)?.event_action).toBe('resolve');
    });
  });

  it.each([
    ['P2', 60, 90],
    ['P3', 240, 270],
    ['P4', 24 * 60, null],
  ] as const)('%s: escalates at its response time of %i minutes', async (severity, level1, level2) => {
    const taskQueue = `incident-${severity}-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const { handle } = await openStuckIncident(taskQueue, severity);
      await untilIncident(handle, (s) => s.stepsDone.length === 2, 'first verification done');
      await ts.env.sleep((level1 - 1) * MINUTE);
      expect((await handle.query(incidentStatusQuery)).escalationLevel).toBe(0);
      await ts.env.sleep(((level2 ?? level1 + 60) - (level1 - 1) + 1) * MINUTE);
      const status = await handle.query(incidentStatusQuery);
      expect(minutesAfterOpen(status, 'escalated')).toEqual(level2 === null ? [level1] : [level1, level2]);
      await handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'closed by test' }] });
      await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'provider lag' }],
      });
      const outcome = await handle.result();
      expect(outcome.status.rcaRecorded).toBe(true);
      expect(outcome.status.timeline.some((e) => e.event === 'rca_reminder_sent')).toBe(false);
    });
  });

  it('a pause stops the escalation clock; the next level comes later by the time spent paused', async () => {
    const taskQueue = `incident-pause-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const { handle } = await openStuckIncident(taskQueue, 'P1');
      await untilIncident(handle, (s) => s.stepsDone.length === 2, 'first verification done');
      await ts.env.sleep(10 * MINUTE);
      await handle.signal(pauseSignal, { operator: 'ada', reason: 'waiting on Paystack support' });
      await untilIncident(handle, (s) => s.paused, 'paused');
      await handle.signal(pauseSignal, { operator: 'bob' });
      await ts.env.sleep(60 * MINUTE);
      let status = await handle.query(incidentStatusQuery);
      expect(status.escalationLevel).toBe(0);
      expect(status.nextEscalationAt).toBeNull();
      await handle.signal(resumeSignal, { operator: 'ada' });
      await untilIncident(handle, (s) => !s.paused, 'resumed');
      await ts.env.sleep(6 * MINUTE);
      status = await handle.query(incidentStatusQuery);
      // 15 minutes of unacknowledged time: 10 before the pause, 5 after it.
      expect(minutesAfterOpen(status, 'escalated')).toEqual([75]);
      expect(status.timeline.filter((e) => e.event === 'refused').map((e) => e.detail)).toEqual([
        'pause: already paused by ada',
      ]);
      await handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'settled' }] });
    });
  });

  it('a resolve on a closed incident is refused by the server, an acknowledgement after resolution by the workflow', async () => {
    const taskQueue = `incident-closed-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const { handle } = await openStuckIncident(taskQueue, 'P3');
      await untilIncident(handle, (s) => s.stepsDone.length === 2, 'first verification done');
      await handle.signal(resolveSignal, { operator: 'ada', summary: 'settled' });
      await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
      expect(await refusal(handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'bob' }] }))).toMatch(
        /^incident already resolved by ada/,
      );
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'provider lag' }],
      });
      await handle.result();
      await expect(
        handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'again' }] }),
      ).rejects.toThrow();
    });
  });

  it('PagerDuty answering 400 at the opening does not stop the incident: it is shown and told, and the next page clears it', async () => {
    const taskQueue = `incident-pager400-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    ts.receivers.refuse('/v2/enqueue', {
      status: 400,
      body: {
        status: 'invalid event',
        message: 'Event object is invalid',
        errors: ['Length of summary is invalid'],
      },
    });
    try {
      await worker.runUntil(async () => {
        const { handle } = await openStuckIncident(taskQueue, 'P1');
        // The incident goes on: its verification steps run although the first page was refused.
        const opened = await untilIncident(
          handle,
          (s) => s.stepsDone.length === 2,
          'first verification done',
        );
        expect(opened.phase).toBe('open');
        expect(opened.attention).toMatchObject({ step: 'page level 0', errorType: 'PagerRejected' });
        expect(opened.attention!.reason).toMatch(/HTTP 400.*Event object is invalid/);
        expect(opened.attention!.reason).not.toContain(TEST_ROUTING_KEY);
        await pollUntil(
          async () =>
            readCaughtMail(testEnv('mailDir')).filter(
              (m) =>
                m.to.includes(TEST_OPS_EMAIL) && m.subject.includes(`${handle.workflowId}: page level 0`),
            ),
          (mails) => mails.length === 1,
          'the operators are emailed',
        );

        // The pager works again: the 15-minute escalation pages level 1 and the attention note clears.
        ts.receivers.refuse('/v2/enqueue', null);
        await ts.env.sleep(16 * MINUTE);
        const escalated = await untilIncident(handle, (s) => s.escalationLevel === 1, 'escalated to level 1');
        expect(escalated.attention).toBeNull();
        expect(escalated.timeline.map((e) => e.event)).toContain('attention_cleared');
        await handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'closed by test' }] });
        await untilIncident(
          handle,
          (s) => s.currentStep === 'waiting for the root-cause analysis',
          'closing',
        );
        await handle.executeUpdate(recordRootCauseUpdate, {
          args: [{ operator: 'ada', summary: 'pager config' }],
        });
        const outcome = await handle.result();
        expect(outcome.status.resolution?.by).toBe('ada');
      });
    } finally {
      ts.receivers.refuse('/v2/enqueue', null);
    }
  });
});

/** The validator's reason an update was refused with. */
async function refusal(update: Promise<unknown>): Promise<string> {
  try {
    await update;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return err.cause?.message ?? err.message;
    throw err;
  }
  throw new Error('the update was accepted');
}

function reminderSubjects(workflowId: string): string[] {
  return readCaughtMail(testEnv('mailDir'))
    .filter((m) => m.to.includes(TEST_OPS_EMAIL) && m.subject.includes(workflowId))
    .map((m) => m.subject);
}
