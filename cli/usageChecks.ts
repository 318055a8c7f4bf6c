// `billops usage runs|lag|spot-check`: the metering-failure runbook's checks, straight from the database: the latest
// rollup runs, the ingestion lag per meter, and rollups against the raw events.
import { parseArgs } from 'node:util';
import type { IngestionLag, SpotCheckResult } from '../activities/usage/integrity';
import type { RollupRun } from '../db/usage';
import { columns, positiveWholeNumber, printJson, UsageError, withDatabase } from './common';
import { edgeError, tenantFlags, timeRange } from './flags';
import { compactTime, count, windowText } from './format';

const DEFAULT_RUNS = 20;

function lagText(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 2 * 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

/** "Verify aggregation job status": the latest rollup_runs rows, hourly runs and backfills alike, newest first. */
export async function usageRuns(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { last: { type: 'string' }, json: { type: 'boolean' } },
  });
  const last = values.last === undefined ? DEFAULT_RUNS : positiveWholeNumber(values.last, '--last');
  const { latestRollupRuns } = await import('../db/usage');
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
      windowText(r.windowStart, r.windowEnd),
      r.status,
      String(r.attempt),
      r.eventsProcessed === null ? '-' : String(r.eventsProcessed),
      compactTime(r.startedAt),
      compactTime(r.finishedAt),
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
    ? `${compactTime(lag.lastReceivedAt)} (${lagText((Date.parse(lag.asOf) - Date.parse(lag.lastReceivedAt)) / 1000)} ago)`
    : 'never';
  console.log(`as of ${compactTime(lag.asOf)}; last event received ${received}`);
  if (lag.meters.length === 0) console.log('no usage events recorded');
  else {
    const rows = lag.meters.map((m) => [
      m.meter,
      compactTime(m.lastOccurredAt),
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
    `spot check ${windowText(r.from, r.to)}: ${count(r.tenants.length, 'tenant')}, ` +
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
    compactTime(m.hour),
    m.kind,
    side(m.rollupQuantity, m.rollupCount),
    side(m.rawQuantity, m.rawCount),
  ]);
  lines.push(...columns([header, ...rows]).map((line) => `  ${line}`));
  return lines;
}
