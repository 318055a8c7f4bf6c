// `billops pause|resume|extend-grace`: steer one lifecycle by id, or every lifecycle a visibility filter selects.
import { parseArgs } from 'node:util';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import type { DunningDeadlines, GraceExtension } from '../domain/dunning';
import { formatDuration } from '../domain/dunning';
import { loadPolicyForConfig } from '../config/load';
import { dunningWorkflowId, signalDunningWhere, type MassActionReport } from '../temporal/dunning';
import { INCIDENT_WORKFLOW_TYPES } from '../temporal/incidents';
import {
  extendGraceUpdate,
  incidentStatusQuery,
  pauseSignal,
  resumeSignal,
  type OperatorAction,
} from '../workflows/definitions';
import {
  answeredByWorker,
  cliConfig,
  onePositional,
  operatorName,
  printJson,
  RefusedError,
  required,
  runningWorkflow,
  UsageError,
  wholeNumber,
  withTemporal,
} from './common';
import { HOUR_MS } from '../domain/vocabulary';

const INCIDENT_TYPES = new Set(Object.values(INCIDENT_WORKFLOW_TYPES));

/** The reason the incident refused this signal, once its timeline shows the signal was handled; null if it took. */
async function incidentRefusal(
  handle: WorkflowHandle,
  before: number,
  kind: 'pause' | 'resume',
): Promise<string | null> {
  for (let i = 0; i < 100; i++) {
    const { timeline } = await handle.query(incidentStatusQuery);
    const added = timeline.slice(before);
    const refused = added.find((e) => e.event === 'refused' && e.detail?.startsWith(`${kind}:`));
    if (refused) return refused.detail!.slice(kind.length + 1).trim();
    if (added.some((e) => e.event === (kind === 'pause' ? 'paused' : 'resumed'))) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}

const steeringFlags = {
  where: { type: 'string' },
  operator: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Either one workflow id or `--where FILTER`, never both. */
function target(
  positionals: string[],
  where: string | undefined,
  what: string,
): { id: string } | { where: string } {
  if (where === undefined) return { id: onePositional(positionals, what) };
  if (positionals.length > 0) throw new UsageError(`give ${what} or --where FILTER, not both`);
  if (!where.trim())
    throw new UsageError('--where needs a visibility filter, e.g. "PaymentProcessor = \'stripe\'"');
  return { where };
}

export async function pause(args: string[]): Promise<number> {
  return pauseOrResume('pause', args);
}

export async function resume(args: string[]): Promise<number> {
  return pauseOrResume('resume', args);
}

/** Pausing stops the lifecycle's clock; resuming moves every later deadline by the time spent paused. */
async function pauseOrResume(kind: 'pause' | 'resume', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: steeringFlags,
  });
  const to = target(positionals, values.where, '<workflowId>');
  const action: OperatorAction = { operator: operatorName(values.operator), reason: values.reason };
  return withTemporal(async (client) => {
    if ('where' in to) {
      return reportMassAction(
        await signalDunningWhere(client, to.where, { kind, action }, { onProgress: progressPrinter() }),
        values.json,
      );
    }
    const { handle, description } = await runningWorkflow(client, to.id);
    const isIncident = INCIDENT_TYPES.has(description.type);
    // An incident answers a refused pause or resume in its timeline, never by failing: read the answer back.
    const before = isIncident ? (await handle.query(incidentStatusQuery)).timeline.length : 0;
    await handle.signal(kind === 'pause' ? pauseSignal : resumeSignal, action);
    if (isIncident) {
      const refusal = await incidentRefusal(handle, before, kind);
      if (refusal) throw new RefusedError(`refused: ${refusal}`);
    }
    const why = action.reason ? ` (reason: ${action.reason})` : '';
    if (values.json) printJson({ workflowId: to.id, signal: kind, ...action });
    else if (kind === 'pause')
      console.log(`paused ${to.id} by ${action.operator}${why}; resume it with: billops resume ${to.id}`);
    else console.log(`resumed ${to.id} by ${action.operator}${why}; deadlines move by the time spent paused`);
    return 0;
  });
}

