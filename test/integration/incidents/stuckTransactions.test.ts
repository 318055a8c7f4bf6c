// Stuck transactions on the dev server against real PostgreSQL, the Paystack-shaped server and stripe-mock: pending over
// an hour → verified with the provider → the row changes only on the provider's word; the incident ends itself.
import { randomUUID } from 'node:crypto';
import { startIncident } from '../../../temporal/incidents';
import { parseDecisionLine } from '../../../domain/decisions';
import { recordRootCauseUpdate } from '../../../workflows/definitions';
import { insertOpenInvoice, insertTenant } from '../../support/dunningFixtures';
import { incidentInput, untilIncident } from '../../support/incidentFixtures';
import type { PaystackFake } from '../../support/paystackFake';
import { startProviderTestWorker, type ProviderTestWorker } from '../../support/testWorker';

const taskQueue = `stuck-${randomUUID().slice(0, 8)}`;
let paystack: PaystackFake;
let worker: ProviderTestWorker;

beforeAll(async () => {
  worker = await startProviderTestWorker(taskQueue, { stripe: { secretKey: 'sk_test_stuck' } });
  ({ paystack } = worker);
});

afterAll(async () => {
  await worker?.stop();
});

async function pending(
  tenantId: string,
  processor: 'paystack' | 'stripe',
  reference: string,
  opts: { amountMinor: number; currency: string; invoiceId?: string; age?: string },
) {
  await worker.deps.pool.query(
    `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency, created_at)
     VALUES ($1, $2, $3, $4, 'pending', $5, $6, now() - $7::interval)`,
    [
      tenantId,
      opts.invoiceId ?? null,
      processor,
      reference,
      opts.amountMinor,
      opts.currency,
      opts.age ?? '2 hours',
    ],
  );
}

const statusOf = async (reference: string) =>
  (
    await worker.deps.pool.query<{ status: string; paid_at: Date | null; gateway_response: string | null }>(
      'SELECT status, paid_at, gateway_response FROM payment_transactions WHERE reference = $1',
      [reference],
    )
  ).rows[0];

