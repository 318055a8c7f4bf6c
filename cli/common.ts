// What every CLI command shares: the errors that pick the exit code, flag checks, configuration, Temporal and database access.
import { userInfo } from 'node:os';
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { Pool } from 'pg';
import type { BillopsConfig } from '../config/env';
import { loadConfig } from '../config/load';
import { NAMING_VARIABLES, readRuntimeFile, staleRuntimeMessage, type LocalRuntime } from './localRuntime';

/** Bad arguments or configuration: exit 2, with the command's usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Not found or refused: exit 1, with the message alone. */
export class RefusedError extends Error {
  override name = 'RefusedError';
}

export type CommandRun = (args: string[]) => Promise<number>;

let config: BillopsConfig | undefined;
let runningStart: LocalRuntime | undefined;
let staleStart: { file: string; why: string } | undefined;

/**
 * The configuration from the environment; a bad variable exits 2 with every problem listed (loadConfig). When the
 * environment names no server (neither TEMPORAL_ADDRESS nor DATABASE_URL), a running `npm start`'s runtime file fills
 * in every variable the environment leaves unset; a stale file is remembered, and refused where a server is needed.
 */
export function cliConfig(): BillopsConfig {
  if (config) return config;
  const env = process.env;
  const fromEnv = loadConfig(env);
  if (NAMING_VARIABLES.some((name) => env[name]?.trim())) return (config = fromEnv);
  const found = readRuntimeFile(fromEnv.dataDir);
  if (found.state === 'stale') staleStart = found;
  if (found.state !== 'running') return (config = fromEnv);
  runningStart = found.runtime;
  const merged: Record<string, string | undefined> = { ...found.runtime.env };
  for (const [name, value] of Object.entries(env)) if (value?.trim()) merged[name] = value;
  return (config = loadConfig(merged));
}

/** The running `npm start` the configuration came from (its Web UI, ingress URL, mail folder), if any. */
export function localRuntime(): LocalRuntime | undefined {
  cliConfig();
  return runningStart;
}

/** Refuses (exit 2) when the environment names nothing and the runtime file is left from an `npm start` now gone. */
export function refuseStaleRuntime(): void {
  cliConfig();
  if (staleStart) throw new UsageError(staleRuntimeMessage(staleStart));
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** A whole number as typed (sign allowed): the workflow, not the CLI, judges whether it is acceptable. */
export function wholeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${flag} must be a whole number (got ${JSON.stringify(value)})`);
  }
  return n;
}

export function positiveWholeNumber(value: string, flag: string): number {
  const n = wholeNumber(value, flag);
  if (n <= 0) throw new UsageError(`${flag} must be a positive whole number (got ${JSON.stringify(value)})`);
  return n;
}

export function oneOf<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
): T | undefined {
  if (value === undefined) return undefined;
  const match = allowed.find((a) => a === value.trim().toLowerCase());
  if (!match)
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  return match;
}

/** The one positional argument a command takes, e.g. the workflow id of `status <workflowId>`. */
export function onePositional(positionals: string[], name: string): string {
  const [value, extra] = positionals;
  if (value === undefined) throw new UsageError(`${name} is required`);
  if (extra !== undefined) throw new UsageError(`unexpected argument: ${extra}`);
  return value;
}

/** Who is acting, for the timeline and the audit trail: --operator, else BILLOPS_OPERATOR, else the OS user. */
export function operatorName(flag: string | undefined): string {
  const fromOs = () => {
    try {
      return userInfo().username;
    } catch {
      return process.env.USER; // a container user without a passwd entry
    }
  };
  const name = (flag ?? process.env.BILLOPS_OPERATOR ?? fromOs() ?? '').trim();
  if (!name) throw new UsageError('no operator: pass --operator NAME or set BILLOPS_OPERATOR');
  return name;
}

export function requireDatabaseUrl(): string {
  const { databaseUrl } = cliConfig();
  if (!databaseUrl) {
    refuseStaleRuntime();
    throw new UsageError(
      'DATABASE_URL is not set and no npm start is running here: set DATABASE_URL to a PostgreSQL, ' +
        'or run npm start (the CLI then finds it through its runtime file).',
    );
  }
  return databaseUrl;
}

export async function withDatabase<T>(use: (pool: Pool) => Promise<T>): Promise<T> {
  const { createPool } = await import('../db/pool');
  const pool = createPool(requireDatabaseUrl(), { max: 1 });
  try {
    return await use(pool);
  } finally {
    await pool.end();
  }
}

/** TEMPORAL_ADDRESS (or the running `npm start`'s), else the port `npm start`'s embedded dev server listens on. */
export function temporalAddress(c: BillopsConfig = cliConfig()): string {
  if (c.temporal.address) return c.temporal.address;
  refuseStaleRuntime();
  return `127.0.0.1:${c.embedded.temporalPort}`;
}

export async function withTemporal<T>(use: (client: Client) => Promise<T>): Promise<T> {
  const { connectClient } = await import('../temporal/connection');
  const c = cliConfig();
  const client = await connectClient({ ...c.temporal, address: temporalAddress(c) });
  try {
    return await use(client);
  } finally {
    await client.connection.close();
  }
}

export function notFound(workflowId: string): RefusedError {
  return new RefusedError(`no workflow ${workflowId} in namespace ${cliConfig().temporal.namespace}`);
}

/** The run id of the workflow when it is running; undefined when it is closed or the namespace has none. */
export async function runningRunId(client: Client, workflowId: string): Promise<string | undefined> {
  const { WorkflowNotFoundError } = await import('@temporalio/client');
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    return description.status.name === 'RUNNING' ? description.runId : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

/** The workflow's description, or exit 1 when the namespace has no such workflow. */
export async function describeWorkflow(
  client: Client,
  workflowId: string,
): Promise<{ handle: WorkflowHandle; description: WorkflowExecutionDescription }> {
  const { WorkflowNotFoundError } = await import('@temporalio/client');
  const handle = client.workflow.getHandle(workflowId);
  try {
    return { handle, description: await handle.describe() };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw notFound(workflowId);
    throw err;
  }
}

/** A workflow that can still take signals and updates; a closed one is refused with its final status. */
export async function runningWorkflow(
  client: Client,
  workflowId: string,
): Promise<{ handle: WorkflowHandle; description: WorkflowExecutionDescription }> {
  const found = await describeWorkflow(client, workflowId);
  const status = found.description.status.name;
  if (status !== 'RUNNING') {
    throw new RefusedError(
      `workflow ${workflowId} is ${status.toLowerCase().replace(/_/g, ' ')}, not running`,
    );
  }
  return found;
}

const WORKER_WAIT_MS = 20_000;

/** Queries and updates need a worker: say so plainly instead of hanging when none polls the task queue. */
export async function answeredByWorker<T>(
  client: Client,
  description: WorkflowExecutionDescription,
  request: { what: string; mayStillApply?: boolean },
  call: () => Promise<T>,
): Promise<T> {
  const { isGrpcDeadlineError } = await import('@temporalio/client');
  try {
    return await client.connection.withDeadline(Date.now() + WORKER_WAIT_MS, call);
  } catch (err) {
    if (!isGrpcDeadlineError(err)) throw err;
    const later = request.mayStillApply
      ? `; the request may still take effect when a worker picks it up (check with: billops status ${description.workflowId})`
      : '';
    throw new Error(
      `no worker answered ${request.what} of ${description.workflowId} within ${WORKER_WAIT_MS / 1000} s: ` +
        `is a billops worker polling task queue ${description.taskQueue}?${later}`,
    );
  }
}

/** Two-space columns, padded to the widest cell, for tables a person reads. */
export function columns(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}
