// What the ingress's runs cost, metered while they last: PostgreSQL queries through its pool, and CPU time per process.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Pool } from 'pg';
import { FINISH_STATEMENT } from '../db/webhookEvents';
import { busyPercent, cpuJiffies } from './cpus';
import { benchClient } from './support';
import type { Cpu, Meter, Queries } from './webhooksRun';

/** Counts and times the queries made through this pool (time includes waiting for a free connection). */
export function meterQueries(pool: Pool): Queries {
  const queries: Queries = { beforeAnswer: { calls: 0, ms: 0 }, afterAnswer: { calls: 0, ms: 0 } };
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: typeof query }).query = async (...args) => {
    const config = args[0] as { name?: string };
    const meter = config.name === FINISH_STATEMENT ? queries.afterAnswer : queries.beforeAnswer;
    const t0 = performance.now();
    try {
      return await query(...args);
    } finally {
      meter.calls += 1;
      meter.ms += performance.now() - t0;
    }
  };
  return queries;
}

export const queriesSince = (now: Queries, before: Queries): Queries => ({
  beforeAnswer: since(now.beforeAnswer, before.beforeAnswer),
  afterAnswer: since(now.afterAnswer, before.afterAnswer),
});

export const since = (now: Meter, before: Meter): Meter => ({
  calls: now.calls - before.calls,
  ms: now.ms - before.ms,
});

let clockTicksPerSecond: number | undefined;
/** The kernel's clock ticks per second (/proc counts CPU time in them), asked once, when first needed. */
const clockTicks = () =>
  (clockTicksPerSecond ??=
    Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100);

/** utime + stime of a process (every thread), in ms; undefined once it is gone or unreadable. */
function processCpuMs(pid: number): number | undefined {
  try {
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return undefined;
  }
}

/**
 * Samples CPU time before and after a run: this process, the dev server, and the backends connected to the scratch
 * database (not the cluster's background processes). A backend that appears during a run counts in full. Also how
 * busy each group of CPUs was, whatever ran there.
 */
export class CpuMeter {
  private constructor(
    private readonly admin: ReturnType<typeof benchClient>,
    private readonly temporalPid: number,
    private readonly groups: Record<string, number[]>,
  ) {}

  static async start(url: string, temporalPid: number, groups: Record<string, number[]>): Promise<CpuMeter> {
    const admin = benchClient(url, 'billops-bench-admin');
    await admin.connect();
    return new CpuMeter(admin, temporalPid, groups);
  }

  /** Per backend pid its CPU so far; null when no backend's /proc entry is readable. */
  async sample(): Promise<{
    at: number;
    node: number;
    temporal: number;
    backends: Map<number, number> | null;
    jiffies: ReturnType<typeof cpuJiffies>;
  }> {
    const at = performance.now();
    const jiffies = cpuJiffies();
    const usage = process.cpuUsage();
    const { rows } = await this.admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
    );
    const backends = new Map<number, number>();
    for (const { pid } of rows) {
      const ms = processCpuMs(pid);
      if (ms !== undefined) backends.set(pid, ms);
    }
    return {
      at,
      node: (usage.user + usage.system) / 1000,
      temporal: processCpuMs(this.temporalPid) ?? NaN,
      backends: rows.length > 0 && backends.size === 0 ? null : backends,
      jiffies,
    };
  }

  since(after: Awaited<ReturnType<CpuMeter['sample']>>, before: typeof after): Cpu {
    let postgres: number | null = null;
    if (after.backends && before.backends) {
      postgres = 0;
      for (const [pid, ms] of after.backends) postgres += ms - (before.backends.get(pid) ?? 0);
    }
    const busy = Object.fromEntries(
      Object.entries(this.groups).map(([name, ids]) => [
        name,
        busyPercent(after.jiffies, before.jiffies, ids),
      ]),
    );
    return {
      node: after.node - before.node,
      temporal: after.temporal - before.temporal,
      postgres,
      busy,
      ms: after.at - before.at,
    };
  }

  async stop(): Promise<void> {
    await this.admin.end();
  }
}
