// Records one finished history per workflow shape into test/histories/*.json, for the replay test that guards
// determinism across changes. Run with `npm run record-histories` (not part of `npm test`); commit the files.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { paymentFailedSignal, resolveUpdate } from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { stuckTransactionsWorkflow } from '../../workflows/incidents/stuckTransactions';
import { dunningInput, insertOpenInvoice, insertTenant } from '../support/dunningFixtures';
import { incidentInput, untilIncident } from '../support/incidentFixtures';
import { startIncidentTimeSkipping, type IncidentTimeSkipping } from '../support/timeSkipping';

const MINUTE = 60_000;
let ts: IncidentTimeSkipping;

beforeAll(async () => {
  ts = await startIncidentTimeSkipping();
});

afterAll(async () => {
  await ts?.close();
});

async function save(name: string, workflowId: string): Promise<void> {
  const history = await ts.env.client.workflow.getHandle(workflowId).fetchHistory();
  // Protobuf binary: the SDK's historyToJSON trips over two protobufjs copies under jest; decode() reads it back.
  writeFileSync(join(__dirname, `${name}.pb`), temporal.api.history.v1.History.encode(history).finish());
}

it('records dunningWorkflow: Pro, never paid, to deletion', async () => {
  const taskQueue = 'record-dunning';
  const w = await ts.newWorker(taskQueue);
  const tenant = await insertTenant(ts.deps.pool, 'pro');
  const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id);
  const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
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
  const w = await ts.newWorker(taskQueue);
  const tenant = await insertTenant(ts.deps.pool, 'pro', { processor: 'paystack' });
  const reference = `record-${tenant.id}`;
  await ts.deps.pool.query(
    `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, created_at)
     VALUES ($1, 'paystack', $2, 'pending', 500000, 'NGN', now() - interval '2 hours')`,
    [tenant.id, reference],
  );
  ts.paystack.addTransaction({ reference, amount: 500000, currency: 'NGN', status: 'ongoing', createdAt: new Date() });
  const handle = await ts.env.client.workflow.start(stuckTransactionsWorkflow, {
    workflowId: `incident-stuck_transactions-${reference}`,
    taskQueue,
    args: [incidentInput('stuck_transactions', { references: [reference] }, { key: reference, severity: 'P1' })],
  });
  await w.runUntil(async () => {
    await untilIncident(handle, (s) => s.stepsDone.length === 2, 'first verification done');
    await ts.env.sleep(50 * MINUTE);
    await handle.executeUpdate(resolveUpdate, { args: [{ operator: 'ada', summary: 'settled by hand' }] });
    await handle.result();
  });
  await save('incident-stuck-transactions-p1', handle.workflowId);
}, 300_000);
