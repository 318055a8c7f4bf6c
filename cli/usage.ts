// `billops usage backfill|status|load`: the metering-failure runbook's recomputation by hand: a backfill of a range's
// rollups and its progress, a rollup run's attempts, and bulk loads of usage events.
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import {
  DEFAULT_CHUNKS_PER_CALL,
  chunkWindows,
  describeBackfill,
  wholeHours,
  type BackfillRequest,
  type BackfillStatus,
  type RollupStatus,
} from '../domain/rollups';
import { loadPolicyForConfig } from '../config/load';
import {
  answeredByWorker,
  cliConfig,
  describeWorkflow,
  onePositional,
  positiveWholeNumber,
  printJson,
  RefusedError,
  UsageError,
  withTemporal,
  runningRunId,
} from './common';
import { tenantFlags, timeRange } from './flags';
import { compactTime, count, windowText } from './format';

/** One-hour chunks: one transaction per hour of events, and progress as fine as the range allows. */
const DEFAULT_CHUNK_HOURS = 1;
/** The backfill learns its progress once per activity call: aim for about this many calls, so percent moves. */
const PROGRESS_STEPS = 100;
const POLL_MS = 1_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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
    const joined = (await runningRunId(client, workflowId)) !== undefined;
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
        : `started ${workflowId} (run ${runId}): ${windowText(from, to)}, ${scope}, ${chunks} chunks of ${chunkHours} h`,
    );
    if (!values.wait) {
      console.log(`follow it with: billops usage status ${workflowId}`);
      return 0;
    }
    return followBackfill(client, workflowId);
  });
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
    `  window      ${windowText(s.window.from, s.window.to)}`,
    `  tenants     ${s.tenants === 'all' ? 'all' : s.tenants.join(', ')}`,
    `  next chunk  ${s.nextChunkStart ? compactTime(s.nextChunkStart) : 'none'}`,
    `  resumes     ${resumes.length ? `${resumes.length}: ${resumes.join(', ')}` : 'none'}`,
    `  rollup run  ${s.runId ?? 'not yet recorded'}`,
    ...(s.error ? [`  error       ${s.error}`] : []),
  ];
}

export function rollupView(workflowId: string, execution: string, s: RollupStatus): string[] {
  const attempts = s.attempts.map((a) =>
    [
      `    attempt ${a.attempt}`,
      compactTime(a.startedAt),
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
    `  window      ${windowText(s.window.from, s.window.to)}`,
    `  tenants     ${s.tenants === 'all' ? 'all' : s.tenants.join(', ')}`,
    `  next rerun  ${s.nextRerunAt ? compactTime(s.nextRerunAt) : 'none'}`,
    `  policy      ${s.policyVersion}`,
    `  attempts    ${s.attempts.length || 'none yet'}`,
    ...attempts,
  ];
}

/** The bulk loader (cli/usageLoader.ts): exit 1 when any line was refused. */
export async function usageLoad(args: string[]): Promise<number> {
  const { main } = await import('./usageLoader');
  return main(args);
}
