// Processor outage mass action on the dev server: one call extends grace for every lifecycle a visibility query selects.
import type { Client } from '@temporalio/client';
import { dunningWorkflowId, signalDunningWhere, startOrJoinDunning } from '../../../temporal/dunning';
import type { DunningStatus } from '../../../domain/dunning';
import { defaultPolicy } from '../../../domain/policy';
import type { WorkerDependencies } from '../../../workers/dependencies';
import { dunningStatusQuery } from '../../../workflows/definitions';
import { operatorEnv, runBillops } from '../../support/billopsCli';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../../support/dunningFixtures';
import { startTestWorker, type TestWorker } from '../../support/testWorker';
import { TEST_PORTAL_URL } from '../../support/workerDeps';

const HOUR = 3_600_000;

describe('mass action over dunning lifecycles', () => {
  let deps: WorkerDependencies;
  let client: Client;
  let testWorker: TestWorker;
  const taskQueue = `mass-${Date.now()}`;
  const tenants: { tenant: TestTenant; processor: 'stripe' | 'paystack' }[] = [];

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    ({ deps, client } = testWorker);
  });

  afterAll(async () => {
    for (const { tenant } of tenants) {
      await client.workflow
        .getHandle(dunningWorkflowId(tenant.id))
        .terminate('test done')
        .catch(() => undefined);
    }
    await testWorker?.stop();
  });

  it('extends grace by 48 hours for every Stripe tenant in dunning, and reports how many it reached', async () => {
    const marker = `m${Date.now().toString(36)}`;
    for (let i = 0; i < 24; i++) {
      const processor = i % 3 === 2 ? 'paystack' : 'stripe';
      const tenant = await insertTenant(deps.pool, 'pro', { processor });
      const invoice = await insertOpenInvoice(deps.pool, tenant.id);
      tenants.push({ tenant, processor });
      await startOrJoinDunning(client, taskQueue, {
        tenantId: tenant.id,
        tenantName: `${marker}-${tenant.id}`,
        tier: 'pro',
        processor,
        invoice,
        policy: defaultPolicy,
        billingPortalUrl: TEST_PORTAL_URL,
      });
    }
    const ids = tenants.map(({ tenant }) => `'${dunningWorkflowId(tenant.id)}'`).join(', ');
    const ours = `WorkflowId IN (${ids})`;

    // Visibility is eventually consistent: wait until every lifecycle is listed and has settled at t=0.
    const before = new Map<string, DunningStatus>();
    for (let attempt = 0; attempt < 100; attempt++) {
      const count = await client.workflow.count(`${ours} AND DunningPhase = 'warning'`);
      if (count.count === tenants.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const { tenant } of tenants) {
      before.set(
        tenant.id,
        await client.workflow.getHandle(dunningWorkflowId(tenant.id)).query(dunningStatusQuery),
      );
    }

    const report = await signalDunningWhere(
      client,
      `${ours} AND PaymentProcessor = 'stripe' AND DunningPhase IN ('retrying', 'grace', 'warning')`,
      {
        kind: 'extendGrace',
        extension: { hours: 48, reason: 'Stripe outage INC-42', operator: 'oncall@billops.test' },
      },
    );
    const stripeCount = tenants.filter((t) => t.processor === 'stripe').length;
    expect(report).toMatchObject({ selected: stripeCount, reached: stripeCount, failed: 0 });

    for (const { tenant, processor } of tenants) {
      const after = await client.workflow.getHandle(dunningWorkflowId(tenant.id)).query(dunningStatusQuery);
      const moved =
        Date.parse(after.deadlines.graceEndsAt) - Date.parse(before.get(tenant.id)!.deadlines.graceEndsAt);
      expect({ tenant: tenant.id, moved }).toEqual({
        tenant: tenant.id,
        moved: processor === 'stripe' ? 48 * HOUR : 0,
      });
      if (processor === 'stripe') {
        expect(after.timeline.at(-1)).toMatchObject({
          event: 'grace extended',
          operator: 'oncall@billops.test',
          reason: 'Stripe outage INC-42',
        });
      }
    }
  });

  it('shows each lifecycle in the Web UI with its search attributes and a readable summary', async () => {
    const { tenant } = tenants[0]!;
    const description = await client.workflow.getHandle(dunningWorkflowId(tenant.id)).describe();
    expect(await description.staticSummary()).toMatch(
      new RegExp(`^Dunning · m[a-z0-9]+-${tenant.id} \\(Pro\\) · stripe$`),
    );
    const attributes = description.typedSearchAttributes;
    const value = (name: string) => attributes.getAll().find((p) => p.key.name === name)?.value;
    expect(value('TenantId')).toBe(tenant.id);
    expect(value('BillingTier')).toBe('pro');
    expect(value('PaymentProcessor')).toBe('stripe');
    expect(value('DunningPhase')).toBe('warning');
  });
  it('a lifecycle waiting for attention is found by NeedsAttention, shown by billops status, and moved on by billops dunning skip', async () => {
    const tenant = await insertTenant(deps.pool, 'pro');
    const invoice = await insertOpenInvoice(deps.pool, tenant.id);
    await deps.pool.query(`UPDATE invoices SET status = 'void' WHERE id = $1`, [invoice.invoiceId]);
    tenants.push({ tenant, processor: 'stripe' });
    const workflowId = dunningWorkflowId(tenant.id);
    await startOrJoinDunning(client, taskQueue, {
      tenantId: tenant.id,
      tier: 'pro',
      processor: 'stripe',
      invoice,
      policy: defaultPolicy,
      billingPortalUrl: TEST_PORTAL_URL,
    });
    const waiting = `WorkflowId = '${workflowId}' AND NeedsAttention = 'InvoiceNotPayable'`;
    for (let attempt = 0; attempt < 100 && (await client.workflow.count(waiting)).count === 0; attempt++)
      await new Promise((r) => setTimeout(r, 200));
    expect((await client.workflow.count(waiting)).count).toBe(1);

    const env = operatorEnv(taskQueue);
    const shown = await runBillops(['status', workflowId], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /ATTENTION {4}retry-1 needs attention since .*\(InvoiceNotPayable: invoice .* is void/,
    );
    expect(shown.stdout).toContain(`billops dunning skip ${tenant.id}`);

    const refused = await runBillops(['dunning', 'skip', tenant.id], env);
    expect(refused.code).toBe(2); // --reason is required
    const skipped = await runBillops(
      ['dunning', 'skip', tenant.id, '--reason', 'voided in Stripe', '--operator', 'ana'],
      env,
    );
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toContain(`skipped retry-1 of ${workflowId} (by ana: voided in Stripe)`);
    const status = await client.workflow.getHandle(workflowId).query(dunningStatusQuery);
    expect(status.attention).toBeNull();
    expect(status.timeline.find((e) => e.event === 'retry-1')?.detail).toBe(
      'skipped by ana: voided in Stripe',
    );
    const again = await runBillops(['dunning', 'skip', tenant.id, '--reason', 'twice'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no step is waiting for attention');
  });
});
