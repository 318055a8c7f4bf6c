// `billops usage|invoices|overage …`: the metering-failure runbook by hand: backfills and their progress, rollup runs,
// ingestion lag, rollup spot checks, bulk loads, invoice recalculation and holds, and the Enterprise overage decision.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { GenerationHold, RecalculateInvoicesResult } from '../activities/invoicing';
import type { RollupRun } from '../activities/usage/rollups';
import type { IngestionLag, SpotCheckResult } from '../activities/usage/integrity';
import { formatMinorUnits } from '../domain/money';
import {
  DEFAULT_CHUNKS_PER_CALL,
  HOUR_MS,
  chunkWindows,
  describeBackfill,
  wholeHours,
  type BackfillRequest,
  type BackfillStatus,
  type RollupStatus,
} from '../domain/rollups';
import { TENANT_ID_FORMAT } from '../domain/usageEvents';
import type { OverageDecision } from '../workflows/definitions';
import { loadPolicyForConfig } from '../config/load';
import {
  answeredByWorker,
  cliConfig,
  columns,
  describeWorkflow,
  onePositional,
  oneOf,
  operatorName,
  positiveWholeNumber,
  printJson,
  RefusedError,
  required,
  runningWorkflow,
  UsageError,
  withDatabase,
  withTemporal,
} from './common';

/** One-hour chunks: one transaction per hour of events, and progress as fine as the range allows. */
const DEFAULT_CHUNK_HOURS = 1;
/** The backfill learns its progress once per activity call: aim for about this many calls, so percent moves. */
const PROGRESS_STEPS = 100;
const POLL_MS = 1_000;
const DEFAULT_RUNS = 20;
const METER_FORMAT = /^[a-z][a-z0-9_.]{0,63}$/;
const OVERAGE_DECISIONS: readonly OverageDecision['decision'][] = ['no_action', 'throttled', 'blocked'];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------------
// Flags
// ---------------------------------------------------------------------------------------------------------------

const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;

/** An ISO-8601 instant with its zone (Z or ±hh:mm), or a bare date meaning its UTC midnight; as ISO-8601 UTC. */
export function instantFlag(value: string | undefined, flag: string): string {
  const text = required(value, `${flag} ISO`).trim();
  const bad = () =>
    new UsageError(
      `${flag} must be an ISO-8601 time with its zone, e.g. 2026-01-05T00:00:00Z, or a date (got ${JSON.stringify(value)})`,
    );
  const match = ISO_INSTANT.exec(text);
  if (!match) throw bad();
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = match;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  const calendarDay =
    day.getUTCFullYear() === Number(y) &&
    day.getUTCMonth() === Number(mo) - 1 &&
    day.getUTCDate() === Number(d);
  if (!calendarDay || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) throw bad();
  const ms = Date.parse(match[4] === undefined ? `${text}T00:00:00Z` : text);
  if (!Number.isFinite(ms)) throw bad();
  return new Date(ms).toISOString();
}

/** --from and --to, the second strictly later. */
function timeRange(values: { from?: string; to?: string }): { from: string; to: string } {
  const from = instantFlag(values.from, '--from');
  const to = instantFlag(values.to, '--to');
  if (Date.parse(to) <= Date.parse(from))
    throw new UsageError(`--to must be after --from (${from} .. ${to})`);
  return { from, to };
}

function tenantFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !TENANT_ID_FORMAT.test(value)) {
    throw new UsageError(`--tenant must be a tenant id (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Repeated --tenant flags, deduplicated; undefined when none (every tenant). */
function tenantFlags(values: string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  return [...new Set(values.map((v) => tenantFlag(v)!))];
}

function meterFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !METER_FORMAT.test(value)) {
    throw new UsageError(`--meter must be a meter name like api_calls (got ${JSON.stringify(value)})`);
  }
  return value;
}

/**
 * The integrity and invoicing functions refuse a malformed request with a non-retryable ApplicationFailure (they
 * are activities too): a bad request is the operator's arguments (exit 2), anything else is refused (exit 1).
 */
function edgeError(err: unknown, badRequestTypes: string[]): unknown {
  if (!(err instanceof ApplicationFailure)) return err;
  if (err.type && badRequestTypes.includes(err.type)) return new UsageError(err.message);
  return new RefusedError(err.message);
}

/** "2026-10-05 00:00Z", "2026-10-05 00:36:33Z": an instant as an operator reads it, to the second. */
function shortTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')
    .replace(/(\d\d:\d\d):00Z$/, '$1Z');
}

/** "1 tenant", "2 tenants". */
function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}

function window(from: string, to: string): string {
  return `${shortTime(from)} .. ${shortTime(to)}`;
}

function lagText(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 2 * 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

// ---------------------------------------------------------------------------------------------------------------
// usage backfill | status
// ---------------------------------------------------------------------------------------------------------------

/** "backfill 40% (29/72 chunks, 20133 events)". */
export function backfillProgress(status: BackfillStatus): string {
  return `backfill ${status.percent}% (${status.chunksDone}/${status.chunksTotal} chunks, ${status.eventsProcessed} events)`;
}

/**
 * Starts the backfill of the whole hours covering [--from, --to), or joins the one already running for the same
 * range and tenants; with --wait follows it to the end (progress on stderr, the summary on stdout).
 */
export async function usageBackfill(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      'chunk-hours': { type: 'string' },
      wait: { type: 'boolean' },
    },
  });
  const { from, to } = timeRange(values);
  const tenants = tenantFlags(values.tenant);
  const chunkHours =
    values['chunk-hours'] === undefined
      ? DEFAULT_CHUNK_HOURS
      : positiveWholeNumber(values['chunk-hours'], '--chunk-hours');
  const chunks = chunkWindows(wholeHours(from, to), chunkHours).length;
  const request: BackfillRequest = {
    from,
    to,
    ...(tenants ? { tenants } : {}),
    chunkHours,
    chunksPerCall: Math.min(DEFAULT_CHUNKS_PER_CALL, Math.ceil(chunks / PROGRESS_STEPS)),
  };
  const policy = loadPolicyForConfig(cliConfig());

  return withTemporal(async (client) => {
    const { BackfillRequestError, backfillWorkflowId, startBackfill } = await import('../temporal/usage');
    const workflowId = backfillWorkflowId(request);
    const joined = await isRunning(client, workflowId);
    let runId: string;
    try {
      runId = (await startBackfill(client, cliConfig().taskQueue, request, { policy })).firstExecutionRunId;
    } catch (err) {
      if (err instanceof BackfillRequestError) throw new UsageError(err.message);
      throw err;
    }
    const scope = tenants ? count(tenants.length, 'tenant') : 'all tenants';
    console.log(
      joined
        ? `joined ${workflowId} (run ${runId}): the backfill already running for this range and these tenants`
        : `started ${workflowId} (run ${runId}): ${window(from, to)}, ${scope}, ${chunks} chunks of ${chunkHours} h`,
    );
    if (!values.wait) {
      console.log(`follow it with: billops usage status ${workflowId}`);
      return 0;
    }
    return followBackfill(client, workflowId);
  });
}

async function isRunning(client: Client, workflowId: string): Promise<boolean> {
  const { WorkflowNotFoundError } = await import('@temporalio/client');
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Polls the status query every second, printing each new percentage, until the backfill has finished. */
async function followBackfill(client: Client, workflowId: string): Promise<number> {
  const { backfillStatusQuery } = await import('../workflows/definitions');
  const stop = () => {
    console.error(`\nstopped waiting; the backfill goes on: billops usage status ${workflowId}`);
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    let printed = '';
    for (;;) {
      // The latest run: a long backfill continues as new, and its status query carries the progress along.
      const { handle, description } = await describeWorkflow(client, workflowId);
      const status = await answeredByWorker(client, description, { what: 'the status query' }, () =>
        handle.query(backfillStatusQuery),
      );
      const line = backfillProgress(status);
      if (line !== printed) console.error(line);
      printed = line;
      const execution = description.status.name;
      if (status.state !== 'running' || !['RUNNING', 'CONTINUED_AS_NEW'].includes(execution)) {
        console.log(describeBackfill(status));
        if (status.state === 'succeeded') {
          console.log(`rollup run ${status.runId} (billops usage runs lists it)`);
          return 0;
        }
        if (status.error) console.log(`error: ${status.error}`);
        if (status.state === 'running') console.log(`${workflowId} is ${execution.toLowerCase()}`);
        return 1;
      }
      await sleep(POLL_MS);
    }
  } finally {
    process.removeListener('SIGINT', stop);
  }
}

/** A backfill's or a rollup run's status: progress, chunks, events, state, resumes or attempts. */
export async function usageStatus(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { json: { type: 'boolean' } },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  return withTemporal(async (client) => {
    const { backfillStatusQuery, rollupStatusQuery } = await import('../workflows/definitions');
    const { handle, description } = await describeWorkflow(client, workflowId);
    const execution = description.status.name.toLowerCase().replace(/_/g, ' ');
    const ask = { what: 'the status query' };
    if (description.type === 'usageBackfillWorkflow') {
      const status = await answeredByWorker(client, description, ask, () =>
        handle.query(backfillStatusQuery),
      );
      if (values.json) printJson({ workflowId, kind: 'backfill', execution, ...status });
      else for (const line of backfillView(workflowId, execution, status)) console.log(line);
      return 0;
    }
    if (description.type === 'usageRollupWorkflow') {
      const status = await answeredByWorker(client, description, ask, () => handle.query(rollupStatusQuery));
      if (values.json) printJson({ workflowId, kind: 'rollup', execution, ...status });
      else for (const line of rollupView(workflowId, execution, status)) console.log(line);
      return 0;
    }
    throw new RefusedError(
      `${workflowId} is a ${description.type}, not a usage backfill or rollup (try: billops status ${workflowId})`,
    );
  });
}

export function backfillView(workflowId: string, execution: string, s: BackfillStatus): string[] {
  const resumes = s.resumes.map((r) => `chunk ${r.chunk} (attempt ${r.attempt})`);
  return [
    `${workflowId} (usage backfill, ${execution})`,
    `  state       ${s.state}`,
    `  progress    ${s.percent}% (${s.chunksDone}/${s.chunksTotal} chunks of ${s.chunkHours} h)`,
    `  events      ${s.eventsProcessed}`,
    `  window      ${window(s.window.from, s.window.to)}`,
    `  tenants     ${s.tenants === 'all' ? 'all' : s.tenants.join(', ')}`,
    `  next chunk  ${s.nextChunkStart ? shortTime(s.nextChunkStart) : 'none'}`,
    `  resumes     ${resumes.length ? `${resumes.length}: ${resumes.join(', ')}` : 'none'}`,
    `  rollup run  ${s.runId ?? 'not yet recorded'}`,
    ...(s.error ? [`  error       ${s.error}`] : []),
  ];
}

export function rollupView(workflowId: string, execution: string, s: RollupStatus): string[] {
  const attempts = s.attempts.map((a) =>
    [
      `    attempt ${a.attempt}`,
      shortTime(a.startedAt),
      a.status,
      a.eventsProcessed !== undefined && `${a.eventsProcessed} events`,
      `run ${a.runId}`,
      a.error && `error: ${a.error}`,
    ]
      .filter(Boolean)
      .join('  '),
  );
  return [
    `${workflowId} (usage rollup, ${execution})`,
    `  state       ${s.state}`,
    `  window      ${window(s.window.from, s.window.to)}`,
    `  tenants     ${s.tenants === 'all' ? 'all' : s.tenants.join(', ')}`,
    `  next rerun  ${s.nextRerunAt ? shortTime(s.nextRerunAt) : 'none'}`,
    `  policy      ${s.policyVersion}`,
    `  attempts    ${s.attempts.length || 'none yet'}`,
    ...attempts,
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// usage runs | lag | spot-check | load
// ---------------------------------------------------------------------------------------------------------------

/** "Verify aggregation job status": the latest rollup_runs rows, hourly runs and backfills alike, newest first. */
export async function usageRuns(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { last: { type: 'string' }, json: { type: 'boolean' } },
  });
  const last = values.last === undefined ? DEFAULT_RUNS : positiveWholeNumber(values.last, '--last');
  const { latestRollupRuns } = await import('../activities/usage/rollups');
  const runs: RollupRun[] = await withDatabase((pool) => latestRollupRuns(pool, last));
  if (values.json) printJson(runs);
  else if (runs.length === 0) console.log('no rollup runs recorded');
  else {
    const header = [
      'RUN',
      'WINDOW',
      'STATUS',
      'ATTEMPT',
      'EVENTS',
      'STARTED',
      'FINISHED',
      'WORKFLOW',
      'ERROR',
    ];
    const rows = runs.map((r) => [
      String(r.id),
      window(r.windowStart, r.windowEnd),
      r.status,
      String(r.attempt),
      r.eventsProcessed === null ? '-' : String(r.eventsProcessed),
      shortTime(r.startedAt),
      shortTime(r.finishedAt),
      r.workflowId ?? '-',
      r.error?.replace(/\s+/g, ' ') ?? '',
    ]);
    for (const line of columns([header, ...rows])) console.log(line);
  }
  return 0;
}

/** "Check usage_events ingestion (last event timestamp)", per meter over every tenant. */
export async function usageLag(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { json: { type: 'boolean' } } });
  const { ingestionLag } = await import('../activities/usage/integrity');
  const lag: IngestionLag = await withDatabase((pool) => ingestionLag(pool));
  if (values.json) {
    printJson(lag);
    return 0;
  }
  const received = lag.lastReceivedAt
    ? `${shortTime(lag.lastReceivedAt)} (${lagText((Date.parse(lag.asOf) - Date.parse(lag.lastReceivedAt)) / 1000)} ago)`
    : 'never';
  console.log(`as of ${shortTime(lag.asOf)}; last event received ${received}`);
  if (lag.meters.length === 0) console.log('no usage events recorded');
  else {
    const rows = lag.meters.map((m) => [
      m.meter,
      shortTime(m.lastOccurredAt),
      lagText(m.lagSeconds),
      `${m.tenants}`,
    ]);
    for (const line of columns([['METER', 'LAST EVENT', 'LAG', 'TENANTS'], ...rows])) console.log(line);
  }
  return 0;
}

/**
 * "Validate data consistency (spot check known tenants)": rollups against the raw events, hour by hour. Exit 1 when
 * any hour differs or a named tenant does not exist, so a script can gate on it; 0 when clean.
 */
export async function usageSpotCheck(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      sample: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const { from, to } = timeRange(values);
  const tenants = tenantFlags(values.tenant);
  const sample = values.sample === undefined ? undefined : positiveWholeNumber(values.sample, '--sample');
  if (!tenants && sample === undefined)
    throw new UsageError('name the tenants (--tenant ID...) or --sample N');
  const { spotCheckRollups } = await import('../activities/usage/integrity');
  let result: SpotCheckResult;
  try {
    result = await withDatabase((pool) => spotCheckRollups(pool, { from, to, tenants, sample }));
  } catch (err) {
    throw edgeError(err, ['InvalidSpotCheckRequest']);
  }
  if (values.json) printJson(result);
  else for (const line of spotCheckView(result)) console.log(line);
  return result.mismatches.length > 0 || result.unknownTenants.length > 0 ? 1 : 0;
}

export function spotCheckView(r: SpotCheckResult): string[] {
  const hours = r.checked.reduce((sum, c) => sum + c.hours, 0);
  const lines = [
    `spot check ${window(r.from, r.to)}: ${count(r.tenants.length, 'tenant')}, ` +
      `${count(r.checked.length, 'tenant meter')}, ${count(hours, 'hour')} compared`,
  ];
  if (r.unknownTenants.length > 0) lines.push(`unknown tenants: ${r.unknownTenants.join(', ')}`);
  if (r.mismatches.length === 0) {
    if (r.tenants.length > 0) lines.push('no mismatches');
    else if (r.unknownTenants.length === 0) lines.push('nothing to check: no tenant has usage in range');
    return lines;
  }
  lines.push(`${count(r.mismatches.length, 'mismatch', 'mismatches')}:`);
  const side = (quantity: string | null, count: number | null) =>
    quantity === null ? 'none' : `${quantity} (${count} events)`;
  const header = ['TENANT', 'METER', 'HOUR', 'KIND', 'ROLLUP', 'RAW EVENTS'];
  const rows = r.mismatches.map((m) => [
    m.tenant,
    m.meter,
    shortTime(m.hour),
    m.kind,
    side(m.rollupQuantity, m.rollupCount),
    side(m.rawQuantity, m.rawCount),
  ]);
  lines.push(...columns([header, ...rows]).map((line) => `  ${line}`));
  return lines;
}

/** The bulk loader (cli/usageLoader.ts): exit 1 when any line was refused. */
export async function usageLoad(args: string[]): Promise<number> {
  const { main } = await import('./usageLoader');
  return main(args);
}

// ---------------------------------------------------------------------------------------------------------------
// invoices recalculate | hold | release
// ---------------------------------------------------------------------------------------------------------------

function signedAmount(amountMinor: number, currency: string): string {
  const text = formatMinorUnits(amountMinor, currency);
  return amountMinor > 0 ? text.replace(' ', ' +') : text;
}

/**
 * Recomputes the usage invoices of exactly the period [--from, --to) from the rollups as they are now: per invoice
 * the old total, the new total, the difference and the action (updated, needs_adjustment, unchanged).
 */
export async function invoicesRecalculate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
  });
  const { from, to } = timeRange(values);
  if (Date.parse(from) % HOUR_MS !== 0 || Date.parse(to) % HOUR_MS !== 0) {
    throw new UsageError(
      '--from and --to must be on the hour (the invoice period): usage rollups are hourly',
    );
  }
  const tenants = tenantFlags(values.tenant);
  const { createInvoicingActivities } = await import('../activities/invoicing');
  let result: RecalculateInvoicesResult;
  try {
    result = await withDatabase((pool) =>
      createInvoicingActivities({ pool }).recalculateInvoices({ periodStart: from, periodEnd: to, tenants }),
    );
  } catch (err) {
    throw edgeError(err, ['InvalidInvoicingRequest']);
  }
  if (values.json) printJson(result);
  else for (const line of recalculationView(result, from, to)) console.log(line);
  // No invoice with exactly this period: most likely the wrong bounds, so say so with exit 1.
  return result.invoices.length > 0 ? 0 : 1;
}

export function recalculationView(r: RecalculateInvoicesResult, from: string, to: string): string[] {
  if (r.invoices.length === 0) return [`no usage invoice has the period ${window(from, to)}`];
  const header = ['INVOICE', 'TENANT', 'STATUS', 'OLD TOTAL', 'NEW TOTAL', 'DIFFERENCE', 'ACTION'];
  const rows = r.invoices.map((i) => [
    i.invoiceId,
    i.tenantId,
    i.status,
    formatMinorUnits(i.oldTotalMinor, i.currency),
    formatMinorUnits(i.newTotalMinor, i.currency),
    signedAmount(i.differenceMinor, i.currency),
    i.action,
  ]);
  const byAction = (action: string) => r.invoices.filter((i) => i.action === action).length;
  return [
    ...columns([header, ...rows]),
    ...r.skipped.map((s) => `skipped ${s.tenantId} ${s.meter ?? '(every meter)'}: ${s.reason}`),
    `${count(r.invoices.length, 'invoice')}: ${byAction('updated')} updated, ` +
      `${byAction('needs_adjustment')} need a credit or adjustment invoice, ${byAction('unchanged')} unchanged`,
  ];
}

const holdFlags = {
  tenant: { type: 'string' },
  meter: { type: 'string' },
  invoice: { type: 'string', multiple: true },
  reason: { type: 'string' },
  operator: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function invoicesHold(args: string[]): Promise<number> {
  return holdOrRelease('hold', args);
}

export async function invoicesRelease(args: string[]): Promise<number> {
  return holdOrRelease('release', args);
}

/** Billing holds: `generation` (a billing_holds row per tenant and meter scope) or `delivery` (per invoice). */
async function holdOrRelease(kind: 'hold' | 'release', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: holdFlags,
  });
  const target = onePositional(positionals, 'generation or delivery');
  if (target !== 'generation' && target !== 'delivery') {
    throw new UsageError(`${kind} what: generation or delivery (got ${JSON.stringify(target)})`);
  }
  if (target === 'generation' && values.invoice) throw new UsageError('--invoice applies to delivery holds');
  if (target === 'delivery' && values.meter !== undefined)
    throw new UsageError('--meter applies to generation holds');
  const tenantId = tenantFlag(values.tenant);
  const meter = meterFlag(values.meter);
  const invoiceIds = values.invoice?.length ? [...new Set(values.invoice)] : undefined;
  const reason = required(values.reason, '--reason TEXT');
  const operator = operatorName(values.operator);
  const { createInvoicingActivities } = await import('../activities/invoicing');

  return withDatabase(async (pool) => {
    const invoicing = createInvoicingActivities({ pool });
    try {
      if (target === 'generation') {
        const request = { tenantId, meter, reason, operator, idempotencyKey: `cli:${kind}:${randomUUID()}` };
        if (kind === 'hold') return reportHold(await invoicing.holdInvoiceGeneration(request), values.json);
        const { released } = await invoicing.releaseInvoiceGeneration(request);
        return reportRelease(released, { tenantId, meter }, values.json);
      }
      const request = { tenantId, invoiceIds, reason, operator };
      const result =
        kind === 'hold'
          ? await invoicing.holdInvoiceDelivery(request)
          : await invoicing.releaseInvoiceDelivery(request);
      if (values.json) printJson(result);
      else {
        const verb = kind === 'hold' ? 'held' : 'released';
        const ids = result.invoiceIds.length ? `: ${result.invoiceIds.join(', ')}` : '';
        console.log(
          `${verb} delivery of ${count(result.invoiceIds.length, 'invoice')}${ids} (by ${operator}: ${reason})`,
        );
        if (result.invoiceIds.length === 0)
          console.log('no undelivered draft or open invoice matches; later invoices are not held by this');
        if (result.unmatched.length > 0)
          console.log(`not changed (unknown, delivered, void or paid): ${result.unmatched.join(', ')}`);
      }
      return result.invoiceIds.length > 0 && result.unmatched.length === 0 ? 0 : 1;
    } catch (err) {
      throw edgeError(err, ['InvalidInvoicingRequest']);
    }
  });
}

function scopeText(scope: { tenantId?: string | null; meter?: string | null }): string {
  return `${scope.tenantId ? `tenant ${scope.tenantId}` : 'every tenant'}, ${scope.meter ? `meter ${scope.meter}` : 'every meter'}`;
}

function reportHold(hold: GenerationHold, json: boolean | undefined): number {
  if (json) printJson(hold);
  else {
    const flags = [hold.tenantId && `--tenant ${hold.tenantId}`, hold.meter && `--meter ${hold.meter}`]
      .filter(Boolean)
      .join(' ');
    console.log(
      `held invoice generation for ${scopeText(hold)} (hold ${hold.holdId}, by ${hold.heldBy}: ${hold.reason})`,
    );
    console.log(
      `release it with: billops invoices release generation ${flags ? `${flags} ` : ''}--reason TEXT`,
    );
  }
  return 0;
}

/** Exit 1 when no active hold had exactly this scope: nothing was released. */
function reportRelease(
  released: GenerationHold[],
  scope: { tenantId?: string; meter?: string },
  json: boolean | undefined,
): number {
  if (json) printJson({ released });
  else if (released.length === 0) console.log(`no active generation hold on exactly ${scopeText(scope)}`);
  else
    for (const hold of released) {
      console.log(
        `released generation hold ${hold.holdId} on ${scopeText(hold)} (held by ${hold.heldBy}: ${hold.reason}; ` +
          `released by ${hold.releasedBy}: ${hold.releaseReason})`,
      );
    }
  return released.length > 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// overage decide
// ---------------------------------------------------------------------------------------------------------------

/** The Enterprise manual review's decision, refused unless the review is open and undecided (the signal is silent). */
export async function overageDecide(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      decision: { type: 'string' },
      reason: { type: 'string' },
      operator: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  const decision = oneOf(required(values.decision, '--decision'), OVERAGE_DECISIONS, '--decision')!;
  const payload: OverageDecision = {
    decision,
    reason: required(values.reason, '--reason TEXT'),
    operator: operatorName(values.operator),
  };
  return withTemporal(async (client) => {
    const { overageDecisionSignal, overageStatusQuery } = await import('../workflows/definitions');
    const { handle, description } = await runningWorkflow(client, workflowId);
    if (description.type !== 'overageWorkflow') {
      throw new RefusedError(`${workflowId} is a ${description.type}, not an overage workflow`);
    }
    const status = await answeredByWorker(client, description, { what: 'the status query' }, () =>
      handle.query(overageStatusQuery),
    );
    if (!status.review) {
      throw new RefusedError(
        `refused: ${workflowId} has no manual review open (tenant ${status.tenantId}, assessed ${status.assessed})`,
      );
    }
    if (status.review.decidedBy) {
      throw new RefusedError(
        `refused: the review of ${workflowId} was already decided (${status.review.decision} by ${status.review.decidedBy})`,
      );
    }
    await handle.signal(overageDecisionSignal, payload);
    if (values.json) printJson({ workflowId, signal: 'overageDecision', ...payload });
    else
      console.log(
        `sent ${decision} to ${workflowId} (tenant ${status.tenantId}) by ${payload.operator} ` +
          `(reason: ${payload.reason}); check with: billops status ${workflowId}`,
      );
    return 0;
  });
}
