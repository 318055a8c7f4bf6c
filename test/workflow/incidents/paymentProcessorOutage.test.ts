// A Paystack outage on the time-skipping server with the real policy durations: affected accounts get the outage grace
// and their dunning paused, probes back off 1, 2, 4, 8, 15 minutes, and recovery switches back, resumes dunning,
// retries the failed payments and credits the outage. Paystack is the local Paystack-shaped server (failNext = down).
import { readFileSync } from 'node:fs';
import { startOrJoinDunning } from '../../../temporal/dunning';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import type { DunningStatus } from '../../../domain/dunning';
import type { IncidentStatus } from '../../../domain/incident';
import {
  acknowledgeUpdate,
  alertResolvedSignal,
  dunningStatusQuery,
  incidentStatusQuery,
  recordRootCauseUpdate,
} from '../../../workflows/definitions';
import { paymentProcessorOutageWorkflow } from '../../../workflows/incidents/paymentProcessorOutage';
import { startIncident } from '../../../temporal/incidents';
import { TEST_OPS_EMAIL } from '../../support/workerDeps';
import {
  dunningInput,
  insertOpenInvoice,
  insertTenant,
  type TestTenant,
} from '../../support/dunningFixtures';
import { incidentInput, untilIncident } from '../../support/incidentFixtures';
import { pollUntil } from '../../support/poll';
import { testEnv } from '../../support/testRuntime';
import { startIncidentTimeSkipping, type IncidentTimeSkipping } from '../../support/timeSkipping';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let ts: IncidentTimeSkipping;

beforeAll(async () => {
  // The time-skipping server has neither visibility lists nor batch operations: the activities fall back to the
  // open dunning records and one signal per lifecycle.
  ts = await startIncidentTimeSkipping({ clientForActivities: true });
});

afterAll(async () => {
  await ts?.close();
});

jest.setTimeout(300_000);

/** A Pro tenant on Paystack with a saved card that declines, its open invoice, and its dunning lifecycle. */
async function tenantInDunning(taskQueue: string) {
  const code = `AUTH_${Math.random().toString(36).slice(2, 10)}`;
  ts.paystack.authorize(code, { outcome: 'soft_decline' });
  const tenant = await insertTenant(ts.deps.pool, 'pro', {
    processor: 'paystack',
    paystackAuthorization: code,
  });
  const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id, { totalMinor: 4900 });
  const handle = await startOrJoinDunning(
    ts.env.client,
    taskQueue,
    dunningInput(tenant, invoice, 'paystack'),
  );
  return { tenant, code, invoice, handle };
}

const minutesAfterOpen = (status: IncidentStatus, event: string) =>
  status.timeline
    .filter((e) => e.event === event)
    .map((e) => Math.round((Date.parse(e.at) - Date.parse(status.openedAt)) / MINUTE));

const mailTo = (tenant: TestTenant, subject: string) =>
  readCaughtMail(testEnv('mailDir')).filter(
    (m) => m.to.includes(tenant.billingEmail) && m.subject === subject,
  );

