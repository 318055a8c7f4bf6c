// Outbound webhook delivery on the time-skipping server with the real policy durations: a receiver down for 5 hours
// gets every event, in order, once it is back, after retries at 15 min, 45 min, 1 h 45, 3 h 45 and 7 h 45; a 400 fails
// the delivery at once; 7 days of failure fail it for good after the schedule's last retry.
import { randomUUID } from 'node:crypto';
import { changeServiceControlHold } from '../../db/serviceControls';
import {
  createEndpoint,
  deliveryAttempts,
  listDeliveries,
  rotateEndpointSecret,
  type WebhookDelivery,
} from '../../db/outboundWebhooks';
import { webhookDeliveryWorkflowId } from '../../domain/outboundWebhooks';
import { defaultPolicy } from '../../domain/policy';
import { webhookDeliveryWorkflow } from '../../workflows/webhookDelivery';
import { insertTenant, type TestTenant } from '../support/dunningFixtures';
import { privateDatabase, type PrivateDatabase } from '../support/privateDatabase';
import { startTimeSkipping, type TimeSkipping } from '../support/timeSkipping';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Minutes after the first attempt of each retry: 15 min doubling to a 24 h cap, the last one at the 7-day mark. */
const RETRY_MINUTES = [15, 45, 105, 225, 465, 945, 1905, 3345, 4785, 6225, 7665, 9105, 10080];

let ts: TimeSkipping;
let receiver: WebhookReceiver;
// A database of its own: no other suite's worker may dispatch these streams, nor its events reach these endpoints.
let database: PrivateDatabase;

beforeAll(async () => {
  database = await privateDatabase('whout');
  ts = await startTimeSkipping({ databaseUrl: database.url });
});

beforeEach(async () => {
  receiver = await startWebhookReceiver();
});

afterEach(async () => {
  await receiver?.close();
});

afterAll(async () => {
  await ts?.close();
  await database?.drop();
});

jest.setTimeout(300_000);

async function endpointFor(tenant: TestTenant) {
  const added = await createEndpoint(ts.deps.pool, {
    url: receiver.url,
    events: null,
    tenants: [tenant.id],
  });
  receiver.verifyWith(added.secret);
  return added;
}

/** Three real access changes of the tenant (throttled, blocked, lifted), each writing tenant.access.changed. */
async function threeAccessChanges(tenant: TestTenant) {
  const change = { tenantId: tenant.id, source: 'dunning' as const, workflowId: `dunning-${tenant.id}` };
  const operator = 'billops';
  await changeServiceControlHold(ts.deps.pool, {
    ...change,
    operator,
    reason: 'soft limit',
    fields: { rateLimitPercent: 10 },
  });
  await changeServiceControlHold(ts.deps.pool, {
    ...change,
    operator,
    reason: 'hard limit',
    fields: { apiBlocked: true },
  });
  await changeServiceControlHold(ts.deps.pool, {
    ...change,
    operator,
    reason: 'payment recovered',
    fields: { rateLimitPercent: 100, apiBlocked: false },
    until: null,
  });
}

function deliver(endpointId: string, tenant: TestTenant, taskQueue: string) {
  return ts.env.client.workflow.start(webhookDeliveryWorkflow, {
    workflowId: webhookDeliveryWorkflowId(endpointId, tenant.id),
    taskQueue,
    args: [
      {
        endpointId,
        stream: tenant.id,
        policy: { webhookRetry: defaultPolicy.webhookRetry, apiRetry: defaultPolicy.apiRetry },
      },
    ],
  });
}

/** The endpoint's deliveries, oldest first. */
async function deliveriesOf(endpointId: string): Promise<WebhookDelivery[]> {
  return (await listDeliveries(ts.deps.pool, { endpointId })).reverse();
}

async function attemptMinutes(delivery: WebhookDelivery): Promise<number[]> {
  const attempts = await deliveryAttempts(ts.deps.pool, delivery.id);
  const first = Date.parse(attempts[0]!.attemptedAt);
  return attempts.map((a) => Math.round((Date.parse(a.attemptedAt) - first) / MINUTE));
}

const unique = () => randomUUID().slice(0, 8);

