// One request through every layer on real parts: client → Temporal dev server → worker → PostgreSQL row + SMTP email → visibility query.
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { readCaughtMail } from '../../runtime/mailCatcher';
import { BillingTier, PaymentProcessor, TenantId } from '../../domain/searchAttributes';
import { createBillopsWorker } from '../../workers/createWorker';
import type { WorkerDependencies } from '../../workers/dependencies';
import { customerNoticeWorkflow } from '../../workflows/customerNotice';
import { testEnv, workflowBundle } from '../support/testRuntime';
import { testWorkerDependencies } from '../support/workerDeps';

describe('vertical slice: a customer notice', () => {
  let deps: WorkerDependencies;
  let nativeConnection: NativeConnection;
  let client: Client;
  const tenantId = `slice-${randomUUID().slice(0, 8)}`;
  const taskQueue = `slice-${tenantId}`;

  beforeAll(async () => {
    deps = testWorkerDependencies();
    await deps.pool.query(
      `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor)
       VALUES ($1, 'Slice Corp', 'pro', 'ops@slice.test', 'billing@slice.test', 'USD', 'stripe')`,
      [tenantId],
    );
    nativeConnection = await NativeConnection.connect({ address: testEnv('temporalAddress') });
    client = new Client({ connection: await Connection.connect({ address: testEnv('temporalAddress') }) });
  });

  afterAll(async () => {
    await client.connection.close();
    await nativeConnection.close();
    await deps.close();
  });

  it('writes the outbox and dashboard rows, delivers the email over SMTP, and is found by TenantId', async () => {
    const worker = await createBillopsWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      deps,
      workflowBundle: workflowBundle(),
    });
    const workflowId = `notice-${tenantId}`;
    const handle = await client.workflow.start(customerNoticeWorkflow, {
      workflowId,
      taskQueue,
      args: [
        {
          tenantId,
          template: 'paymentFailureNotice',
          vars: {
            tenant_id: tenantId,
            invoice_id: 'in_slice_1',
            grace_days: 7,
            billing_portal_url: 'https://billing.test/portal',
          },
        },
      ],
      typedSearchAttributes: [
        { key: TenantId, value: tenantId },
        { key: BillingTier, value: 'pro' },
        { key: PaymentProcessor, value: 'stripe' },
      ],
      staticSummary: `Notice · ${tenantId} (Pro) · payment failure`,
    });
    const result = await worker.runUntil(handle.result());
    expect(result).toEqual({
      tenantId,
      template: 'paymentFailureNotice',
      emailed: true,
      dashboardNotified: true,
    });

    // The row the activity wrote in PostgreSQL.
    const outbox = await deps.pool.query(
      'SELECT status, to_address, subject FROM email_outbox WHERE idempotency_key = $1',
      [`${workflowId}/email`],
    );
    expect(outbox.rows).toEqual([
      { status: 'sent', to_address: 'billing@slice.test', subject: `Payment Issue - Account #${tenantId}` },
    ]);
    const dashboard = await deps.pool.query('SELECT kind FROM dashboard_notifications WHERE tenant_id = $1', [
      tenantId,
    ]);
    expect(dashboard.rows).toEqual([{ kind: 'paymentFailureNotice' }]);

    // The email the SMTP server received.
    const received = readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes('billing@slice.test'));
    expect(received).toHaveLength(1);
    expect(received[0]?.subject).toBe(`Payment Issue - Account #${tenantId}`);
    expect(received[0]?.text).toContain('invoice in_slice_1');
    expect(received[0]?.text).toContain('next 7 days');
    expect(received[0]?.text).toContain('https://billing.test/portal');

    // The workflow, found through a visibility query on a search attribute (visibility is eventually consistent).
    let found: string[] = [];
    for (let attempt = 0; attempt < 50 && found.length === 0; attempt++) {
      found = [];
      for await (const wf of client.workflow.list({ query: `TenantId = '${tenantId}'` }))
        found.push(wf.workflowId);
      if (found.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found).toEqual([workflowId]);
    const description = await handle.describe();
    expect(await description.staticSummary()).toBe(`Notice · ${tenantId} (Pro) · payment failure`);
  });
});
