// Usage rollup rules: hour-aligned windows and backfill chunks, the runbook's rerun schedule, and the job states status queries report.
import { z } from 'zod';
import type { Policy } from './policy';

import { HOUR_MS } from './vocabulary';

export { HOUR_MS };

/** A half-open time range [from, to), both ISO-8601 UTC. */
export interface TimeWindow {
  from: string;
  to: string;
}

/** The slice of the policy a rollup or backfill snapshots into its input. */
export type RollupPolicy = Pick<Policy, 'version' | 'apiRetry' | 'usageAggregationRetry'>;

export function rollupPolicyOf(policy: Policy): RollupPolicy {
  return {
    version: policy.version,
    apiRetry: policy.apiRetry,
    usageAggregationRetry: policy.usageAggregationRetry,
  };
}

export class RollupWindowError extends Error {
  override name = 'RollupWindowError';
}

export const isHourAligned = (ms: number): boolean => Number.isFinite(ms) && ms % HOUR_MS === 0;

const toMs = (at: string | number): number => (typeof at === 'number' ? at : Date.parse(at));
const iso = (ms: number): string => new Date(ms).toISOString();

/** A window rollups can be computed over: both ends on the hour, at least one hour long. */
export function hourWindow(from: string | number, to: string | number): TimeWindow {
  const [start, end] = [toMs(from), toMs(to)];
  if (!isHourAligned(start) || !isHourAligned(end)) {
    throw new RollupWindowError(`window ${String(from)}..${String(to)} does not start and end on the hour`);
  }
  if (end <= start) throw new RollupWindowError(`window ${String(from)}..${String(to)} is empty`);
  return { from: iso(start), to: iso(end) };
}

/** The whole hours covering [from, to): an hour's rollup is only right when computed over all of it. */
export function wholeHours(from: string | number, to: string | number): TimeWindow {
  const [start, end] = [toMs(from), toMs(to)];
  if (!Number.isFinite(start) || !Number.isFinite(end) || end <= start) {
    throw new RollupWindowError(`range ${String(from)}..${String(to)} is empty or not a time`);
  }
  return hourWindow(Math.floor(start / HOUR_MS) * HOUR_MS, Math.ceil(end / HOUR_MS) * HOUR_MS);
}

/** The `hours` whole hours before the hour `at` falls in: what a scheduled run rolls up. */
export function previousHours(at: string | number, hours: number): TimeWindow {
  const hourStart = Math.floor(toMs(at) / HOUR_MS) * HOUR_MS;
  return hourWindow(hourStart - hours * HOUR_MS, hourStart);
}

/** Consecutive windows of `chunkHours` covering the range; the last one may be shorter. */
export function chunkWindows(range: TimeWindow, chunkHours: number): TimeWindow[] {
  if (!Number.isInteger(chunkHours) || chunkHours <= 0) {
    throw new RollupWindowError(`chunkHours must be a positive whole number, not ${chunkHours}`);
  }
  const { from, to } = hourWindow(range.from, range.to);
  const end = Date.parse(to);
  const chunks: TimeWindow[] = [];
  for (let start = Date.parse(from); start < end; start += chunkHours * HOUR_MS) {
    chunks.push({ from: iso(start), to: iso(Math.min(start + chunkHours * HOUR_MS, end)) });
  }
  return chunks;
}

/** Whole percent done, 100 only when everything is. */
export function percentDone(done: number, total: number): number {
  if (total <= 0 || done >= total) return 100;
  return Math.floor((Math.max(0, done) * 100) / total);
}

/** "Rerun failed jobs every 2 hours for 48 hours": hours after the first attempt at which each attempt starts. */
export function attemptOffsetsHours(retry: Policy['usageAggregationRetry']): number[] {
  const offsets: number[] = [];
  for (let at = 0; at <= retry.forHours; at += retry.everyHours) offsets.push(at);
  return offsets;
}

// ---- Hourly rollup job ----

export interface UsageRollupInput {
  /** Hours to roll up; left out, the `lookbackHours` before the scheduled time's hour. */
  window?: TimeWindow;
  lookbackHours: number;
  /** Only these tenants; left out, every tenant. */
  tenants?: string[];
  policy: RollupPolicy;
  /** When set, each successful run hands the tenants with caps to their overage enforcement for the month. */
  overage?: { policy: Policy; measureEveryMinutes: number };
}

export type RollupAttemptStatus = 'running' | 'succeeded' | 'failed';

export interface RollupAttempt {
  attempt: number;
  runId: number;
  /** ISO-8601, workflow time. */
  startedAt: string;
  status: RollupAttemptStatus;
  eventsProcessed?: number;
  error?: string;
}

