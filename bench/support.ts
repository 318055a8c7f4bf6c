// What every benchmark needs: a scratch database (under DATABASE_URL, else in a private PostgreSQL cluster), memory sampling, options.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { migrate } from '../db/migrate';
import { describeDatabaseUrl } from '../db/pool';
import { startPostgresCluster } from '../runtime/postgresCluster';
import { ChildSupervisor, freePort } from '../runtime/processes';
import { findPostgresBinDir } from '../runtime/tools';

/** A bad option or benchmark name: the dispatcher prints it and exits 2. */
export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

export const progress = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

export const round = (value: number, digits = 3): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

export const mib = (bytes: number): number => round(bytes / 1_048_576, 1);

/** The machine, and its 1-minute load average when the benchmark started and ended (other work skews timings). */
export function machine(loadAtStart: number): Record<string, unknown> {
  return {
    cpus: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    loadAverage1m: { start: round(loadAtStart, 2), end: round(loadavg()[0]!, 2) },
  };
}

/**
 * A pg Client for the benchmark's own sessions. A session the server ends (the cluster stopping, DROP DATABASE …
 * FORCE at cleanup) fails its pending query; without this listener it would also crash the process.
 */
export function benchClient(url: string, applicationName: string): Client {
  const client = new Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  return client;
}

// ---- Options ----

export interface OptionSpec {
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value, if any. */
  max?: number;
  default: number;
}

/** Parses `--name N` / `--name=N` whole-number options (underscores allowed: 10_000_000); anything else is refused. */
export function parseNumberOptions<K extends string>(
  argv: string[],
  specs: Record<K, OptionSpec>,
): Record<K, number> {
  const values = Object.fromEntries(
    Object.entries<OptionSpec>(specs).map(([k, s]) => [k, s.default]),
  ) as Record<K, number>;
  const known = Object.keys(specs).join(', --');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new BenchUsageError(`unexpected argument "${arg}" (options: --${known})`);
    const name = match[1]! as K;
    if (!(name in specs)) throw new BenchUsageError(`unknown option --${name} (options: --${known})`);
    const raw = match[2] ?? argv[++i];
    const value = raw === undefined ? NaN : Number(raw.replace(/_/g, ''));
    const { min, max } = specs[name];
    if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
      const range = max === undefined ? `at least ${min}` : `from ${min} to ${max}`;
      throw new BenchUsageError(`--${name} needs a whole number ${range}, not ${raw ?? 'nothing'}`);
    }
    values[name] = value;
  }
  return values;
}

// ---- Scratch database ----

/** Settings of the private cluster: fast and unsafe (no fsync), sized for a benchmark on a machine with room to spare. */
const PRIVATE_CLUSTER_SETTINGS: Record<string, string> = {
  shared_buffers: '2GB',
  work_mem: '64MB',
  maintenance_work_mem: '1GB',
  max_wal_size: '16GB',
  checkpoint_timeout: '1h',
  wal_level: 'minimal',
  max_wal_senders: '0',
  // Vacuum and analyze run when the benchmark says, never in the middle of a timed step.
  autovacuum: 'off',
};

