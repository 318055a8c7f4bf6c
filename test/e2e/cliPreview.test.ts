// `billops preview` as an operator runs it: a tier's lifecycle with no server, a tenant's from the database, a running
// lifecycle's rest from Temporal, --json for scripts, and the refusals (a bad policy file, an unknown tenant).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { previewLifecycle, type LifecyclePreview } from '../../domain/dunning/preview';
import { defaultPolicy } from '../../domain/policy';
import { dunningWorkflowId } from '../../temporal/dunning';
import { dunningStatusQuery } from '../../workflows/definitions';
import { operatorCli, runBillops } from '../support/billopsCli';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { pollUntil } from '../support/poll';
import { startTestWorker, type TestWorker } from '../support/testWorker';

/** Only what a shell needs: no Temporal, no database. */
const bare = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' });

describe('billops preview with no server', () => {
  it('--tier pro prints every step with its date, phase, email and service-control change', async () => {
    const run = await runBillops(['preview', '--tier', 'pro'], bare());
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^a payment failing now on the pro tier, under policy \S+$/);
    expect(run.stdout).toMatch(/^ {2}grace ends {4}\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in 7 days\)$/m);
    const row = (step: string) => lines.find((l) => new RegExp(`\\s${step}\\s`).test(l)) ?? '';
    expect(row('retry-1')).toMatch(
      /\(now\)\s+\+0h\s+retry-1\s+→ retrying\s+email paymentFailureNotice to the billing contact$/,
    );
    expect(row('warning')).toMatch(
      /\+0h\s+warning\s+→ warning\s+email downgradeWarning .* \+ dashboard notice$/,
    );
    expect(row('retry-2')).toMatch(/\(in 6 hours\)\s+\+6h\s+retry-2\s+→ warning\s+no email$/);
    expect(row('soft-limit')).toMatch(
      /\(in 7 days\)\s+\+7d\s+soft-limit\s+→ soft_limited\s+email softLimitNotice .*rate limited to 10%$/,
    );
    expect(row('hard-limit')).toMatch(
      /\+10d\s+hard-limit\s+→ hard_limited\s+email hardLimitNotice .*new API requests blocked$/,
    );
    expect(row('suspension')).toMatch(
      /\+14d\s+suspension\s+→ suspended\s+email suspensionNotice .*account suspended$/,
    );
    expect(row('deletion')).toMatch(/\+104d\s+deletion\s+→ deleted\s+no email\s+data deleted$/);
    expect(lines.filter((l) => /past-due-\d+d/.test(l))).toHaveLength(3);
  });

  it('--json gives scripts the same schedule the domain computes', async () => {
    const run = await runBillops(['preview', '--tier', 'enterprise', '--json'], bare());
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const preview = JSON.parse(run.stdout) as LifecyclePreview & { mismatches: string[] };
    expect(preview).toEqual({
      ...previewLifecycle({ tier: 'enterprise', policy: defaultPolicy }, Date.parse(preview.firstFailureAt)),
      mismatches: [],
    });
    expect(preview.tenantId).toBeNull();
    expect(preview.steps.filter((s) => s.notice?.to === 'account manager').map((s) => s.id)).toEqual([
      'past-due-14d',
      'past-due-30d',
    ]);
  });

  it('follows BILLOPS_POLICY_FILE, and an invalid one exits 2 listing every problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'billops-preview-'));
    const good = join(dir, 'good.json');
    writeFileSync(
      good,
      JSON.stringify({ tiers: { pro: { graceDays: 10 } }, downgrade: { softLimitRatePercent: 25 } }),
    );
    const followed = await runBillops(['preview', '--tier', 'pro', '--json'], {
      ...bare(),
      BILLOPS_POLICY_FILE: good,
    });
    expect(followed.code).toBe(0);
    const soft = (JSON.parse(followed.stdout) as LifecyclePreview).steps.find((s) => s.id === 'soft-limit')!;
    expect(soft).toMatchObject({ afterFirstFailureMs: 10 * 86_400_000, control: { rateLimitPercent: 25 } });

    const bad = join(dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        paymentRetryHours: [24, 6],
        downgrade: { softLimitRatePercent: 500, deletionDaysAfterSuspension: 1 },
      }),
    );
    const refused = await runBillops(['preview', '--tier', 'pro'], { ...bare(), BILLOPS_POLICY_FILE: bad });
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('the policy file is invalid');
    expect(refused.stderr).toContain('3 problems');
    expect(refused.stderr).toMatch(/- paymentRetryHours: /);
    expect(refused.stderr).toMatch(/- downgrade\.softLimitRatePercent: /);
    expect(refused.stderr).toMatch(/- downgrade\.deletionDaysAfterSuspension: /);
  });

  it('bad arguments exit 2; the free tier, which has nothing to dun, exits 1', async () => {
    const none = await runBillops(['preview'], bare());
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give exactly one of --tier TIER, --tenant ID or a running lifecycle id');
    const both = await runBillops(['preview', '--tier', 'pro', '--tenant', 'acme'], bare());
    expect(both.code).toBe(2);
    const unknownTier = await runBillops(['preview', '--tier', 'gold'], bare());
    expect(unknownTier.code).toBe(2);
    const free = await runBillops(['preview', '--tier', 'free'], bare());
    expect(free.code).toBe(1);
    expect(free.stderr).toContain('the free tier has no payment processing');
  });
});