export interface RollupStatus {
  window: TimeWindow;
  tenants: string[] | 'all';
  state: 'running' | 'waiting_to_rerun' | 'succeeded' | 'failed';
  attempts: RollupAttempt[];
  /** ISO-8601 of the next rerun while one is due, else null. */
  nextRerunAt: string | null;
  policyVersion: string;
}

export function newRollupStatus(input: UsageRollupInput, window: TimeWindow): RollupStatus {
  return {
    window,
    tenants: input.tenants ?? 'all',
    state: 'running',
    attempts: [],
    nextRerunAt: null,
    policyVersion: input.policy.version,
  };
}

export function describeRollup(status: RollupStatus): string {
  const last = status.attempts.at(-1);
  const tried = last ? `attempt ${last.attempt} ${last.status}` : 'not started';
  const next = status.nextRerunAt ? `; next rerun ${status.nextRerunAt}` : '';
  return `Usage rollup ${status.window.from}..${status.window.to}: ${status.state} (${tried}${next})`;
}

// ---- Backfill ----

const instant = z
  .string()
  .datetime({ offset: true })
  .refine((s) => Number.isFinite(Date.parse(s)), 'must be an ISO-8601 time');

/** What an operator asks for; validated at the edges (CLI, client), trusted by the workflow. */
export const backfillRequestSchema = z
  .object({
    from: instant,
    to: instant,
    tenants: z.array(z.string().min(1)).min(1).optional(),
    chunkHours: z.number().int().positive(),
    /** Chunks per activity call: how often the workflow, and so the status query, learns the progress. */
    chunksPerCall: z.number().int().positive().optional(),
  })
  .strict()
  .refine((r) => Date.parse(r.to) > Date.parse(r.from), { message: 'to must be after from', path: ['to'] });
export type BackfillRequest = z.input<typeof backfillRequestSchema>;

export const DEFAULT_CHUNKS_PER_CALL = 24;

export interface UsageBackfillInput {
  from: string;
  to: string;
  tenants?: string[];
  chunkHours: number;
  chunksPerCall?: number;
  policy: RollupPolicy;
  /** Carried across continue-as-new. */
  carried?: { chunksDone: number; eventsProcessed: number; runId: number; resumes: BackfillResume[] };
}

/** A call that picked up from its previous attempt's heartbeat instead of its first chunk. */
export interface BackfillResume {
  chunk: number;
  attempt: number;
}

/** The backfill activity's heartbeat: enough to resume after a worker crash, and progress for `describe`. */
export interface BackfillHeartbeat {
  nextChunkStart: string | null;
  chunksDone: number;
  chunksTotal: number;
  eventsProcessed: number;
}

export interface BackfillStatus {
  state: 'running' | 'succeeded' | 'failed';
  window: TimeWindow;
  tenants: string[] | 'all';
  chunkHours: number;
  chunksTotal: number;
  chunksDone: number;
  percent: number;
  eventsProcessed: number;
  nextChunkStart: string | null;
  resumes: BackfillResume[];
  runId: number | null;
  error?: string;
}

export function newBackfillStatus(input: UsageBackfillInput, chunks: TimeWindow[]): BackfillStatus {
  const status: BackfillStatus = {
    state: 'running',
    window: { from: chunks[0]?.from ?? input.from, to: chunks.at(-1)?.to ?? input.to },
    tenants: input.tenants ?? 'all',
    chunkHours: input.chunkHours,
    chunksTotal: chunks.length,
    chunksDone: 0,
    percent: 0,
    eventsProcessed: 0,
    nextChunkStart: null,
    resumes: [...(input.carried?.resumes ?? [])],
    runId: input.carried?.runId ?? null,
  };
  recordBackfillProgress(status, chunks, input.carried ?? { chunksDone: 0, eventsProcessed: 0 });
  return status;
}

export function recordBackfillProgress(
  status: BackfillStatus,
  chunks: TimeWindow[],
  progress: { chunksDone: number; eventsProcessed: number },
): void {
  status.chunksDone = progress.chunksDone;
  status.eventsProcessed = progress.eventsProcessed;
  status.percent = percentDone(progress.chunksDone, status.chunksTotal);
  status.nextChunkStart = chunks[progress.chunksDone]?.from ?? null;
}

export function describeBackfill(status: BackfillStatus): string {
  return (
    `Usage backfill ${status.window.from}..${status.window.to}: ${status.state}, ` +
    `${status.chunksDone}/${status.chunksTotal} chunks (${status.percent}%), ${status.eventsProcessed} events`
  );
}