describe('stuck transactions incident', () => {
  it('settles what Paystack confirms, fails what it failed, leaves young and unconfirmed rows alone; an operator resolves the rest', async () => {
    const tenant = await insertTenant(worker.deps.pool, 'pro', { processor: 'paystack' });
    const invoice = await insertOpenInvoice(worker.deps.pool, tenant.id, { totalMinor: 500000 });
    const tag = tenant.id;
    const paid = `paid-${tag}`;
    const declined = `declined-${tag}`;
    const young = `young-${tag}`;
    const mismatch = `mismatch-${tag}`;
    await pending(tenant.id, 'paystack', paid, {
      amountMinor: 500000,
      currency: 'USD',
      invoiceId: invoice.invoiceId,
    });
    await pending(tenant.id, 'paystack', declined, { amountMinor: 700000, currency: 'NGN' });
    await pending(tenant.id, 'paystack', young, { amountMinor: 100000, currency: 'NGN', age: '10 minutes' });
    await pending(tenant.id, 'paystack', mismatch, { amountMinor: 100000, currency: 'NGN' });
    const paidAt = new Date(Date.now() - 90 * 60_000);
    paystack.addTransaction({
      reference: paid,
      amount: 500000,
      currency: 'USD',
      status: 'success',
      createdAt: paidAt,
      paidAt,
    });
    paystack.addTransaction({
      reference: declined,
      amount: 700000,
      currency: 'NGN',
      status: 'failed',
      gatewayResponse: 'Declined',
      createdAt: paidAt,
    });
    // Paystack reports another amount for this reference: not a confirmation of ours.
    paystack.addTransaction({
      reference: mismatch,
      amount: 100,
      currency: 'NGN',
      status: 'success',
      createdAt: paidAt,
    });
    const refsBefore = paystack.requests().length;

    const handle = await startIncident(
      worker.client,
      taskQueue,
      incidentInput(
        'stuck_transactions',
        { processor: 'paystack', references: [paid, declined, young, mismatch] },
        { key: `paystack-${tag}`, tenantIds: [tenant.id] },
      ),
    );
    let status = await untilIncident(handle, (s) => s.currentStep === 'waiting for recovery', 'verified');
    expect(status.stepsDone.map((s) => s.detail)).toEqual([
      '3 stuck',
      '2 settled, 1 still pending at the provider',
    ]);
    expect((await statusOf(paid))?.status).toBe('success');
    expect((await statusOf(paid))?.paid_at?.toISOString()).toBe(paidAt.toISOString());
    expect(await statusOf(declined)).toMatchObject({ status: 'failed', gateway_response: 'Declined' });
    expect((await statusOf(young))?.status).toBe('pending');
    expect((await statusOf(mismatch))?.status).toBe('pending');
    const inv = await worker.deps.pool.query('SELECT status FROM invoices WHERE id = $1', [
      invoice.invoiceId,
    ]);
    expect(inv.rows[0]?.status).toBe('paid');
    // One verify per stuck reference, each with the secret key.
    const verifies = paystack
      .requests()
      .slice(refsBefore)
      .filter((r) => r.path.startsWith('/transaction/verify/'));
    expect(verifies.map((r) => decodeURIComponent(r.path.split('/').pop()!)).sort()).toEqual(
      [declined, mismatch, paid].sort(),
    );
    expect(verifies.every((r) => r.authorization === `Bearer ${paystack.secretKey}`)).toBe(true);

    // An operator resolves what the provider still holds; the incident ends with its DECISIONS.log line.
    await handle.signal('resolve', { operator: 'ada', summary: 'mismatch escalated to Paystack support' });
    status = await untilIncident(
      handle,
      (s) => s.currentStep === 'waiting for the root-cause analysis',
      'closing',
    );
    await handle.executeUpdate(recordRootCauseUpdate, {
      args: [{ operator: 'ada', summary: 'Paystack queue backlog' }],
    });
    await handle.result();
    const { rows } = await worker.deps.pool.query<{ line: string; rca_summary: string; report_md: string }>(
      `SELECT d.line, i.rca_summary, i.report_md FROM decisions d JOIN incidents i USING (workflow_id) WHERE workflow_id = $1`,
      [handle.workflowId],
    );
    expect(parseDecisionLine(rows[0]!.line)).toMatchObject({
      operator: 'ada',
      incidentType: 'stuck_transactions',
      tenants: 1,
      impact: '3 payments pending over an hour',
    });
    expect(rows[0]!.rca_summary).toBe('Paystack queue backlog');
    expect(rows[0]!.report_md).toContain('Paystack queue backlog');
  });

  it('a Stripe PaymentIntent whose amount is not ours stays pending; nothing stuck resolves the incident by itself', async () => {
    const tenant = await insertTenant(worker.deps.pool, 'pro', { processor: 'stripe' });
    const reference = `pi_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
    await pending(tenant.id, 'stripe', reference, { amountMinor: 987654, currency: 'USD' });
    const handle = await startIncident(
      worker.client,
      taskQueue,
      incidentInput(
        'stuck_transactions',
        { processor: 'stripe', references: [reference] },
        { key: `stripe-${tenant.id}` },
      ),
    );
    let status = await untilIncident(handle, (s) => s.stepsDone.length >= 2, 'verified');
    expect(status.stepsDone[1]?.detail).toBe('0 settled, 1 still pending at the provider');
    expect((await statusOf(reference))?.status).toBe('pending');
    await handle.terminate('test done');

    const empty = await startIncident(
      worker.client,
      taskQueue,
      incidentInput(
        'stuck_transactions',
        { processor: 'stripe', references: ['none-such'] },
        { key: `empty-${tenant.id}` },
      ),
    );
    status = await untilIncident(empty, (s) => s.resolution !== null, 'resolved by itself');
    expect(status.resolution).toMatchObject({
      by: 'billops',
      summary: 'no transaction pending for over an hour',
    });
    await empty.terminate('test done');
  });
});