export interface ScratchDatabase {
  url: string;
  /** Where the database lives, for the JSON line: never a password. */
  description: string;
  serverVersion: string;
  settings: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A new database with every migration applied. With DATABASE_URL it is created on that server and dropped at the
 * end; without, a private cluster is started in a temporary directory (initdb, fsync off) and removed at the end.
 */
export async function openScratchDatabase(name: string): Promise<ScratchDatabase> {
  const cleanups: Array<() => Promise<void> | void> = [];
  // Ctrl-C or a kill: clean up first (stop the cluster, drop the database), then leave. A terminal's Ctrl-C reaches
  // this process twice (from the terminal and relayed by tsx): later signals wait for the cleanup already running.
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    progress(`${signal}: cleaning up`);
    void close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  cleanups.push(() => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  });
  const close = async (): Promise<void> => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        progress(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  try {
    let adminUrl = process.env.DATABASE_URL;
    let where: string;
    if (adminUrl) {
      where = `DATABASE_URL server ${describeDatabaseUrl(adminUrl).replace(/\/.*$/, '')}`;
    } else {
      const cluster = await startPrivateCluster(cleanups);
      adminUrl = cluster.url;
      where = 'private cluster on loopback';
    }
    const database = `${name}_${Date.now()}_${process.pid}`;
    const admin = benchClient(adminUrl, 'billops-bench-admin');
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    cleanups.push(() => dropDatabase(adminUrl, database));
    const url = withDatabase(adminUrl, database);
    progress(`scratch database ${database} on the ${where}; migrating`);
    await migrate(url);
    const { version, settings } = await serverFacts(url);
    return { url, description: where, serverVersion: version, settings, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function startPrivateCluster(cleanups: Array<() => Promise<void> | void>): Promise<{ url: string }> {
  const binDir = findPostgresBinDir();
  if (!binDir) {
    throw new Error(
      'no DATABASE_URL and no PostgreSQL binaries (initdb) found: set DATABASE_URL or run `bash scripts/provision.sh`',
    );
  }
  const workDir = mkdtempSync(join(tmpdir(), 'billops-bench-'));
  // As root the cluster runs as the `postgres` user, which must be able to enter this directory.
  chmodSync(workDir, 0o755);
  const dataDir = join(workDir, 'pg');
  const logFile = join(workDir, 'postgres.log');
  let supervisor = new ChildSupervisor();
  let failed = false;
  // Last resort when the process ends without the orderly cleanup (an uncaught error, a second Ctrl-C).
  const onExit = () => {
    supervisor.killAllNow();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  cleanups.push(() => {
    process.removeListener('exit', onExit);
    if (failed || process.exitCode) tailLog(logFile, 'PostgreSQL');
    rmSync(workDir, { recursive: true, force: true });
  });
  cleanups.push(() => supervisor.stopAll());
  try {
    progress(`starting a private PostgreSQL cluster (${binDir}) in ${workDir}`);
    let cluster = await startPostgresCluster(supervisor, {
      binDir,
      dataDir,
      port: await freePort(),
      logFile,
    });
    const admin = await connectWhenReady(cluster.url);
    try {
      for (const [setting, value] of Object.entries(PRIVATE_CLUSTER_SETTINGS)) {
        await admin.query(`ALTER SYSTEM SET ${setting} = '${value}'`);
      }
    } finally {
      await admin.end();
    }
    // shared_buffers and wal_level take effect at a restart.
    await supervisor.stopAll();
    supervisor = new ChildSupervisor();
    cluster = await startPostgresCluster(supervisor, { binDir, dataDir, port: await freePort(), logFile });
    await (await connectWhenReady(cluster.url)).end();
    return cluster;
  } catch (err) {
    failed = true;
    throw err;
  }
}

/** The port opens before the server accepts sessions ("the database system is starting up"): retry until it does. */
async function connectWhenReady(url: string, timeoutMs = 30_000): Promise<Client> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = benchClient(url, 'billops-bench-admin');
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      const code = (err as { code?: string }).code;
      if (code !== '57P03' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The last lines of a server's log on stderr, to show why it failed; nothing when there is no log. */
export function tailLog(logFile: string, server: string): void {
  if (!existsSync(logFile)) return;
  const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15);
  if (lines.length > 0) progress(`last lines of the ${server} log:\n${lines.join('\n')}`);
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  parsed.searchParams.delete('dbname');
  return parsed.toString();
}

async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const admin = benchClient(adminUrl, 'billops-bench-admin');
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

async function serverFacts(url: string): Promise<{ version: string; settings: Record<string, string> }> {
  const client = benchClient(url, 'billops-bench-admin');
  await client.connect();
  try {
    const names = ['shared_buffers', 'work_mem', 'fsync', 'synchronous_commit', 'jit', 'autovacuum'];
    const { rows } = await client.query<{ name: string; setting: string }>(
      `SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name`,
      [names],
    );
    const version = await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return {
      version: version.rows[0]!.v,
      settings: Object.fromEntries(rows.map((row) => [row.name, row.setting])),
    };
  } finally {
    await client.end();
  }
}

// ---- Memory ----

interface ProcMemory {
  /** Peak resident set (VmHWM): includes the shared buffers the process touched. */
  hwm: number;
  /** Private memory (RssAnon) at the time of the sample. */
  anon: number;
}

function readProcMemory(pid: number): ProcMemory | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.startsWith('postgres')) return undefined;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const [hwm, anon] = [kib('VmHWM'), kib('RssAnon')];
    if (!Number.isFinite(hwm) || !Number.isFinite(anon)) return undefined;
    return { hwm: hwm * 1024, anon: anon * 1024 };
  } catch {
    return undefined;
  }
}

export interface PhaseMemory {
  /** Highest RSS of this Node process sampled during the phase. */
  nodePeakRssMiB: number;
  /** PostgreSQL backends serving the phase, when their /proc entries are readable here; else null. */
  postgresPeakBackendRssMiB: number | null;
  postgresPeakBackendPrivateMiB: number | null;
}

/**
 * Samples this process's RSS and, where PostgreSQL runs on this machine, the memory of the database's backends,
 * every `intervalMs`. Backends are told apart by application_name, so each phase can name the sessions it used.
 */
export class MemorySampler {
  private readonly timer: NodeJS.Timeout;
  private readonly client: Client;
  private phase = 'setup';
  private readonly nodePeak = new Map<string, number>();
  /** Per application_name: highest VmHWM and RssAnon seen. */
  private readonly backendPeak = new Map<string, ProcMemory>();
  private backends: Array<{ pid: number; app: string }> = [];
  private lastListing = 0;
  private listing = false;
  procReadable = false;

  private constructor(
    url: string,
    private readonly intervalMs: number,
  ) {
    this.client = benchClient(url, 'billops-bench-sampler');
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  static async start(url: string, intervalMs = 200): Promise<MemorySampler> {
    const sampler = new MemorySampler(url, intervalMs);
    await sampler.client.connect();
    sampler.sample();
    return sampler;
  }

  /** Samples from now on count towards `name` (and keep counting to the overall peak). */
  enter(name: string): void {
    this.sample();
    this.phase = name;
    this.sample();
  }

  private sample(): void {
    const rss = process.memoryUsage.rss();
    this.nodePeak.set(this.phase, Math.max(this.nodePeak.get(this.phase) ?? 0, rss));
    for (const { pid, app } of this.backends) {
      const mem = readProcMemory(pid);
      if (!mem) continue;
      this.procReadable = true;
      const peak = this.backendPeak.get(app) ?? { hwm: 0, anon: 0 };
      this.backendPeak.set(app, { hwm: Math.max(peak.hwm, mem.hwm), anon: Math.max(peak.anon, mem.anon) });
    }
    if (!this.listing && Date.now() - this.lastListing >= 4 * this.intervalMs) void this.listBackends();
  }

  private async listBackends(): Promise<void> {
    this.listing = true;
    try {
      const { rows } = await this.client.query<{ pid: number; app: string }>(
        `SELECT pid, application_name AS app FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      );
      this.backends = rows;
    } catch {
      // The sampler must never fail the benchmark.
    } finally {
      this.lastListing = Date.now();
      this.listing = false;
    }
  }

  /** Makes sure the sessions now open are known before the phase that uses them runs. */
  async refresh(): Promise<void> {
    while (this.listing) await new Promise((r) => setTimeout(r, 10));
    await this.listBackends();
    this.sample();
  }

  memoryOf(phase: string, apps: string[]): PhaseMemory {
    this.sample();
    const peaks = apps
      .map((app) => this.backendPeak.get(app))
      .filter((p): p is ProcMemory => p !== undefined);
    return {
      nodePeakRssMiB: mib(this.nodePeak.get(phase) ?? 0),
      postgresPeakBackendRssMiB: peaks.length ? mib(Math.max(...peaks.map((p) => p.hwm))) : null,
      postgresPeakBackendPrivateMiB: peaks.length ? mib(Math.max(...peaks.map((p) => p.anon))) : null,
    };
  }

  /** Highest sampled RSS over every phase, and the kernel's own peak (maxRSS) for comparison. */
  nodeOverall(): { sampledPeakRssMiB: number; maxRssMiB: number } {
    this.sample();
    return {
      sampledPeakRssMiB: mib(Math.max(...this.nodePeak.values())),
      maxRssMiB: mib(process.resourceUsage().maxRSS * 1024),
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.client.end().catch(() => undefined);
  }
}

// ---- CPU placement ----

/** The CPUs this process may run on (its affinity mask), from /proc; every CPU the OS reports where /proc has none. */
export function allowedCpus(): number[] {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
    if (list) return parseCpuList(list);
  } catch {
    // Not Linux: fall through.
  }
  return cpus().map((_, i) => i);
}

/** "0-2,5" → [0, 1, 2, 5]. */
function parseCpuList(list: string): number[] {
  return list.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number) as [number, number | undefined];
    return Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i);
  });
}

export const cpuList = (ids: number[]): string => ids.join(',');

/**
 * Moves every thread of a process onto the CPUs `ids` with util-linux's taskset; threads and children it starts
 * afterwards inherit the placement.
 */
export function pinProcess(pid: number, ids: number[]): void {
  const result = spawnSync('taskset', ['-a', '-p', '-c', cpuList(ids), String(pid)], { encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    throw new Error(
      `could not place process ${pid} on CPUs ${cpuList(ids)} with taskset: ` +
        `${result.error?.message ?? result.stderr.trim()}. Install util-linux (it has taskset), or pass ` +
        `--temporal-cpus 0 to let every process use every CPU.`,
    );
  }
}

/** Busy and total jiffies of each CPU since boot, from /proc/stat (idle and iowait count as not busy). */
export function cpuJiffies(): Map<number, { busy: number; total: number }> {
  const times = new Map<number, { busy: number; total: number }>();
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const match = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!match) continue;
      const fields = match[2]!.trim().split(/\s+/).map(Number);
      const total = fields.reduce((n, v) => n + v, 0);
      times.set(Number(match[1]), { busy: total - fields[3]! - (fields[4] ?? 0), total });
    }
  } catch {
    // No /proc/stat: no per-CPU figures.
  }
  return times;
}

/** Percent of the time the CPUs `ids` were busy between two cpuJiffies() samples; null without figures. */
export function busyPercent(
  after: ReturnType<typeof cpuJiffies>,
  before: ReturnType<typeof cpuJiffies>,
  ids: number[],
): number | null {
  let busy = 0;
  let total = 0;
  for (const id of ids) {
    const a = after.get(id);
    const b = before.get(id);
    if (!a || !b) return null;
    busy += a.busy - b.busy;
    total += a.total - b.total;
  }
  return total > 0 ? round((100 * busy) / total, 1) : null;
}
