// The operator CLI as a user runs it: bin/billops in its own process, against the shared dev server and PostgreSQL.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { dunningQuery, dunningWorkflowId } from '../../temporal/dunning';
import type { DunningStatus } from '../../domain/dunning';
import type { WorkerDependencies } from '../../workers/dependencies';
import { dunningStatusQuery } from '../../workflows/definitions';
import { operatorCli, TEST_OPERATOR, type CliRun } from '../support/billopsCli';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { startTestWorker, type TestWorker } from '../support/testWorker';

const DAY_MS = 86_400_000;

describe('billops operator CLI', () => {
  const taskQueue = `cli-${Date.now()}`;
  let deps: WorkerDependencies;
  let client: Client;
  let testWorker: TestWorker;
  let pro: TestTenant;
  let free: TestTenant;
  let invoices: { invoiceId: string; amountMinor: number }[];
  let workflowId: string;

  const billops = operatorCli(taskQueue);

  const statusOf = () => client.workflow.getHandle(workflowId).query(dunningStatusQuery);

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    ({ deps, client } = testWorker);
    pro = await insertTenant(deps.pool, 'pro');
    free = await insertTenant(deps.pool, 'free');
    invoices = [await insertOpenInvoice(deps.pool, pro.id), await insertOpenInvoice(deps.pool, pro.id)];
    workflowId = dunningWorkflowId(pro.id);
  });

  afterAll(async () => {
    await client?.workflow
      .getHandle(workflowId)
      .terminate('cli test done')
      .catch(() => undefined);
    await testWorker?.stop();
  });

  const start = (invoice: { invoiceId: string; amountMinor: number }) =>
    billops(
      'dunning',
      'start',
      '--tenant',
      pro.id,
      '--invoice',
      invoice.invoiceId,
      '--amount',
      String(invoice.amountMinor),
      '--currency',
      'USD',
    );

  it('starts a Pro tenant’s lifecycle, then joins it with a second invoice (one workflow)', async () => {
    const first = await start(invoices[0]!);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(new RegExp(`^started ${workflowId} \\(run ([0-9a-f-]+)\\)`));

    const second = await start(invoices[1]!);
    expect(second).toMatchObject({ code: 0, stderr: '' });
    expect(second.stdout).toMatch(new RegExp(`^joined ${workflowId} \\(run ([0-9a-f-]+)\\)`));
    const runOf = (r: CliRun) => /\(run ([0-9a-f-]+)\)/.exec(r.stdout)?.[1];
    expect(runOf(second)).toBe(runOf(first));
  });

  it('shows the status for a person and as JSON', async () => {
    const [text, json] = await Promise.all([
      billops('status', workflowId),
      billops('status', workflowId, '--json'),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}phase {8}(retrying|grace|warning)$/m);
    expect(text.stdout).toMatch(/^ {2}paused {7}no$/m);
    expect(text.stdout).toContain(`  tenant       ${pro.id} (pro, stripe)`);
    expect(text.stdout).toMatch(/^ {4}grace ends {3}\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in [67] days\)$/m);
    for (const { invoiceId } of invoices) {
      expect(text.stdout).toMatch(new RegExp(`^ {4}\\S+ \\S+ +payment failed +invoice ${invoiceId} `, 'm'));
    }

    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as DunningStatus;
    expect(status).toMatchObject({ tenantId: pro.id, tier: 'pro', processor: 'stripe', paused: false });
    expect(status.outstandingInvoices.map((i) => i.invoiceId).sort()).toEqual(
      invoices.map((i) => i.invoiceId).sort(),
    );
  });

  it('pauses (status shows it, with operator and reason in the timeline) and resumes', async () => {
    const paused = await billops('pause', workflowId, '--reason', 'customer disputes the invoice');
    expect(paused).toMatchObject({ code: 0, stderr: '' });
    expect(paused.stdout).toContain(`paused ${workflowId} by ${TEST_OPERATOR}`);

    const whilePaused = await billops('status', workflowId);
    expect(whilePaused.stdout).toMatch(/^ {2}paused {7}yes$/m);
    expect(whilePaused.stdout).toMatch(/^ {2}next action {2}none while paused$/m);
    expect(whilePaused.stdout).toMatch(
      new RegExp(`^ {4}\\S+ \\S+ +paused +by ${TEST_OPERATOR} +reason: customer disputes the invoice$`, 'm'),
    );

    const resumed = await billops('resume', workflowId, '--operator', 'alice');
    expect(resumed).toMatchObject({ code: 0, stderr: '' });
    const after = await statusOf();
    expect(after.paused).toBe(false);
    expect(after.timeline.at(-1)).toMatchObject({ event: 'resumed', operator: 'alice' });
  });

  it('extends grace by 5 days and prints the new grace end; refuses 0 days (exit 1) and rejects "abc" (exit 2)', async () => {
    const before = Date.parse((await statusOf()).deadlines.graceEndsAt);
    const extended = await billops(
      'extend-grace',
      pro.id,
      '--days',
      '5',
      '--reason',
      'processor outage INC-7',
    );
    expect(extended).toMatchObject({ code: 0, stderr: '' });
    const graceEnd = /^grace now ends (\S+)$/m.exec(extended.stdout)?.[1];
    expect(Date.parse(graceEnd ?? '') - before).toBe(5 * DAY_MS);
    expect((await statusOf()).timeline.at(-1)).toMatchObject({
      event: 'grace extended',
      operator: TEST_OPERATOR,
      reason: 'processor outage INC-7',
    });

    const [zero, abc] = await Promise.all([
      billops('extend-grace', pro.id, '--days', '0', '--reason', 'x'),
      billops('extend-grace', pro.id, '--days', 'abc', '--reason', 'x'),
    ]);
    expect(zero).toMatchObject({ code: 1, stdout: '' });
    expect(zero.stderr).toBe('billops: refused: the extension must be positive (days > 0)\n');
    expect(abc.code).toBe(2);
    expect(abc.stderr).toContain('--days must be a whole number (got "abc")');
    expect(abc.stderr).toContain('usage: billops extend-grace <tenantId> --days N');
  });

  it('answers bad input with exit 1 (not found, refused) or 2 (bad arguments), and starts nothing for Free', async () => {
    const freeInvoice = await insertOpenInvoice(deps.pool, free.id);
    const [unknownWorkflow, unknownCommand, freeStart, badAmount] = await Promise.all([
      billops('status', `dunning-nobody-${Date.now()}`),
      billops('frobnicate', '--now'),
      billops('dunning', 'start', '--tenant', free.id, '--invoice', freeInvoice.invoiceId, '--amount', '900'),
      billops('dunning', 'start', '--tenant', pro.id, '--invoice', 'in_x', '--amount', '12.50'),
    ]);
    expect(unknownWorkflow.code).toBe(1);
    expect(unknownWorkflow.stderr).toMatch(
      /^billops: no workflow dunning-nobody-\d+ in namespace default\n$/,
    );
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toContain('unknown command: frobnicate --now');
    expect(unknownCommand.stderr).toContain('usage: billops <command> [options]');
    expect(freeStart.code).toBe(1);
    expect(freeStart.stderr).toContain(
      `tenant ${free.id} is on the free tier, which has no payment processing`,
    );
    await expect(client.workflow.getHandle(dunningWorkflowId(free.id)).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    expect(badAmount.code).toBe(2);
    expect(badAmount.stderr).toContain('--amount must be a whole number');
  });

  it('lists tenants and the lifecycle, and extends grace by 24 hours for every lifecycle a filter selects', async () => {
    // Visibility is eventually consistent: wait until the lifecycle is listed before selecting by filter.
    const filter = `TenantId = '${pro.id}'`;
    for (let i = 0; i < 50 && (await client.workflow.count(dunningQuery(filter))).count < 1; i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = Date.parse((await statusOf()).deadlines.graceEndsAt);
    const [tenants, list, mass] = await Promise.all([
      billops('tenants', 'list', '--json'),
      billops('dunning', 'list', '--tenant', pro.id, '--json'),
      billops('extend-grace', '--where', filter, '--hours', '24', '--reason', 'Stripe outage INC-8'),
    ]);
    expect(tenants.code).toBe(0);
    expect(JSON.parse(tenants.stdout)).toContainEqual(expect.objectContaining({ id: pro.id, tier: 'pro' }));
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([
      expect.objectContaining({ workflowId, tenantId: pro.id, tier: 'pro', processor: 'stripe' }),
    ]);

    expect(mass.code).toBe(0);
    expect(mass.stdout).toMatch(/^reached 1 of 1 lifecycles/);
    expect(mass.stderr).toMatch(/progress: 1 of 1/);
    const after = await statusOf();
    expect(Date.parse(after.deadlines.graceEndsAt) - before).toBe(DAY_MS);
    expect(after.timeline.at(-1)).toMatchObject({ event: 'grace extended', reason: 'Stripe outage INC-8' });
  });
});
