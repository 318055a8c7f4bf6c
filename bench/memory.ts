// Memory of a benchmark's phases: this process's RSS and, where /proc shows them, the PostgreSQL backends it used.
import { readFileSync } from 'node:fs';
import type { Client } from 'pg';
import { benchClient, mib } from './support';

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