/** Grace extension: an update for one tenant (the answer is the new deadlines), a batch signal for many. */
export async function extendGrace(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...steeringFlags, days: { type: 'string' }, hours: { type: 'string' } },
  });
  const to = target(positionals, values.where, '<tenantId>');
  if (values.days !== undefined && values.hours !== undefined)
    throw new UsageError('give --days or --hours, not both');
  const length =
    values.hours !== undefined
      ? { hours: wholeNumber(values.hours, '--hours') }
      : { days: wholeNumber(required(values.days, '--days N'), '--days') };
  const extension: GraceExtension = {
    ...length,
    reason: required(values.reason, '--reason TEXT'),
    operator: operatorName(values.operator),
  };

  if ('where' in to) {
    refuseBeyondPolicy(extension);
    return withTemporal(async (client) =>
      reportMassAction(
        await signalDunningWhere(
          client,
          to.where,
          { kind: 'extendGrace', extension },
          { onProgress: progressPrinter() },
        ),
        values.json,
      ),
    );
  }
  const workflowId = dunningWorkflowId(to.id);
  return withTemporal(async (client) => {
    const { handle, description } = await runningWorkflow(client, workflowId);
    let deadlines: DunningDeadlines;
    try {
      deadlines = await answeredByWorker(
        client,
        description,
        { what: 'the extendGrace update', mayStillApply: true },
        () => handle.executeUpdate(extendGraceUpdate, { args: [extension] }),
      );
    } catch (err) {
      // The workflow's validator (or handler) refused: its message is the reason.
      if (err instanceof WorkflowUpdateFailedError)
        throw new RefusedError(`refused: ${err.cause?.message ?? err.message}`);
      throw err;
    }
    if (values.json) printJson(deadlines);
    else {
      console.log(
        `extended grace of ${workflowId} by ${describeLength(extension)} (by ${extension.operator}: ${extension.reason})`,
      );
      console.log(`grace now ends ${deadlines.graceEndsAt}`);
      console.log(`  warning      ${deadlines.warningAt}`);
      console.log(`  soft limit   ${deadlines.softLimitAt}`);
      console.log(`  hard limit   ${deadlines.hardLimitAt}`);
      console.log(`  suspension   ${deadlines.suspensionAt}`);
      console.log(`  deletion     ${deadlines.deletionAt}`);
    }
    return 0;
  });
}

function describeLength(extension: GraceExtension): string {
  return formatDuration(((extension.days ?? 0) * 24 + (extension.hours ?? 0)) * HOUR_MS);
}

/**
 * A batch signal has no answer, and each lifecycle ignores an extension its validator would refuse; so check the
 * policy's bounds here, where the operator can still be told.
 */
function refuseBeyondPolicy(extension: GraceExtension): void {
  const hours = (extension.days ?? 0) * 24 + (extension.hours ?? 0);
  const maxDays = loadPolicyForConfig(cliConfig()).extendGrace.maxDays;
  if (hours <= 0) throw new RefusedError('refused: the extension must be positive');
  if (hours > maxDays * 24) throw new RefusedError(`refused: the extension may be at most ${maxDays} days`);
}

/** Batch progress on stderr, one line per change, so stdout keeps only the result. */
function progressPrinter(): (done: number, total: number) => void {
  let last = '';
  return (done, total) => {
    const line = `progress: ${done} of ${total}`;
    if (line !== last) console.error(line);
    last = line;
  };
}

/** "reached N of M lifecycles"; exit 1 when the filter selected none or some were not reached. */
function reportMassAction(report: MassActionReport, json: boolean | undefined): number {
  if (json) printJson(report);
  else {
    console.log(`reached ${report.reached} of ${report.selected} lifecycles (batch job ${report.jobId})`);
    if (report.selected === 0) console.log(`no running dunning lifecycle matches: ${report.query}`);
    if (report.failed > 0)
      console.log(`${report.failed} not reached; see: temporal batch describe --job-id ${report.jobId}`);
  }
  return report.selected > 0 && report.failed === 0 ? 0 : 1;
}
