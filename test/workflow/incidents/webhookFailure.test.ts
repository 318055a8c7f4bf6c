// The webhook-failure incident on the time-skipping server, with the real policy durations: a stored event that keeps
// failing is retried at 15 min, 45 min, 1 h 45, ... (intervals doubling up to a day) for exactly 7 days, then handed to
// a person; one fixed on the way is applied once and the incident resolves itself. Signature failures are raised.
import { randomUUID } from 'node:crypto';
import { recordRejected } from '../../../db/webhookEvents';
import { readCaughtMail } from '../../../runtime/mailCatcher';
import { parseDecisionLine } from '../../../domain/decisions';
import type { IncidentStatus } from '../../../domain/incident';
import { incidentStatusQuery, recordRootCauseUpdate, resolveUpdate } from '../../../workflows/definitions';
import { webhookFailureWorkflow } from '../../../workflows/incidents/webhookFailure';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../../support/dunningFixtures';
import {
  incidentInput,
  startIncidentReceivers,
  untilIncident,
  type IncidentReceivers,
} from '../../support/incidentFixtures';
import { privateDatabase, type PrivateDatabase } from '../../support/privateDatabase';
import { testEnv } from '../../support/testRuntime';
import { startTimeSkipping, type TimeSkipping } from '../../support/timeSkipping';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Minutes after the opening of each retry round: 15 min doubling to a 24 h cap, the last one at the 7-day mark. */
const RETRY_MINUTES = [15, 45, 105, 225, 465, 945, 1905, 3345, 4785, 6225, 7665, 9105, 10080];

const unique = () => randomUUID().replace(/-/g, '').slice(0, 12);

let ts: TimeSkipping;
let receivers: IncidentReceivers;
// A database of its own: the incident replays every failed event in its window, so no other suite's rows may be there.
let database: PrivateDatabase;

beforeAll(async () => {
  database = await privateDatabase('whwf');
  receivers = await startIncidentReceivers();
  ts = await startTimeSkipping({
    databaseUrl: database.url,
    incidents: receivers.incidents,
    clientForActivities: true,
  });
});

afterAll(async () => {
  await ts?.close();
  await receivers?.close();
  await database?.drop();
});

/**
 * A Stripe invoice.paid the ingress stored and could not process: the event names tenant `payer`, but our invoice for
 * it belongs to `owner` (a wrong tenant mapping), which fails every retry until someone corrects the invoice.
 */
async function storedFailingPayment(payer: TestTenant, owner: TestTenant) {
  const processorInvoiceId = `in_${unique()}`;
  const invoice = await insertOpenInvoice(ts.deps.pool, owner.id, {
    processor: 'stripe',
    processorInvoiceId,
  });
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
  await ts.deps.pool.query(
    `INSERT INTO webhook_events (provider, event_key, event_type, payload, signature_valid, status, attempts, error,
                                 received_at)
     VALUES ('stripe', $1, 'invoice.paid', $2::jsonb, true, 'failed', 1, 'InvoiceOwnerMismatchError: ...',
             now() - interval '1 hour')`,
    [eventId, JSON.stringify(payload)],
  );
  return {
    eventId,
    invoiceId: invoice.invoiceId,
    processorInvoiceId,
    paidAt: new Date(paidAt * 1000).toISOString(),
  };
}

async function eventRow(eventId: string) {
  const { rows } = await ts.deps.pool.query<{ status: string; attempts: number; tenant_id: string | null }>(
    `SELECT status, attempts, tenant_id FROM webhook_events WHERE provider = 'stripe' AND event_key = $1`,
    [eventId],
  );
  return rows[0];
}

/** What PagerDuty was told for the incident, trigger by trigger (a resolve carries no summary). */
const pagedSummaries = (workflowId: string) =>
  receivers
    .pagerDutyEvents(workflowId)
    .flatMap((e) => (e.payload as { summary?: string } | undefined)?.summary ?? []);

const minutesAfterOpen = (status: IncidentStatus, at: string) =>
  Math.round((Date.parse(at) - Date.parse(status.openedAt)) / MINUTE);
const retryRounds = (status: IncidentStatus) =>
  status.timeline.filter((e) => e.event === 'step' && e.detail?.startsWith('retry round '));