describe('billops preview against the database and Temporal', () => {
  const taskQueue = `cli-preview-${Date.now()}`;
  const billops = operatorCli(taskQueue);
  let testWorker: TestWorker;
  let client: Client;
  let pro: TestTenant;

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    client = testWorker.client;
    pro = await insertTenant(testWorker.deps.pool, 'pro');
  });

  afterAll(async () => {
    await client?.workflow
      .getHandle(dunningWorkflowId(pro.id))
      .terminate('cli preview test done')
      .catch(() => undefined);
    await testWorker?.stop();
  });

  it('--tenant reads the tier from the database; an unknown tenant exits 1', async () => {
    const known = await billops('preview', '--tenant', pro.id);
    expect(known).toMatchObject({ code: 0, stderr: '' });
    expect(known.stdout.split('\n')[0]).toMatch(
      new RegExp(`^a payment failing now for tenant ${pro.id} \\(pro\\), under policy \\S+$`),
    );
    const unknown = await billops('preview', '--tenant', 'no-such-tenant');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^billops: no tenant no-such-tenant in /);
  });

  it('a running lifecycle: its pause, its extension, the steps done, then what comes next', async () => {
    const invoice = await insertOpenInvoice(testWorker.deps.pool, pro.id);
    const workflowId = dunningWorkflowId(pro.id);
    const started = await billops(
      'dunning',
      'start',
      '--tenant',
      pro.id,
      '--invoice',
      invoice.invoiceId,
      '--amount',
      String(invoice.amountMinor),
    );
    expect(started.code).toBe(0);
    const handle = client.workflow.getHandle(workflowId);
    await pollUntil(
      () => handle.query(dunningStatusQuery),
      (s) => s.timeline.some((e) => e.event === 'warning'),
      'the lifecycle performs retry-1 and the warning',
    );
    expect(await billops('pause', workflowId, '--reason', 'customer disputes the invoice')).toMatchObject({
      code: 0,
    });
    expect(await billops('resume', workflowId)).toMatchObject({ code: 0 });
    expect(
      await billops('extend-grace', pro.id, '--days', '3', '--reason', 'bank transfer on its way'),
    ).toMatchObject({ code: 0 });

    const json = await billops('preview', workflowId, '--json');
    expect(json).toMatchObject({ code: 0, stderr: '' });
    const preview = JSON.parse(json.stdout) as LifecyclePreview & { mismatches: string[] };
    const status = await handle.query(dunningStatusQuery);
    expect(preview.mismatches).toEqual([]);
    expect(preview.tenantId).toBe(pro.id);
    // Both performed at once; the 3-day extension moved the warning into the future, so it comes again below.
    expect(preview.done.map((e) => e.event)).toEqual(['retry-1', 'warning']);
    expect(preview.pauses).toEqual([
      expect.objectContaining({ reason: 'customer disputes the invoice', to: expect.any(String) }),
    ]);
    expect(preview.extensions).toEqual([expect.objectContaining({ reason: 'bank transfer on its way' })]);
    expect(preview.graceEndsAt).toBe(status.deadlines.graceEndsAt);
    expect(preview.steps[0]).toMatchObject({ id: status.nextAction!.step, at: status.nextAction!.at });
    const byId = new Map(preview.steps.map((s) => [s.id, s.at]));
    expect(byId.get('soft-limit')).toBe(status.deadlines.softLimitAt);
    expect(byId.get('suspension')).toBe(status.deadlines.suspensionAt);
    expect(byId.get('deletion')).toBe(status.deadlines.deletionAt);
    expect(preview.steps.map((s) => s.id)).toEqual([
      'retry-2',
      'retry-3',
      'retry-4',
      'warning', // 7 days before a grace now 10 days long
      'past-due-7d',
      'soft-limit',
      'hard-limit',
      'past-due-14d',
      'suspension',
      'past-due-21d',
      'deletion',
    ]);

    const text = await billops('preview', workflowId);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout.split('\n')[0]).toBe(
      `${workflowId}: tenant ${pro.id} (pro), the lifecycle's policy snapshot ${preview.policyVersion}`,
    );
    expect(text.stdout).toMatch(
      /^ {2}pauses\n {4}\S+ \S+ \.\. \S+ \S+ by .+: customer disputes the invoice$/m,
    );
    expect(text.stdout).toMatch(
      /^ {2}grace extensions\n {4}\S+ \S+ {2}by 3 days; grace now ends .+: bank transfer on its way$/m,
    );
    expect(text.stdout).toMatch(/^ {2}steps done\n {4}\S+ \S+ {2}retry-1 /m);
    expect(text.stdout).toMatch(/^ {2}what comes next\n {4}.*retry-2 /m);
  });

  it('an unknown lifecycle exits 1; an id that is not a lifecycle exits 2', async () => {
    const unknown = await billops('preview', 'dunning-no-such-tenant');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no workflow dunning-no-such-tenant/);
    const notDunning = await billops('preview', 'incident-refund-x');
    expect(notDunning.code).toBe(2);
  });
});
