// Outbound webhooks from the activities that change what the product cares about, on a real PostgreSQL and the dev
// server: the dunning record's phase changes and recovery, an incident's opening and resolution. Each event is written
// with its change (a retried activity writes none again), the activity wakes the stream's delivery workflow, and a
// receiver that verifies Billops-Signature gets them in order.
import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createDunningRecordActivities } from '../../activities/dunningRecords';
import { createEmailActivities } from '../../activities/email';
import { createIncidentActivities } from '../../activities/incidents/common';
import { dispatchingAfter } from '../../activities/outboundWebhooks';
import { createEndpoint, listDeliveries } from '../../db/outboundWebhooks';
import { newIncidentState, statusOf } from '../../domain/incident';
import { insertTenant } from '../support/dunningFixtures';
import { incidentInput } from '../support/incidentFixtures';
import { pollUntil } from '../support/poll';
import { privateDatabase, type PrivateDatabase } from '../support/privateDatabase';
import { startTestWorker, type TestWorker } from '../support/testWorker';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver';

const taskQueue = `outbound-webhooks-${randomUUID().slice(0, 8)}`;
let database: PrivateDatabase;
let worker: TestWorker;
let receiver: WebhookReceiver;
// The activities run as the worker runs them: in an activity context on its task queue.
const activityEnv = () => new MockActivityEnvironment({ taskQueue });

beforeAll(async () => {
  // A database of its own: an endpoint for every tenant here must see only this suite's events.
  database = await privateDatabase('whint');
  worker = await startTestWorker(taskQueue, { databaseUrl: database.url, clientForActivities: true });
  receiver = await startWebhookReceiver();
});

afterAll(async () => {
  await worker?.stop();
  await receiver?.close();
  await database?.drop();
});

jest.setTimeout(120_000);

const deliveredTo = (endpointId: string, count: number) =>
  pollUntil(
    () => listDeliveries(worker.deps.pool, { endpointId }),
    (ds) => ds.length === count && ds.every((d) => d.status === 'delivered'),
    `${count} deliveries to ${endpointId} delivered`,
    { explain: (ds) => JSON.stringify(ds.map((d) => [d.eventType, d.status, d.lastError])) },
  );

it('sends dunning.phase_changed for each new phase and invoice.recovered per invoice at recovery, in order, signed', async () => {
  const { pool } = worker.deps;
  const tenant = await insertTenant(pool, 'pro');
  const { endpoint, secret } = await createEndpoint(pool, {
    url: receiver.url,
    events: ['dunning.phase_changed', 'invoice.recovered'],
    tenants: [tenant.id],
  });
  receiver.verifyWith(secret);
  const acts = dispatchingAfter(createDunningRecordActivities({ pool }), {
    pool,
    temporalClient: worker.client,
  });
  const env = activityEnv();
  const workflowId = `dunning-${tenant.id}`;
  const ref = { tenantId: tenant.id, workflowId };
  await env.run(acts.openDunningRecord, {
    ...ref,
    invoiceIds: ['inv_a', 'inv_b'],
    startedAt: new Date().toISOString(),
    graceEndsAt: null,
  });
  await env.run(acts.updateDunningRecord, { ...ref, phase: 'grace' as const });
  // A retried activity: the phase is already grace, nothing new is sent.
  await env.run(acts.updateDunningRecord, { ...ref, phase: 'grace' as const });
  await env.run(acts.updateDunningRecord, { ...ref, phase: 'soft_limited' as const });
  await env.run(acts.closeDunningRecord, {
    ...ref,
    phase: 'recovered' as const,
    outcome: 'recovered' as const,
  });
  await env.run(acts.closeDunningRecord, {
    ...ref,
    phase: 'recovered' as const,
    outcome: 'recovered' as const,
  });

  await deliveredTo(endpoint.id, 5);
  const got = receiver.received.filter((r) => r.tenantId === tenant.id);
  expect(
    got.map((r) => [r.type, r.data.previousPhase ?? null, r.data.phase ?? null, r.data.invoiceId ?? null]),
  ).toEqual([
    ['dunning.phase_changed', 'retrying', 'grace', null],
    ['dunning.phase_changed', 'grace', 'soft_limited', null],
    ['dunning.phase_changed', 'soft_limited', 'recovered', null],
    ['invoice.recovered', null, null, 'inv_a'],
    ['invoice.recovered', null, null, 'inv_b'],
  ]);
  expect(got.every((r) => r.status === 200 && r.verified[0] === true)).toBe(true);
});

it('sends incident.opened once when the incident is first recorded and incident.resolved once when it resolves', async () => {
  const { pool } = worker.deps;
  const { endpoint, secret } = await createEndpoint(pool, {
    url: receiver.url,
    events: ['incident.opened', 'incident.resolved'],
    tenants: null,
  });
  receiver.verifyWith(secret);
  const incidents = createIncidentActivities({
    pool,
    email: createEmailActivities({
      pool,
      mailer: { send: async () => undefined, close: () => undefined } as never,
      from: 'x@y.z',
    }),
    opsEmail: 'ops@billops.test',
    reportsDir: '/tmp',
  });
  const acts = dispatchingAfter(incidents, { pool, temporalClient: worker.client });
  const env = activityEnv();
  const workflowId = `incident-webhook_failure-${randomUUID().slice(0, 8)}`;
  const state = newIncidentState(incidentInput('webhook_failure', {}), workflowId, Date.now());
  const open = statusOf(state);
  await env.run(acts.recordIncident, open);
  await env.run(acts.recordIncident, { ...open, acknowledgedBy: 'ada' });
  const resolution = { by: 'ada', at: new Date().toISOString(), summary: 'replayed' };
  const resolved = {
    ...open,
    phase: 'resolved' as const,
    resolution,
    timeline: [...open.timeline, ...open.timeline],
  };
  await env.run(acts.recordIncident, resolved);
  await env.run(acts.recordIncident, resolved);

  await deliveredTo(endpoint.id, 2);
  const got = receiver.received.filter((r) => r.data.incidentId === workflowId);
  expect(got.map((r) => [r.type, r.tenantId, r.data.kind])).toEqual([
    ['incident.opened', null, 'webhook_failure'],
    ['incident.resolved', null, 'webhook_failure'],
  ]);
  expect(got[1]!.data.resolution).toEqual(resolution);
  expect(got.every((r) => r.verified[0] === true)).toBe(true);
});
