// Records one finished history per workflow shape into test/histories/*.json, for the replay test that guards
// determinism across changes. Run with `npm run record-histories` (not part of `npm test`); commit the files.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { createPaystackGateway } from '../../activities/payments/paystack';
import { ensureSearchAttributes } from '../../client/searchAttributes';
import { createBillopsWorker } from '../../workers/createWorker';
import type { WorkerDependencies } from '../../workers/dependencies';
import { incidentStatusQuery, paymentFailedSignal, resolveUpdate } from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { stuckTransactionsWorkflow } from '../../workflows/incidents/stuckTransactions';
import { dunningInput, insertOpenInvoice, insertTenant } from '../support/dunningFixtures';
import { incidentInput, startIncidentReceivers, type IncidentReceivers } from '../support/incidentFixtures';
import { startPaystackFake, type PaystackFake } from '../support/paystackFake';
import { testEnv, workflowBundle } from '../support/testRuntime';
import { testWorkerDependencies } from '../support/workerDeps';

const MINUTE = 60_000;
let env: TestWorkflowEnvironment;
let deps: WorkerDependencies;
let receivers: IncidentReceivers;
let paystack: PaystackFake;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testEnv('testServer') } },
  });
  await ensureSearchAttributes(env.connection, 'default');
  receivers = await startIncidentReceivers();
  paystack = await startPaystackFake();
  deps = testWorkerDependencies({
    gateways: {
      paystack: createPaystackGateway({ secretKey: paystack.secretKey, baseUrl: paystack.url, timeoutSeconds: 5 }),
    },
    incidents: receivers.incidents,
  });
});

afterAll(async () => {
  await deps?.close();
  await receivers?.close();
  await paystack?.close();
  await env?.teardown();
});

async function save(name: string, workflowId: string): Promise<void> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  // Protobuf binary: the SDK's historyToJSON trips over two protobufjs copies under jest; decode() reads it back.
  writeFileSync(join(__dirname, `${name}.pb`), temporal.api.history.v1.History.encode(history).finish());
}

async function worker(taskQueue: string) {
  return createBillopsWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    deps,
    workflowBundle: workflowBundle(),
  });
}

it('records dunningWorkflow: Pro, never paid, to deletion', async () => {
  const taskQueue = 'record-dunning';
  const w = await worker(taskQueue);
  const tenant = await insertTenant(deps.pool, 'pro');
  const invoice = await insertOpenInvoice(deps.pool, tenant.id);
  const handle = await env.client.workflow.signalWithStart(dunningWorkflow, {
    workflowId: `dunning-${tenant.id}`,
    taskQueue,
    args: [dunningInput(tenant, invoice)],
    signal: paymentFailedSignal,
    signalArgs: [invoice],
  });
  await w.runUntil(handle.result());
  await save('dunning-pro-deleted', handle.workflowId);
}, 300_000);

it('records stuckTransactionsWorkflow: P1, escalated twice, resolved, RCA reminder', async () => {
  const taskQueue = 'record-stuck';
  const w = await worker(taskQueue);
  const tenant = await insertTenant(deps.pool, 'pro', { processor: 'paystack' });
  const reference = `record-${tenant.id}`;
  await deps.pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, created_at)
     VALUES ($1, 'paystack', $2, 'pending', 500000, 'NGN', now() - interval '2 hours')`,
    [tenant.id, reference],
  );
  paystack.addTransaction({ reference, amount: 500000, currency: 'NGN', status: 'ongoing', createdAt: new Date() });
  const handle = await env.client.workflow.start(stuckTransactionsWorkflow, {
    workflowId: `incident-stuck_transactions-${reference}`,
    taskQueue,
    args: [incidentInput('stuck_transactions', { references: [reference] }, { key: reference, severity: 'P1' })],
  });
  await w.runUntil(async () => {
    for (let i = 0; i < 300; i++) {
      if ((await handle.query(incidentStatusQuery)).stepsDone.length === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await env.sleep(50 * MINUTE);
    await handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'settled by hand' }] });
    await handle.result();
  });
  await save('incident-stuck-transactions-p1', handle.workflowId);
}, 300_000);
