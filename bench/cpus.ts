// CPU placement for benchmarks: the CPUs this process may use, pinning a process to some, and how busy each was.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { round } from './support';

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
