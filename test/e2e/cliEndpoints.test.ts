// `billops endpoints ...` as an operator runs them, against a worker on the dev server: an endpoint added (its secret
// shown once, a non-http URL refused), a delivery the receiver refused listed as failed with its answer, redelivered
// through its delivery workflow and verified by the receiver, the secret rotated, the endpoint removed.
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { changeServiceControlHold } from '../../db/serviceControls';
import type { WebhookDelivery, WebhookEndpoint } from '../../db/outboundWebhooks';
import { operatorEnv, runBillops, TEST_OPERATOR } from '../support/billopsCli';
import { insertTenant } from '../support/dunningFixtures';
import { pollUntil } from '../support/poll';
import { privateDatabase, type PrivateDatabase } from '../support/privateDatabase';
import { startTestWorker, type TestWorker } from '../support/testWorker';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver';

const taskQueue = `cli-endpoints-${randomUUID().slice(0, 8)}`;
const SECRET = /\bwhsec_[A-Za-z0-9_-]{43}\b/;
let database: PrivateDatabase;
let worker: TestWorker;
let receiver: WebhookReceiver;
let pool: Pool;

const billops = (...args: string[]) =>
  runBillops(args, operatorEnv(taskQueue, { DATABASE_URL: database.url, BILLOPS_OPERATOR: TEST_OPERATOR }));

beforeAll(async () => {
  // A database of its own: the endpoints and deliveries listed are this suite's only.
  database = await privateDatabase('whcli');
  worker = await startTestWorker(taskQueue, { databaseUrl: database.url });
  pool = worker.deps.pool;
  receiver = await startWebhookReceiver();
});

afterAll(async () => {
  await worker?.stop();
  await receiver?.close();
  await database?.drop();
});

jest.setTimeout(180_000);

async function deliveries(...filter: string[]): Promise<WebhookDelivery[]> {
  const run = await billops('endpoints', 'deliveries', ...filter, '--json');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as WebhookDelivery[];
}

it('refuses an endpoint URL that is not http(s), and an unknown event type', async () => {
  const ftp = await billops('endpoints', 'add', '--url', 'ftp://product.example/hooks');
  expect(ftp.code).toBe(1);
  expect(ftp.stderr).toMatch(/endpoint URL refused: the URL must be http or https, got ftp/);
  const events = await billops('endpoints', 'add', '--url', receiver.url, '--events', 'tenant.deleted');
  expect(events.code).toBe(2);
  expect(events.stderr).toMatch(/--events must be among tenant\.access\.changed, /);
  const missing = await billops('endpoints', 'add');
  expect(missing.code).toBe(2);
  const list = await billops('endpoints', 'list', '--json');
  expect(JSON.parse(list.stdout)).toEqual([]);
});

it('adds, lists, shows a refused delivery, redelivers it, rotates the secret and removes the endpoint', async () => {
  const tenant = await insertTenant(pool, 'pro');
  const added = await billops('endpoints', 'add', '--url', receiver.url, '--tenants', tenant.id);
  expect(added.code).toBe(0);
  const secret = SECRET.exec(added.stdout)?.[0] ?? '';
  expect(secret).not.toBe('');
  expect(added.stdout).toMatch(/shown once/);
  const id = /added endpoint (we_[0-9a-f]+)/.exec(added.stdout)?.[1] ?? '';
  receiver.verifyWith(secret);

  const listed = await billops('endpoints', 'list');
  expect(listed.stdout).toContain(id);
  expect(listed.stdout).toContain(`all events for ${tenant.id}`);
  expect(listed.stdout).not.toContain(secret);
  const json = await billops('endpoints', 'list', '--json');
  expect(json.stdout).not.toContain(secret);
  expect((JSON.parse(json.stdout) as WebhookEndpoint[]).map((e) => [e.id, e.url, e.tenants])).toEqual([
    [id, receiver.url, [tenant.id]],
  ]);

  // The tenant is throttled: the event waits in the outbox until a delivery workflow is woken for its stream.
  await changeServiceControlHold(pool, {
    tenantId: tenant.id,
    source: 'overage',
    workflowId: `overage-${tenant.id}`,
    operator: 'billops',
    reason: 'soft limit',
    fields: { rateLimitPercent: 10 },
  });
  const [pending] = await deliveries('--endpoint', id);
  expect(pending).toMatchObject({ eventType: 'tenant.access.changed', status: 'pending', attempts: 0 });

  // The receiver refuses it: one attempt, failed with the answer, no retry.
  receiver.answer(422, 'tenant unknown to the gateway');
  const first = await billops('endpoints', 'redeliver', pending!.id);
  expect(first.code).toBe(0);
  expect(first.stdout).toMatch(/queued again/);
  await pollUntil(
    () => deliveries('--status', 'failed'),
    (ds) => ds.length === 1,
    'the refused delivery listed as failed',
  );
  const failedText = await billops('endpoints', 'deliveries', '--status', 'failed');
  expect(failedText.stdout).toContain(pending!.id);
  expect(failedText.stdout).toContain('422 tenant unknown to the gateway');
  expect(receiver.received.map((r) => r.status)).toEqual([422]);

  // Fixed on their side: redelivered, verified and taken.
  receiver.answer(200);
  expect((await billops('endpoints', 'redeliver', pending!.id)).code).toBe(0);
  const delivered = await pollUntil(
    () => deliveries('--endpoint', id),
    (ds) => ds[0]?.status === 'delivered',
    'the redelivery delivered',
  );
  expect(delivered[0]).toMatchObject({ round: 3, attempts: 1, lastStatus: 200 });
  expect(receiver.received.at(-1)).toMatchObject({
    eventId: pending!.eventId,
    status: 200,
    verified: [true],
  });

  const rotated = await billops('endpoints', 'rotate-secret', id);
  expect(rotated.code).toBe(0);
  const newSecret = SECRET.exec(rotated.stdout)?.[0] ?? '';
  expect(newSecret).not.toBe(secret);
  expect(rotated.stdout).toMatch(/previous one also signs for 24 h/);
  expect((await billops('endpoints', 'list')).stdout).toMatch(/previous secret until/);

  const removed = await billops('endpoints', 'remove', id);
  expect(removed.code).toBe(0);
  expect((await billops('endpoints', 'remove', id)).stdout).toMatch(/already removed/);
  expect(JSON.parse((await billops('endpoints', 'list', '--json')).stdout)).toEqual([]);
  expect((await billops('endpoints', 'remove', 'we_nothere')).code).toBe(1);
  expect((await billops('endpoints', 'redeliver', '999999')).code).toBe(1);
  const again = await billops('endpoints', 'redeliver', pending!.id);
  expect(again.code).toBe(1);
  expect(again.stderr).toMatch(/endpoint was removed/);
});
