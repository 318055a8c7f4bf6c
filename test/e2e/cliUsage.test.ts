// The usage, invoice and overage commands of the operator CLI as a user runs them: bin/billops in its own process,
// against the shared dev server and PostgreSQL, with a worker in this process on a task queue of its own.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInvoicingActivities } from '../../activities/invoicing';
import type { RollupRun } from '../../db/usage';
import type { IngestionLag, SpotCheckResult } from '../../activities/usage/integrity';
import type { RecalculateInvoicesResult } from '../../activities/invoicing';
import type { BackfillStatus } from '../../domain/rollups';
import type { WorkerDependencies } from '../../workers/dependencies';
import { operatorCli, operatorEnv, runBillops, TEST_OPERATOR } from '../support/billopsCli';
import { insertTenant } from '../support/dunningFixtures';
import { startTestWorker, type TestWorker } from '../support/testWorker';
import {
  expectedRollups,
  formatMilli,
  readRollups,
  seededRandom,
  type TestUsageEvent,
} from '../support/usageFixtures';

const HOUR = 3_600_000;
const HOURS = 6;

describe('billops usage, invoices and overage commands', () => {
  const taskQueue = `cli-usage-${Date.now()}`;
  const k = randomBytes(4).toString('hex');
  // A random past day, far from the windows other suites roll up.
  const day = Date.UTC(
    2010 + (parseInt(k, 16) % 8),
    parseInt(k.slice(0, 2), 16) % 12,
    1 + (parseInt(k, 16) % 27),
  );
  const at = (hours: number) => new Date(day + hours * HOUR).toISOString();
  const window = { from: at(0), to: at(HOURS) };
  const meter = `cliu_${k}.calls`;
  let tenant: string;
  let events: TestUsageEvent[];
  let testWorker: TestWorker;
  let deps: WorkerDependencies;
  let workflowId: string;
  /** The draft usage invoice of the window, generated in the spot-check test. */
  let invoiceId: string;
  /** The usage producer's API key `usage load` sends. */
  let apiKey: string;

  const billops = operatorCli(taskQueue);

  const backfill = () =>
    billops('usage', 'backfill', '--from', window.from, '--to', window.to, '--tenant', tenant, '--wait');
  const spotCheck = (...more: string[]) =>
    billops('usage', 'spot-check', '--from', window.from, '--to', window.to, '--tenant', tenant, ...more);
  const rawEventsInWindow = () =>
    events.filter((e) => e.occurredAt >= Date.parse(window.from) && e.occurredAt < Date.parse(window.to))
      .length;

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    ({ deps } = testWorker);
    tenant = (await insertTenant(deps.pool, 'pro')).id;
    const created = await billops('keys', 'create', '--scope', 'usage:write', '--tenants', tenant, '--json');
    if (created.code !== 0) throw new Error(`billops keys create exited ${created.code}: ${created.stderr}`);
    apiKey = (JSON.parse(created.stdout) as { key: string }).key;
    // A rate makes the meter known (db/usage.ts), so ingestion records it; one minor unit per unit keeps totals plain.
    await deps.pool.query(
      `INSERT INTO rates (meter, tenant_id, effective_from, pricing_model, unit_price_minor, currency)
       VALUES ($1, $2, '2000-01-01T00:00:00Z', 'per_unit', 1, 'USD')`,
      [meter, tenant],
    );
    // Events all through the window, on its edges, and just outside it; whole thousandths, so sums are exact.
    const random = seededRandom(parseInt(k, 16));
    const event = (occurredAt: number): TestUsageEvent => ({
      tenantId: tenant,
      meter,
      milli: BigInt(Math.floor(random() * 1_000_000)),
      occurredAt,
      key: `cliu-${k}-${occurredAt}-${Math.floor(random() * 1e9)}`,
    });
    events = [
      ...Array.from({ length: 60 }, () => event(day + Math.floor(random() * HOURS * HOUR))),
      event(day),
      event(day + HOURS * HOUR - 1),
      event(day - 1),
      event(day + HOURS * HOUR),
    ];
  });

  afterAll(async () => {
    await testWorker?.stop();
  });

  it('loads a usage file, backfills it with --wait to 100%, and the rollups are exact', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'billops-cliu-')), 'usage.ndjson');
    const line = (e: TestUsageEvent) =>
      JSON.stringify({
        tenant_id: e.tenantId,
        meter: e.meter,
        quantity: formatMilli(e.milli),
        timestamp: new Date(e.occurredAt).toISOString(),
        idempotency_key: e.key,
      });
    writeFileSync(file, `${events.map(line).join('\n')}\n`);
    const load = await runBillops(
      ['usage', 'load', file, '--batch-size', '25'],
      operatorEnv(taskQueue, { BILLOPS_OPERATOR: TEST_OPERATOR, BILLOPS_API_KEY: apiKey }),
    );
    expect(load.code).toBe(0);
    expect(load.stdout).toContain(
      `${events.length} events: ${events.length} accepted, 0 duplicates, 0 rejected`,
    );

    const run = await backfill();
    expect(run.code).toBe(0);
    const n = rawEventsInWindow();
    workflowId = /^started (usage-backfill-\S+) \(run /.exec(run.stdout)?.[1] ?? '';
    expect(workflowId).toMatch(/^usage-backfill-/);
    expect(run.stderr).toMatch(/^backfill \d+% \(\d+\/6 chunks, \d+ events\)$/m);
    expect(run.stderr).toContain(`backfill 100% (6/6 chunks, ${n} events)`);
    expect(run.stdout).toContain(`succeeded, 6/6 chunks (100%), ${n} events`);
    expect(await readRollups(deps.pool, [tenant])).toEqual(expectedRollups(events, window, [tenant]));
  });

  it('shows the backfill status, lists its rollup run, and names the meter in the ingestion lag', async () => {
    const [text, json, runsJson, runsText, lag, lagText] = await Promise.all([
      billops('usage', 'status', workflowId),
      billops('usage', 'status', workflowId, '--json'),
      billops('usage', 'runs', '--last', '200', '--json'),
      billops('usage', 'runs', '--last', '200'),
      billops('usage', 'lag', '--json'),
      billops('usage', 'lag'),
    ]);
    const n = rawEventsInWindow();
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ {2}state {7}succeeded$/m);
    expect(text.stdout).toMatch(/^ {2}progress {4}100% \(6\/6 chunks of 1 h\)$/m);
    expect(text.stdout).toMatch(new RegExp(`^ {2}events {6}${n}$`, 'm'));
    expect(text.stdout).toMatch(/^ {2}resumes {5}none$/m);
    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as BackfillStatus & { workflowId: string; kind: string };
    expect(status).toMatchObject({
      workflowId,
      kind: 'backfill',
      state: 'succeeded',
      percent: 100,
      chunksDone: 6,
      chunksTotal: 6,
      eventsProcessed: n,
      tenants: [tenant],
      resumes: [],
    });

    expect(runsJson.code).toBe(0);
    const runs = JSON.parse(runsJson.stdout) as RollupRun[];
    expect(runs).toContainEqual(
      expect.objectContaining({
        id: status.runId,
        workflowId,
        windowStart: window.from,
        windowEnd: window.to,
        status: 'succeeded',
        attempt: 1,
        eventsProcessed: n,
      }),
    );
    expect(runsText.code).toBe(0);
    expect(runsText.stdout).toMatch(
      /^RUN +WINDOW +STATUS +ATTEMPT +EVENTS +STARTED +FINISHED +WORKFLOW +ERROR$/m,
    );
    expect(runsText.stdout).toMatch(
      new RegExp(`^${status.runId} .* succeeded +1 +${n} .* ${workflowId}$`, 'm'),
    );

    expect(lag.code).toBe(0);
    const newest = Math.max(...events.map((e) => e.occurredAt));
    expect((JSON.parse(lag.stdout) as IngestionLag).meters).toContainEqual({
      meter,
      lastOccurredAt: new Date(newest).toISOString(),
      lagSeconds: expect.any(Number),
      tenants: 1,
    });
    expect(lagText.code).toBe(0);
    expect(lagText.stdout).toMatch(/^METER +LAST EVENT +LAG +TENANTS$/m);
    const lastEvent = new Date(newest).toISOString().replace('T', ' ').replace(':00.000Z', 'Z');
    expect(lagText.stdout).toMatch(
      new RegExp(`^${meter.replace('.', '\\.')} +${lastEvent} +\\d+ days +1$`, 'm'),
    );
  });

  it('spot-checks clean (exit 0), then exits 1 listing a rollup altered by hand; a backfill repairs it and recalculation corrects the invoice', async () => {
    const clean = await spotCheck();
    expect(clean).toMatchObject({ code: 0, stderr: '' });
    expect(clean.stdout).toContain('no mismatches');

    const expected = expectedRollups(events, window, [tenant]);
    const altered = expected[2]!;
    await deps.pool.query(
      'UPDATE usage_rollups SET quantity = quantity + 100 WHERE tenant_id = $1 AND meter = $2 AND hour = $3',
      [tenant, meter, altered.hour],
    );
    const [dirty, dirtyJson] = await Promise.all([spotCheck(), spotCheck('--json')]);
    expect(dirty.code).toBe(1);
    expect(dirty.stdout).toContain('1 mismatch:');
    const hour = altered.hour.replace('T', ' ').replace(':00.000Z', 'Z');
    expect(dirty.stdout).toMatch(
      new RegExp(`^ {2}${tenant} +${meter.replace('.', '\\.')} +${hour} +different `, 'm'),
    );
    expect(dirtyJson.code).toBe(1);
    expect((JSON.parse(dirtyJson.stdout) as SpotCheckResult).mismatches).toEqual([
      {
        tenant,
        meter,
        hour: altered.hour,
        kind: 'different',
        rollupQuantity: formatMilli(BigInt(altered.quantity.replace('.', '')) + 100_000n),
        rollupCount: altered.eventCount,
        rawQuantity: altered.quantity,
        rawCount: altered.eventCount,
      },
    ]);

    // Invoiced while the rollup is wrong: 100 units (one minor unit each) too many.
    const invoicing = createInvoicingActivities({ pool: deps.pool });
    const generate = () =>
      invoicing.generateInvoices({
        periodStart: window.from,
        periodEnd: window.to,
        tenants: [tenant],
        idempotencyKey: `cliu-${k}`,
      });
    // Another suite may briefly hold generation for every tenant; wait that out rather than flake.
    let generated = await generate().catch((err: Error) => err);
    for (
      let i = 0;
      i < 50 && generated instanceof Error && /on hold for every tenant/.test(generated.message);
      i++
    ) {
      await new Promise((r) => setTimeout(r, 200));
      generated = await generate().catch((err: Error) => err);
    }
    if (generated instanceof Error) throw generated;
    expect(generated.invoices).toHaveLength(1);
    invoiceId = generated.invoices[0]!.invoiceId;

    // Backfilling again (the earlier run has finished) recomputes the hour from the raw events.
    const again = await backfill();
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`^started ${workflowId} `));
    expect(await readRollups(deps.pool, [tenant])).toEqual(expected);

    const recalc = await billops(
      'invoices',
      'recalculate',
      '--from',
      window.from,
      '--to',
      window.to,
      '--tenant',
      tenant,
    );
    expect(recalc.code).toBe(0);
    expect(recalc.stdout).toMatch(
      new RegExp(`^${invoiceId} +${tenant} +draft +USD \\S+ +USD \\S+ +USD -1\\.00 +updated$`, 'm'),
    );
    const recheck = await billops(
      'invoices',
      'recalculate',
      '--from',
      window.from,
      '--to',
      window.to,
      '--tenant',
      tenant,
      '--json',
    );
    expect(recheck.code).toBe(0);
    const [invoice] = (JSON.parse(recheck.stdout) as RecalculateInvoicesResult).invoices;
    expect(invoice).toMatchObject({ invoiceId, action: 'unchanged', differenceMinor: 0 });
    expect(invoice!.newTotalMinor).toBe(generated.invoices[0]!.totalMinor - 100);
  });

  it('answers bad dates with exit 2 and unknown or closed workflows with exit 1', async () => {
    const [badDate, sameTimes, notOnHour, unknownWorkflow, closedOverage, unknownTenant] = await Promise.all([
      billops('usage', 'backfill', '--from', '2026-02-30', '--to', '2026-03-02'),
      billops('usage', 'backfill', '--from', window.from, '--to', window.from),
      billops('invoices', 'recalculate', '--from', '2026-01-01T00:30:00Z', '--to', '2026-01-02T00:00:00Z'),
      billops('usage', 'status', `usage-backfill-nobody-${k}`),
      billops('overage', 'decide', workflowId, '--decision', 'throttled', '--reason', 'r'),
      billops('usage', 'spot-check', '--from', window.from, '--to', window.to, '--tenant', `nobody-${k}`),
    ]);
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toContain('--from must be an ISO-8601 time');
    expect(badDate.stderr).toContain('usage: billops usage backfill --from ISO --to ISO');
    expect(sameTimes.code).toBe(2);
    expect(sameTimes.stderr).toContain('--to must be after --from');
    expect(notOnHour.code).toBe(2);
    expect(notOnHour.stderr).toContain('must be on the hour');
    expect(unknownWorkflow.code).toBe(1);
    expect(unknownWorkflow.stderr).toBe(
      `billops: no workflow usage-backfill-nobody-${k} in namespace default\n`,
    );
    expect(closedOverage.code).toBe(1);
    expect(closedOverage.stderr).toBe(`billops: workflow ${workflowId} is completed, not running\n`);
    expect(unknownTenant.code).toBe(1);
    expect(unknownTenant.stdout).toContain(`unknown tenants: nobody-${k}`);
  });

  it("holds and releases the tenant's invoice generation", async () => {
    const activeHolds = async () =>
      (
        await deps.pool.query<{ reason: string; held_by: string }>(
          'SELECT reason, held_by FROM billing_holds WHERE tenant_id = $1 AND released_at IS NULL',
          [tenant],
        )
      ).rows;

    const hold = await billops('invoices', 'hold', 'generation', '--tenant', tenant, '--reason', 'r');
    expect(hold).toMatchObject({ code: 0, stderr: '' });
    expect(hold.stdout).toMatch(
      new RegExp(`^held invoice generation for tenant ${tenant}, every meter \\(hold \\d+`),
    );
    expect(await activeHolds()).toEqual([{ reason: 'r', held_by: TEST_OPERATOR }]);

    const release = await billops(
      'invoices',
      'release',
      'generation',
      '--tenant',
      tenant,
      '--reason',
      'validated',
    );
    expect(release).toMatchObject({ code: 0, stderr: '' });
    expect(release.stdout).toMatch(/^released generation hold \d+ on tenant/);
    expect(await activeHolds()).toEqual([]);

    const again = await billops(
      'invoices',
      'release',
      'generation',
      '--tenant',
      tenant,
      '--reason',
      'validated',
    );
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(`no active generation hold on exactly tenant ${tenant}, every meter`);
  });

  it('holds and releases delivery of an undelivered invoice; an unknown invoice exits 1', async () => {
    const held = async () =>
      (
        await deps.pool.query<{ delivery_held: boolean }>(
          'SELECT delivery_held FROM invoices WHERE id = $1',
          [invoiceId],
        )
      ).rows[0]?.delivery_held;
    const hold = await billops(
      'invoices',
      'hold',
      'delivery',
      '--invoice',
      invoiceId,
      '--reason',
      'validating',
    );
    expect(hold).toMatchObject({ code: 0, stderr: '' });
    expect(hold.stdout).toContain(
      `held delivery of 1 invoice: ${invoiceId} (by ${TEST_OPERATOR}: validating)`,
    );
    expect(await held()).toBe(true);

    const [release, unknown] = await Promise.all([
      billops('invoices', 'release', 'delivery', '--tenant', tenant, '--reason', 'validated'),
      billops('invoices', 'hold', 'delivery', '--invoice', `in_nobody_${k}`, '--reason', 'x'),
    ]);
    expect(release).toMatchObject({ code: 0, stderr: '' });
    expect(release.stdout).toContain(`released delivery of 1 invoice: ${invoiceId}`);
    expect(await held()).toBe(false);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toContain(`not changed (unknown, delivered, void or paid): in_nobody_${k}`);
  });
});