describe('webhook delivery on the time-skipping server', () => {
  it('keeps retrying a receiver down for 5 hours at increasing intervals, then delivers everything in order, signed', async () => {
    const taskQueue = `webhook-delivery-down-${unique()}`;
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const { endpoint } = await endpointFor(tenant);
    await threeAccessChanges(tenant);
    receiver.answer(503, 'maintenance');

    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const handle = await deliver(endpoint.id, tenant, taskQueue);
      await ts.env.sleep(5 * HOUR);
      // Down all along: only the first event was tried, at the schedule's times; the others wait behind it.
      const [first, ...rest] = await deliveriesOf(endpoint.id);
      expect(await attemptMinutes(first!)).toEqual([0, ...RETRY_MINUTES.slice(0, 4)]);
      expect(first).toMatchObject({ status: 'pending', attempts: 5, lastStatus: 503 });
      expect(first!.lastError).toBe('503 maintenance');
      expect(rest.map((d) => [d.status, d.attempts])).toEqual([
        ['pending', 0],
        ['pending', 0],
      ]);

      receiver.answer(200);
      expect(await handle.result()).toEqual({ delivered: 3, failed: 0 });
    });

    const deliveries = await deliveriesOf(endpoint.id);
    expect(deliveries.map((d) => d.status)).toEqual(['delivered', 'delivered', 'delivered']);
    // Back after 5 hours: the 7 h 45 retry takes the first, and the two behind it follow at once.
    expect(await attemptMinutes(deliveries[0]!)).toEqual([0, ...RETRY_MINUTES.slice(0, 5)]);
    const taken = receiver.received.filter((r) => r.status === 200);
    expect(taken.map((r) => r.eventId)).toEqual(deliveries.map((d) => d.eventId));
    expect(taken.map((r) => [r.type, r.data.state, r.data.rateLimitPercent])).toEqual([
      ['tenant.access.changed', 'throttled', 10],
      ['tenant.access.changed', 'blocked', 10],
      ['tenant.access.changed', 'active', 100],
    ]);
    expect(taken.every((r) => r.tenantId === tenant.id && r.verified[0] === true)).toBe(true);
    expect(receiver.received.filter((r) => r.status === 503)).toHaveLength(5);
  });

  it('marks a delivery the receiver refuses with 400 failed at once, with its answer, and goes on with the next', async () => {
    const taskQueue = `webhook-delivery-refused-${unique()}`;
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const { endpoint } = await endpointFor(tenant);
    await threeAccessChanges(tenant);
    receiver.answer(400, `unknown tenant ${tenant.id}: ${'x'.repeat(300)}`);

    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const handle = await deliver(endpoint.id, tenant, taskQueue);
      expect(await handle.result()).toEqual({ delivered: 0, failed: 3 });
    });
    const deliveries = await deliveriesOf(endpoint.id);
    for (const d of deliveries) {
      expect(d).toMatchObject({ status: 'failed', attempts: 1, lastStatus: 400 });
      expect(d.lastError).toMatch(new RegExp(`^400 unknown tenant ${tenant.id}: x+$`));
      expect(d.lastError).toHaveLength(200);
    }
    expect(receiver.received).toHaveLength(3);
  });

  it('fails a delivery for good after 7 days of failures, its last retry at the 7-day mark', async () => {
    const taskQueue = `webhook-delivery-7-days-${unique()}`;
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const { endpoint } = await endpointFor(tenant);
    await changeServiceControlHold(ts.deps.pool, {
      tenantId: tenant.id,
      source: 'operator',
      workflowId: 'operator',
      operator: 'ops@example.com',
      reason: 'abuse',
      fields: { suspended: true },
    });
    receiver.answer(502);

    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const handle = await deliver(endpoint.id, tenant, taskQueue);
      expect(await handle.result()).toEqual({ delivered: 0, failed: 1 });
    });
    const [delivery] = await deliveriesOf(endpoint.id);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 14, lastStatus: 502 });
    expect(await attemptMinutes(delivery!)).toEqual([0, ...RETRY_MINUTES]);
  });

  it('signs with the old and the new secret for 24 h after a rotation, so a receiver on either verifies', async () => {
    const taskQueue = `webhook-delivery-rotation-${unique()}`;
    const tenant = await insertTenant(ts.deps.pool, 'pro');
    const { endpoint, secret: oldSecret } = await endpointFor(tenant);
    const rotated = await rotateEndpointSecret(ts.deps.pool, endpoint.id);
    receiver.verifyWith(oldSecret, rotated!.secret, 'whsec_someone_else');
    await changeServiceControlHold(ts.deps.pool, {
      tenantId: tenant.id,
      source: 'overage',
      workflowId: `overage-${tenant.id}`,
      operator: 'billops',
      reason: 'soft limit',
      fields: { rateLimitPercent: 10 },
    });

    const worker = await ts.newWorker(taskQueue);
    await worker.runUntil(async () => {
      const handle = await deliver(endpoint.id, tenant, taskQueue);
      expect(await handle.result()).toEqual({ delivered: 1, failed: 0 });
    });
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]!.verified).toEqual([true, true, false]);
    expect(receiver.received[0]!.signature.match(/v1=/g)).toHaveLength(2);
  });
});
