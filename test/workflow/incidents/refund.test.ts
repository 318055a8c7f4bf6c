// A refund above the policy's approval threshold on the time-skipping server, with the real policy durations: it
// waits for an operator, pages the next level when the refund incident's response time (P3, 4 hours) passes
// unanswered, then refunds on approval — or tells the customer it was not approved.
import type { WorkflowHandle } from '@temporalio/client';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import type { IncidentStatus } from '../../../domain/incident';
import { parsePolicy } from '../../../domain/policy';
import {
  acknowledgeUpdate,
  approveStepUpdate,
  incidentStatusQuery,
  recordRootCauseUpdate,
} from '../../../workflows/definitions';
import { refundWorkflow } from '../../../workflows/incidents/refund';
import { insertTenant, type TestTenant } from '../../support/dunningFixtures';
import { incidentInput, untilIncident } from '../../support/incidentFixtures';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from '../../support/paystackFake';
import { testEnv } from '../../support/testRuntime';
import { startTimeSkipping, type TimeSkipping } from '../../support/timeSkipping';

const MINUTE = 60_000;
// NGN 10,000.00: refunds above it wait for a person.
const policy = parsePolicy({ refund: { approvalAboveMinor: { NGN: 1_000_000 } } });

let ts: TimeSkipping;
let paystack: PaystackFake;

beforeAll(async () => {
  paystack = await startPaystackFake();
  ts = await startTimeSkipping({ gateways: { paystack: fakePaystackGateway(paystack) } });
});

afterAll(async () => {
  await ts?.close();
  await paystack?.close();
});

jest.setTimeout(300_000);

/**
 * A pro tenant on Paystack with an active subscription and a NGN 50,000.00 payment made 3 days ago by the test
 * server's clock, which runs ahead of the database's once time has been skipped.
 */
async function largePayment(): Promise<{ tenant: TestTenant; reference: string }> {
  const now = new Date(await ts.env.currentTimeMs());
  const tenant = await insertTenant(ts.deps.pool, 'pro', { processor: 'paystack' });
  await ts.deps.pool.query(
    `INSERT INTO subscriptions (tenant_id, tier, status, current_period_start, current_period_end, processor)
     VALUES ($1, 'pro', 'active', $2::timestamptz - interval '3 days', $2::timestamptz + interval '27 days', 'paystack')`,
    [tenant.id, now],
  );
  const reference = `T-${tenant.id}`;
  await ts.deps.pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, paid_at)
     VALUES ($1, 'paystack', $2, 'success', 5000000, 'NGN', $3::timestamptz - interval '3 days')`,
    [tenant.id, reference, now],
  );
  paystack.addTransaction({ reference, amount: 5_000_000, currency: 'NGN', createdAt: new Date() });
  return { tenant, reference };
}

async function openRefund(taskQueue: string) {
  const { tenant, reference } = await largePayment();
  const handle = await ts.env.client.workflow.start(refundWorkflow, {
    workflowId: `incident-refund-${reference}`,
    taskQueue,
    args: [
      incidentInput(
        'refund',
        {
          tenantId: tenant.id,
          reference,
          reason: 'service outage goodwill',
          subscriptionChange: 'none' as const,
        },
        { key: reference, tenantIds: [tenant.id], policy },
      ),
    ],
  });
  const waiting = await untilIncident(handle, (s) => s.waitingForApproval !== null, 'waiting for approval');
  // Acknowledged, so only the unanswered approval escalates.
  await handle.executeUpdate(acknowledgeUpdate, { args: [{ operator: 'ada' }] });
  return { handle, tenant, reference, waiting };
}

const minutesAfter = (status: IncidentStatus, from: string, event: string) =>
  status.timeline
    .filter((e) => e.event === event)
    .map((e) => Math.round((Date.parse(e.at) - Date.parse(from)) / MINUTE));

async function finish(handle: WorkflowHandle): Promise<IncidentStatus> {
  await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
  await handle.executeUpdate(recordRootCauseUpdate, { args: [{ operator: 'ada', summary: 'goodwill' }] });
  return ((await handle.result()) as { status: IncidentStatus }).status;
}

describe('refund approval above the policy threshold (time-skipping)', () => {
  it('waits for approval, pages the next level after 4 unanswered hours, and refunds once approved', async () => {
    const taskQueue = `refund-approve-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const { handle, reference, waiting } = await openRefund(taskQueue);
      expect(waiting.waitingForApproval).toMatchObject({
        step: 'approve the refund',
        question: expect.stringContaining(`refund NGN 50000.00 of ${reference}`) as string,
      });
      expect(paystack.refunds().filter((r) => r.reference === reference)).toEqual([]);

      await ts.env.sleep(239 * MINUTE);
      let status = await handle.query(incidentStatusQuery);
      expect(status.timeline.some((e) => e.event === 'approval_overdue')).toBe(false);
      await ts.env.sleep(2 * MINUTE);
      status = await untilIncident(
        handle,
        (s) => s.timeline.some((e) => e.event === 'approval_overdue'),
        'approval overdue',
      );
      expect(minutesAfter(status, waiting.waitingForApproval!.since, 'approval_overdue')).toEqual([240]);
      expect(status.escalationLevel).toBe(1);
      expect(status.timeline.find((e) => e.event === 'approval_overdue')?.detail).toMatch(
        /^approve the refund: paged Engineering Team/,
      );

      await handle.executeUpdate(approveStepUpdate, {
        args: [{ step: 'approve the refund', approved: true, operator: 'finance-lead' }],
      });
      status = await finish(handle);

      expect(paystack.refunds().filter((r) => r.reference === reference)).toMatchObject([
        { amount: 5_000_000 },
      ]);
      const { rows } = await ts.deps.pool.query<{ created_by: string; amount_minor: number }>(
        `SELECT created_by, amount_minor FROM credits_adjustments WHERE workflow_id = $1`,
        [handle.workflowId],
      );
      expect(rows).toEqual([{ created_by: 'finance-lead', amount_minor: 5_000_000 }]);
      expect(status.approvals).toEqual([
        { step: 'approve the refund', approved: true, operator: 'finance-lead' },
      ]);
      expect(status.resolution?.by).toBe('billops');
    });
  });

  it('declined: the customer is told it was not approved, and nothing is refunded', async () => {
    const taskQueue = `refund-decline-${Date.now()}`;
    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const { handle, tenant, reference } = await openRefund(taskQueue);
      await handle.executeUpdate(approveStepUpdate, {
        args: [
          {
            step: 'approve the refund',
            approved: false,
            operator: 'finance-lead',
            reason: 'outside goodwill budget',
          },
        ],
      });
      const status = await finish(handle);

      expect(status.resolution?.summary).toBe(
        `refund of ${reference} refused: it was not approved (outside goodwill budget)`,
      );
      expect(paystack.refunds().filter((r) => r.reference === reference)).toEqual([]);
      const mail = readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(tenant.billingEmail));
      expect(mail.map((m) => m.text.split('\n')[0])).toEqual([
        `We could not refund payment ${reference}: it was not approved (outside goodwill budget).`,
      ]);
    });
  });
});