async function openIncident(taskQueue: string) {
  const input = incidentInput('webhook_failure', {}, { key: `fp-${unique()}`, source: 'alertmanager' });
  return ts.env.client.workflow.start(webhookFailureWorkflow, {
    workflowId: `incident-webhook_failure-${input.key}`,
    taskQueue,
    args: [input],
  });
}

jest.setTimeout(300_000);

describe('webhook failure incident on the time-skipping server', () => {
  it('retries a failing event with increasing intervals; fixed after 20 h it is applied once at the 31 h 45 min round and billops resolves', async () => {
    const taskQueue = `webhook-incident-fixed-${unique()}`;
    const [payer, owner] = [await insertTenant(ts.deps.pool, 'pro'), await insertTenant(ts.deps.pool, 'pro')];
    const stored = await storedFailingPayment(payer, owner);
    // Two deliveries whose signature did not verify, as the ingress records them.
    await recordRejected(
      ts.deps.pool,
      'stripe',
      Buffer.from('{"id":"evt_forged","type":"invoice.paid"}'),
      'bad',
    );
    await recordRejected(ts.deps.pool, 'paystack', Buffer.from('{"event":"charge.success"}'), 'bad');

    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const handle = await openIncident(taskQueue);
      const opened = await untilIncident(
        handle,
        (s) => s.stepsDone.some((d) => d.name.startsWith('post to the status page')),
        'the first replay and reconciliation',
      );
      expect(opened.stepsDone.map((d) => [d.name, d.detail])).toEqual([
        ['count signature failures in the last 24 hours', '2 rejected (Stripe 1, Paystack 1)'],
        ['raise signature failures', expect.stringMatching(/^paged On-call Engineer: 2 rejected, last at /)],
        [
          'replay failed events from their stored raw bodies',
          expect.stringMatching(
            new RegExp(
              `^0 applied, 1 still failing, 0 older than 7 days, 0 taken by a delivery; failing: ${stored.eventId} \\(InvoiceOwnerMismatchError`,
            ),
          ),
        ],
        ['reconcile with Stripe: events our endpoint never stored', 'not configured'],
        ['reconcile with Paystack: verify pending transactions', 'not configured'],
        ['post to the status page', 'posted'],
      ]);
      const raised = pagedSummaries(handle.workflowId);
      expect(raised).toEqual([
        '[P2] webhook failure (test)',
        expect.stringMatching(
          /^\[P2\] 2 webhook deliveries failed signature verification since .*: check STRIPE_WEBHOOK_SECRET/,
        ),
      ]);
      expect(receivers.statusPageUpdates().map((u) => (u.incident as { status: string }).status)).toEqual([
        'identified',
      ]);
      expect(await eventRow(stored.eventId)).toMatchObject({ status: 'failed', attempts: 2 });

      await ts.env.sleep(20 * HOUR);
      let status = await handle.query(incidentStatusQuery);
      expect(retryRounds(status).map((e) => minutesAfterOpen(status, e.at))).toEqual(
        RETRY_MINUTES.slice(0, 6),
      );
      expect(await eventRow(stored.eventId)).toMatchObject({ status: 'failed', attempts: 8 });

      // Someone corrects the tenant mapping; the next round (31 h 45 min after the opening) applies the payment.
      await ts.deps.pool.query('UPDATE invoices SET tenant_id = $2 WHERE id = $1', [
        stored.invoiceId,
        payer.id,
      ]);
      await ts.env.sleep(12 * HOUR);
      status = await untilIncident(handle, (s) => s.phase === 'resolved', 'resolved by billops');
      expect(retryRounds(status).map((e) => minutesAfterOpen(status, e.at))).toEqual(
        RETRY_MINUTES.slice(0, 7),
      );
      expect(retryRounds(status).at(-1)?.detail).toBe(
        'retry round 8: 1 applied, 0 still failing, 0 older than 7 days, 0 taken by a delivery',
      );
      expect(status.resolution).toMatchObject({
        by: 'billops',
        summary:
          'no webhook event fails any more: 1 events applied (0 missed at the provider), 2 signatures rejected, 7 retry rounds',
      });
      expect(status.tenantsAffected).toBe(1);

      // Applied once: the invoice is paid at the event's time, the row processed on its 9th attempt, one confirmation.
      expect(await eventRow(stored.eventId)).toEqual({
        status: 'processed',
        attempts: 9,
        tenant_id: payer.id,
      });
      const { rows: invoices } = await ts.deps.pool.query<{
        status: string;
        paid_at: Date;
        tenant_id: string;
      }>('SELECT status, paid_at, tenant_id FROM invoices WHERE id = $1', [stored.invoiceId]);
      expect(invoices[0]).toMatchObject({ status: 'paid', tenant_id: payer.id });
      expect(invoices[0]!.paid_at.toISOString()).toBe(stored.paidAt);
      await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
      const confirmations = readCaughtMail(testEnv('mailDir')).filter((m) =>
        m.to.includes(payer.billingEmail),
      );
      expect(confirmations.map((m) => [m.subject, m.text])).toEqual([
        [
          `Payment Confirmed - Account #${payer.id}`,
          `We confirm your payment ${stored.processorInvoiceId} of USD 49.00. Thank you.\n`,
        ],
      ]);
      expect(receivers.statusPageUpdates().map((u) => (u.incident as { status: string }).status)).toEqual([
        'identified',
        'resolved',
      ]);
      const { rows } = await ts.deps.pool.query<{ line: string }>(
        'SELECT line FROM decisions WHERE workflow_id = $1',
        [handle.workflowId],
      );
      expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
        operator: 'billops',
        incidentType: 'webhook_failure',
        tenants: 1,
        credits: null,
        executor: 'billops',
      });
      expect(receivers.pagerDutyEvents(handle.workflowId).at(-1)?.event_action).toBe('resolve');
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'a tenant mapping pointed an invoice at the wrong tenant' }],
      });
      expect((await handle.result()).status.phase).toBe('closed');
    });
  });

  it('an event that never gets fixed: the last retry is at the 7-day mark, then the responders are paged and a person resolves', async () => {
    const taskQueue = `webhook-incident-expired-${unique()}`;
    const [payer, owner] = [await insertTenant(ts.deps.pool, 'pro'), await insertTenant(ts.deps.pool, 'pro')];
    const stored = await storedFailingPayment(payer, owner);

    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const handle = await openIncident(taskQueue);
      await untilIncident(
        handle,
        (s) => s.stepsDone.some((d) => d.name.startsWith('post to the status page')),
        'the first replay',
      );
      await ts.env.sleep(7 * DAY + HOUR);
      let status = await untilIncident(
        handle,
        (s) => s.currentStep === 'waiting for an operator to resolve',
        'handed to a person',
      );
      expect(retryRounds(status).map((e) => minutesAfterOpen(status, e.at))).toEqual(RETRY_MINUTES);
      const handedOver = status.timeline.find(
        (e) => e.event === 'skipped' && e.detail?.startsWith('retry failed'),
      );
      expect(minutesAfterOpen(status, handedOver!.at)).toBe(7 * 24 * 60);
      expect(handedOver!.detail).toBe(
        "retry failed events: 1 events still failing after 7 days of retries: settle them by hand (the provider's dashboard, then billops reconcile) and resolve",
      );
      expect(pagedSummaries(handle.workflowId)).toContainEqual(
        expect.stringContaining('1 events still failing after 7 days of retries'),
      );
      // 1 stored attempt + 14 rounds, and nothing after the window.
      expect(await eventRow(stored.eventId)).toMatchObject({ status: 'failed', attempts: 15 });
      await ts.env.sleep(2 * DAY);
      expect(retryRounds(await handle.query(incidentStatusQuery))).toHaveLength(RETRY_MINUTES.length);
      expect(await eventRow(stored.eventId)).toMatchObject({ status: 'failed', attempts: 15 });

      status = await handle.executeUpdate(resolveUpdate, {
        args: [
          {
            operator: 'ada',
            summary: 'invoice reassigned by hand; payment recorded from the Stripe dashboard',
          },
        ],
      });
      expect(status.resolution?.by).toBe('ada');
      await untilIncident(handle, (s) => s.currentStep === 'waiting for the root-cause analysis', 'closing');
      const { rows } = await ts.deps.pool.query<{ line: string }>(
        'SELECT line FROM decisions WHERE workflow_id = $1',
        [handle.workflowId],
      );
      expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
        operator: 'ada',
        incidentType: 'webhook_failure',
        resolution: 'invoice reassigned by hand; payment recorded from the Stripe dashboard',
      });
      await handle.executeUpdate(recordRootCauseUpdate, {
        args: [{ operator: 'ada', summary: 'tenant mapping' }],
      });
      expect((await handle.result()).status.phase).toBe('closed');
    });
  });
});