describe('payment processor outage on the time-skipping server', () => {
  it('Paystack down 45 minutes: 48 h grace and paused dunning, probes backing off, then switch back, retries and credits', async () => {
    const taskQueue = `outage-paystack-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      // Two tenants in dunning after a declined retry, and one whose payment just failed on Paystack.
      const inDunning = [await tenantInDunning(taskQueue), await tenantInDunning(taskQueue)];
      const before = new Map<string, DunningStatus>();
      for (const { tenant, handle } of inDunning) {
        before.set(
          tenant.id,
          await pollUntil(
            () => handle.query(dunningStatusQuery),
            (s) => s.phase === 'warning',
            `${tenant.id} in its warning phase`,
          ),
        );
      }
      const failedCode = `AUTH_${Math.random().toString(36).slice(2, 10)}`;
      const failedOnly = await insertTenant(ts.deps.pool, 'pro', {
        processor: 'paystack',
        paystackAuthorization: failedCode,
      });
      const failedInvoice = await insertOpenInvoice(ts.deps.pool, failedOnly.id, { totalMinor: 4900 });
      await ts.deps.pool.query(
        `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
         VALUES ($1, $2, 'paystack', $3, 'failed', 4900, 'USD')`,
        [failedOnly.id, failedInvoice.invoiceId, `failed-${failedOnly.id}`],
      );
      // Paystack goes down: the first probe and the next five fail; the cards work once it is back.
      for (const { code } of inDunning) ts.paystack.authorize(code, { outcome: 'success' });
      ts.paystack.authorize(failedCode, { outcome: 'success' });
      const requestsBefore = ts.paystack.requests().length;
      ts.paystack.failNext(6, 503);

      // Scoped to this test's tenants: the database is shared with other suites.
      const ours = [...inDunning.map((d) => d.tenant), failedOnly];
      const input = incidentInput('payment_processor_outage', {
        processor: 'paystack' as const,
        tenantIds: ours.map((t) => t.id),
      });
      const handle = await ts.env.client.workflow.start(paymentProcessorOutageWorkflow, {
        workflowId: `incident-payment_processor_outage-${input.key}`,
        taskQueue,
        args: [input],
      });
      await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
      let status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for recovery',
        'containment done',
      );
      expect(status.tenantsAffected).toBe(3);
      const step = (prefix: string) => status.stepsDone.find((s) => s.name.startsWith(prefix));
      expect(step('check Paystack status')?.detail).toMatch(/HTTP 503/);
      expect(step('verify API key and webhook endpoints')?.detail).toMatch(
        /^API key not verifiable while the API does not answer; Paystack keeps its webhook URL in the dashboard/,
      );
      expect(status.timeline).toContainEqual(
        expect.objectContaining({
          event: 'skipped',
          detail: 'switch to the backup processor: no backup processor configured (BILLOPS_BACKUP_PROCESSOR)',
        }),
      );
      expect(step('place affected accounts in a 48-hour grace')?.detail).toMatch(
        /lifecycles reached \(signals\)/,
      );

      // The outage grace: each lifecycle is paused, its grace and every later deadline 48 hours further away.
      for (const { tenant, handle: dunning } of inDunning) {
        const now = await dunning.query(dunningStatusQuery);
        expect(now.paused).toBe(true);
        expect(
          Date.parse(now.deadlines.graceEndsAt) - Date.parse(before.get(tenant.id)!.deadlines.graceEndsAt),
        ).toBe(48 * HOUR);
        expect(now.timeline.map((e) => e.event)).toEqual(
          expect.arrayContaining(['grace extended', 'paused']),
        );
        expect(
          Date.parse(now.deadlines.suspensionAt) - Date.parse(before.get(tenant.id)!.deadlines.suspensionAt),
        ).toBe(48 * HOUR);
      }
      const overrides = await ts.deps.pool.query<{
        name: string;
        value: Record<string, unknown>;
        cleared_at: Date | null;
      }>('SELECT name, value, cleared_at FROM operational_overrides WHERE workflow_id = $1 ORDER BY name', [
        handle.workflowId,
      ]);
      expect(overrides.rows.map((r) => [r.name, r.cleared_at])).toEqual([
        ['dunning_hold:paystack', null],
        ['manual_payments:paystack', null],
      ]);
      expect(overrides.rows[0]!.value).toMatchObject({ graceHours: 48, suspensionsStopped: true });
      for (const tenant of ours) {
        const [notice] = mailTo(tenant, `Service Notice - Account #${tenant.id}`);
        expect(notice?.text).toContain('Paystack, our payment processor, is not processing payments');
        expect(notice?.text).toContain('48-hour grace period');
      }

      // Probes back off: 1, 2, 4, 8, 15 minutes apart; the sixth, at 45 minutes, finds Paystack answering.
      await ts.env.sleep(44 * MINUTE);
      status = await handle.query(incidentStatusQuery);
      expect(minutesAfterOpen(status, 'probe_failed')).toEqual([1, 3, 7, 15, 30]);
      expect(status.currentStep).toBe('waiting for recovery');
      await ts.env.sleep(2 * MINUTE);
      status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'recovered and closing',
      );
      expect(minutesAfterOpen(status, 'probe_healthy')).toEqual([45]);
      const probes = ts.paystack
        .requests()
        .slice(requestsBefore)
        .filter((r) => r.path === '/transaction/verify/billops-connectivity-probe');
      expect(probes.map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 503, 400]);
      expect(probes.every((r) => r.authorization === `Bearer ${ts.paystack.secretKey}`)).toBe(true);

      // Switched back: overrides cleared, dunning resumed, every failed payment retried and collected.
      const cleared = await ts.deps.pool.query<{ cleared_by: string | null }>(
        'SELECT cleared_by FROM operational_overrides WHERE workflow_id = $1',
        [handle.workflowId],
      );
      expect(cleared.rows.map((r) => r.cleared_by)).toEqual(['billops', 'billops']);
      for (const { tenant, handle: dunning } of inDunning) {
        const recovered = await pollUntil(
          () => dunning.query(dunningStatusQuery),
          (s) => s.phase === 'recovered',
          `${tenant.id} recovered`,
        );
        expect(recovered.timeline.map((e) => e.event)).toEqual(
          expect.arrayContaining(['resumed', 'recovered']),
        );
      }
      const charged = ts.paystack
        .charges()
        .filter((c) => ours.some((t) => `billing@${t.id}.test` === c.email));
      expect(charged.filter((c) => c.outcome === 'success')).toHaveLength(3);
      const paid = await ts.deps.pool.query<{ tenant_id: string; status: string }>(
        `SELECT tenant_id, status FROM invoices WHERE tenant_id = ANY($1::text[]) ORDER BY tenant_id`,
        [ours.map((t) => t.id)],
      );
      expect(paid.rows.map((r) => r.status)).toEqual(['paid', 'paid', 'paid']);

      // Credits: 1% of the 49.00 fee for the one started hour, per tenant, recorded and in DECISIONS.log.
      const credits = await ts.deps.pool.query<{ tenant_id: string; amount_minor: number; currency: string }>(
        `SELECT tenant_id, amount_minor, currency FROM credits_adjustments WHERE workflow_id = $1 AND kind = 'credit'`,
        [handle.workflowId],
      );
      for (const tenant of ours) {
        expect(credits.rows.find((r) => r.tenant_id === tenant.id)).toMatchObject({
          amount_minor: 49,
          currency: 'USD',
        });
        expect(mailTo(tenant, `Service Credit Applied - Account #${tenant.id}`)[0]?.text).toContain(
          'A service credit of USD 0.49',
        );
        expect(mailTo(tenant, `Service Notice Resolved - Account #${tenant.id}`)[0]?.text).toContain(
          'It lasted 0 hours 45 minutes',
        );
      }
      expect(credits.rows).toHaveLength(3);
      const totalCredits = 3 * 49;
      const decision = await ts.deps.pool.query<{ line: string }>(
        'SELECT line FROM decisions WHERE workflow_id = $1',
        [handle.workflowId],
      );
      const entry = parseDecisionLine(decision.rows[0]!.line);
      expect(entry).toMatchObject({
        operator: 'billops',
        incidentType: 'payment_processor_outage',
        tenants: 3,
        credits: { amountMinor: totalCredits, currency: 'USD' },
        executor: 'billops',
      });
      expect(entry.resolution).toMatch(
        /^Paystack recovered \(a probe succeeded\) after 0 hours 45 minutes; /,
      );
      expect(readFileSync(ts.deps.decisionsLogPath, 'utf8')).toContain(decision.rows[0]!.line);
      expect(
        ts.receivers
          .statusPageUpdates()
          .filter((u) => (u.incident as { external_id: string }).external_id === handle.workflowId)
          .map((u) => (u.incident as { status: string }).status),
      ).toEqual(['investigating', 'monitoring', 'resolved']);

      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'Paystack regional outage' }],
      });
      const outcome = await handle.result();
      expect(outcome.status.phase).toBe('closed');
      expect(outcome.status.credits).toEqual({ amountMinor: totalCredits, currency: 'USD' });
    });
  });

  it('an operator estimate of 6 hours gives the shortest grace, 24 h; the alertResolved signal ends the wait', async () => {
    const taskQueue = `outage-alert-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      ts.paystack.failNext(0, 503);
      const { tenant, code, handle: dunning } = await tenantInDunning(taskQueue);
      const before = await pollUntil(
        () => dunning.query(dunningStatusQuery),
        (s) => s.phase === 'warning',
        'warning phase',
      );
      ts.paystack.failNext(1000, 503);
      const input = incidentInput('payment_processor_outage', {
        processor: 'paystack' as const,
        expectedHours: 6,
        tenantIds: [tenant.id],
      });
      const handle = await ts.env.client.workflow.start(paymentProcessorOutageWorkflow, {
        workflowId: `incident-payment_processor_outage-${input.key}`,
        taskQueue,
        args: [input],
      });
      await untilIncident(handle, (s) => s.currentStep === 'waiting for recovery', 'containment done');
      const held = await dunning.query(dunningStatusQuery);
      expect(Date.parse(held.deadlines.graceEndsAt) - Date.parse(before.deadlines.graceEndsAt)).toBe(
        24 * HOUR,
      );

      await ts.env.sleep(10 * MINUTE);
      ts.paystack.failNext(0, 503);
      ts.paystack.authorize(code, { outcome: 'success' });
      await handle.signal(alertResolvedSignal, { fingerprint: input.key });
      const status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'closing',
      );
      expect(minutesAfterOpen(status, 'probe_failed')).toEqual([1, 3, 7]);
      expect(minutesAfterOpen(status, 'probe_healthy')).toEqual([]);
      expect(status.resolution?.summary).toMatch(
        /^Paystack recovered \(the alert resolved\) after 0 hours 10 minutes/,
      );
      const resumed = await pollUntil(
        () => dunning.query(dunningStatusQuery),
        (s) => s.phase === 'recovered',
        `${tenant.id} recovered`,
      );
      expect(resumed.paused).toBe(false);
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'Paystack DNS' }],
      });
      await handle.result();
    });
  });
});

// The incident key is the alert fingerprint, so a re-fire reaches the same workflow id: it is a new occurrence with new
// idempotency keys and the whole containment again, while the first occurrence still gets its root-cause reminder.
describe('a second occurrence', () => {
  it('the same alert fired again after resolution extends and pauses dunning again, notifies again, logs a second decision, and the first still gets its reminder', async () => {
    const taskQueue = `outage-refire-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      ts.paystack.failNext(0, 503);
      // The card keeps declining: the lifecycle stays in dunning through both outages.
      const { tenant, handle: dunning } = await tenantInDunning(taskQueue);
      await pollUntil(
        () => dunning.query(dunningStatusQuery),
        (s) => s.phase === 'warning',
        'warning phase',
      );
      ts.paystack.failNext(1000, 503);
      const fingerprint = `fp-${Math.random().toString(36).slice(2, 10)}`;
      const input = incidentInput(
        'payment_processor_outage',
        // Scoped to this test's tenant: the shared database holds other tests' Paystack tenants, whose payments an
        // unscoped outage would retry.
        { processor: 'paystack' as const, expectedHours: 6, tenantIds: [tenant.id] },
        {
          key: fingerprint,
          source: 'alertmanager',
          openedBy: 'alertmanager',
          tenantIds: [tenant.id],
          alert: { name: 'PaystackDown', fingerprint, labels: { processor: 'paystack' } },
        },
      );
      const grace = (s: DunningStatus) => s.timeline.filter((e) => e.event === 'grace extended').length;
      const paused = (s: DunningStatus) => s.timeline.filter((e) => e.event === 'paused').length;

      // The first occurrence: contained, then the alert resolves.
      const first = await startIncident(ts.env.client, taskQueue, input);
      const firstRunId = (await first.describe()).runId;
      const firstStatus = await untilIncident(
        first,
        (s) => s.currentStep === 'waiting for recovery',
        'first containment',
      );
      const afterFirst = await dunning.query(dunningStatusQuery);
      expect([grace(afterFirst), paused(afterFirst)]).toEqual([1, 1]);
      await ts.env.sleep(10 * MINUTE);
      await first.signal(alertResolvedSignal, { fingerprint });
      const firstClosing = await untilIncident(
        first,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'first occurrence resolved',
      );
      const firstResolvedAt = Date.parse(firstClosing.resolution!.at);

      // The alert fires again an hour later: the same workflow id, a new occurrence.
      await ts.env.sleep(HOUR);
      const second = await startIncident(ts.env.client, taskQueue, input);
      expect(second.workflowId).toBe(first.workflowId);
      const secondStatus = await untilIncident(
        ts.env.client.workflow.getHandle(first.workflowId),
        (s) => s.currentStep === 'waiting for recovery' && s.resolution === null,
        'second containment',
      );
      // The same account as the first occurrence: the one in dunning on this processor.
      expect(secondStatus.tenantsAffected).toBe(firstStatus.tenantsAffected);
      expect(firstStatus.tenantsAffected).toBe(1);
      const afterSecond = await pollUntil(
        () => dunning.query(dunningStatusQuery),
        (s) => grace(s) === 2,
        'grace extended a second time',
      );
      expect(paused(afterSecond)).toBe(2);
      expect(afterSecond.paused).toBe(true);
      expect(mailTo(tenant, `Service Notice - Account #${tenant.id}`)).toHaveLength(2);

      // The second occurrence resolves and is closed with its own DECISIONS.log line.
      await ts.env.sleep(10 * MINUTE);
      const latest = ts.env.client.workflow.getHandle(first.workflowId);
      await latest.signal(alertResolvedSignal, { fingerprint });
      await untilIncident(
        latest,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'second occurrence resolved',
      );
      const decisions = await pollUntil(
        () =>
          ts.deps.pool
            .query<{ line: string }>('SELECT line FROM decisions WHERE workflow_id = $1', [first.workflowId])
            .then((r) => r.rows),
        (rows) => rows.length === 2,
        'two DECISIONS.log lines',
      );
      expect(decisions).toHaveLength(2);
      const incidentRows = await ts.deps.pool.query<{ status: string }>(
        'SELECT status FROM incidents WHERE workflow_id = $1',
        [first.workflowId],
      );
      expect(incidentRows.rows).toHaveLength(2);

      // The first occurrence's root cause is due 48 hours after its resolution: the reminder goes out then.
      const reminders = () =>
        readCaughtMail(testEnv('mailDir')).filter(
          (m) => m.to.includes(TEST_OPS_EMAIL) && m.subject.includes(first.workflowId),
        );
      await ts.env.sleep(firstResolvedAt + 47 * HOUR - (await ts.env.currentTimeMs()));
      expect(reminders()).toHaveLength(0);
      await ts.env.sleep(2 * HOUR);
      await pollUntil(
        async () => reminders(),
        (r) => r.length >= 1,
        'the first occurrence reminded',
      );
      await latest.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'Paystack DNS, twice' }],
      });
      const outcome = await latest.result();
      expect(outcome.status.phase).toBe('closed');
      expect(reminders()).toHaveLength(1);
      expect((await latest.describe()).runId).not.toBe(firstRunId);

      // Once the workflow has ended, the alert firing again starts a new execution under the same id: it contains too.
      const third = await startIncident(ts.env.client, taskQueue, input);
      await untilIncident(third, (s) => s.currentStep === 'waiting for recovery', 'third containment');
      const afterThird = await pollUntil(
        () => dunning.query(dunningStatusQuery),
        (s) => grace(s) === 3,
        'grace extended a third time',
      );
      expect(paused(afterThird)).toBe(3);
      expect(mailTo(tenant, `Service Notice - Account #${tenant.id}`)).toHaveLength(3);
      ts.paystack.failNext(0, 503);
      await third.signal(alertResolvedSignal, { fingerprint });
      await untilIncident(
        third,
        (s) => s.currentStep === 'waiting for the root-cause analysis',
        'third resolved',
      );
      await third.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'Paystack DNS, thrice' }],
      });
      await third.result();
    });
  });
});
