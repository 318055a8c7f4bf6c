// The webhooks benchmark's figures: throughput, latency percentiles, CPU per event, where a delivery's time goes, GC pauses.
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import { round } from './support';
import { GOALS, type Options } from './webhooksOptions';
import type { Cpu, Meter, Run, Side } from './webhooksRun';

/** What the saturated and paced rounds gave. */
export interface Rounds {
  saturated: Run[];
  paced: Run[];
  /** The paced rate, both sides together. */
  perSecond: number;
  /** Each paced ingress delivery's own time: its latency less its signalWithStart call. */
  own: ReturnType<typeof distribution>;
  pauses: ReturnType<GcPauses['summary']>;
}

/** The JSON line's figures for both sides, saturated and paced, and whether the goals are met. */
export function figures(opts: Options, rounds: Rounds) {
  const { saturated: saturatedRuns, paced: pacedRuns, perSecond, own, pauses } = rounds;
  const bare = summarise(saturatedRuns.filter((run) => run.side === 'bare'));
  const ingressRuns = saturatedRuns.filter((run) => run.side === 'ingress');
  const ingress = summarise(ingressRuns);
  const pacedBare = summarise(pacedRuns.filter((run) => run.side === 'bare'));
  const pacedIngressRuns = pacedRuns.filter((run) => run.side === 'ingress');
  const pacedIngress = summarise(pacedIngressRuns);
  const bareCpu = cpuPerEvent(saturatedRuns.filter((run) => run.side === 'bare'));
  const ingressCpu = cpuPerEvent(ingressRuns);
  const ratios = {
    ingressOverBare: round(ingress.eventsPerSecond / bare.eventsPerSecond),
    // The throughput ratio to expect where the machine's CPU is what limits both sides.
    cpuBareOverIngress: round(bareCpu.total / ingressCpu.total),
  };
  const addedP99Ms = round(pacedIngress.p99Ms - pacedBare.p99Ms, 2);
  return {
    eventsPerRun: opts.events,
    concurrency: opts.concurrency,
    warmupEvents: opts.warmup,
    bare: {
      call: 'client.workflow.signalWithStart (startOrJoinDunning)',
      ...bare,
      cpuMsPerEvent: bareCpu,
      busyPercent: busy(saturatedRuns.filter((run) => run.side === 'bare')),
    },
    ingress: {
      call: 'POST /webhooks/stripe, signed invoice.payment_failed, HTTP/1.1 keep-alive',
      ...ingress,
      cpuMsPerEvent: ingressCpu,
      busyPercent: busy(ingressRuns),
      perEvent: perEvent(ingressRuns, ingress.meanMs),
    },
    ratios,
    saturatedAddedP50Ms: round(ingress.p50Ms - bare.p50Ms, 2),
    saturatedAddedP99Ms: round(ingress.p99Ms - bare.p99Ms, 2),
    paced: {
      perSecond,
      interleaved: true,
      loadPercentOfBare: opts['paced-load'],
      eventsPerSidePerRun: opts['paced-events'],
      // Both sides share each paced run: its CPU figures once per run.
      busyPercent: busy(pacedRuns.filter((run) => run.side === 'bare')),
      bare: { ...latencyOnly(pacedBare), maxInFlight: maxInFlight(pacedRuns, 'bare') },
      ingress: {
        ...latencyOnly(pacedIngress),
        maxInFlight: maxInFlight(pacedRuns, 'ingress'),
        perEvent: perEvent(pacedIngressRuns, pacedIngress.meanMs),
        ownMs: own,
      },
      gcPauses: pauses,
    },
    addedP50Ms: round(pacedIngress.p50Ms - pacedBare.p50Ms, 2),
    addedP99Ms,
    goalsMet: {
      ingressOverBare: ratios.ingressOverBare >= GOALS.ingressOverBare,
      addedP99Ms: addedP99Ms < GOALS.addedP99Ms,
    },
  };
}

function cpuPerEvent(runs: Run[]) {
  const events = runs.reduce((n, run) => n + run.events, 0);
  const total = (pick: (cpu: Cpu) => number | null) => {
    const values = runs.map((run) => pick(run.cpu!));
    return values.some((v) => v === null) ? null : round(values.reduce((n, v) => n! + v!, 0)! / events, 2);
  };
  const node = total((cpu) => cpu.node)!;
  const temporal = total((cpu) => cpu.temporal)!;
  const postgres = total((cpu) => cpu.postgres);
  return { node, temporal, postgres, total: round(node + temporal + (postgres ?? 0), 2) };
}

/** How busy each group of CPUs was over these runs, weighted by their length; null where /proc/stat said nothing. */
function busy(runs: Run[]): Record<string, number | null> {
  const ms = runs.reduce((n, run) => n + run.cpu!.ms, 0);
  const names = Object.keys(runs[0]?.cpu?.busy ?? {});
  return Object.fromEntries(
    names.map((name) => {
      if (runs.some((run) => run.cpu!.busy[name] == null)) return [name, null];
      return [name, round(runs.reduce((n, run) => n + run.cpu!.busy[name]! * run.cpu!.ms, 0) / ms, 1)];
    }),
  );
}

export function summarise(runs: Run[]) {
  const events = runs.reduce((n, run) => n + run.events, 0);
  const ms = runs.reduce((n, run) => n + run.ms, 0);
  return {
    events,
    seconds: round(ms / 1000),
    eventsPerSecond: Math.round(events / (ms / 1000)),
    ...distribution(runs.map((run) => run.latencies)),
    runsEventsPerSecond: runs.map((run) => Math.round(run.events / (run.ms / 1000))),
  };
}

/** Mean, p50, p90, p99 and max of the times in `parts` taken together, in ms. */
export function distribution(parts: Float64Array[]) {
  const all = sortedConcat(parts);
  return {
    meanMs: round(all.reduce((n, v) => n + v, 0) / all.length, 2),
    p50Ms: percentile(all, 0.5),
    p90Ms: percentile(all, 0.9),
    p99Ms: percentile(all, 0.99),
    maxMs: round(all[all.length - 1]!, 2),
  };
}

/** The arrays joined into one, sorted ascending. */
function sortedConcat(parts: Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all.sort();
}

/** The value at or below which a fraction `p` of the sorted values lie (nearest rank), rounded to 0.01. */
const percentile = (sorted: Float64Array, p: number) =>
  round(sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!, 2);

/** The latency figures of a summary, for paced runs (whose throughput is the rate they were given). */
function latencyOnly(s: ReturnType<typeof summarise>) {
  return {
    events: s.events,
    meanMs: s.meanMs,
    p50Ms: s.p50Ms,
    p90Ms: s.p90Ms,
    p99Ms: s.p99Ms,
    maxMs: s.maxMs,
  };
}

const maxInFlight = (runs: Run[], side: Side) =>
  Math.max(...runs.filter((run) => run.side === side).map((run) => run.maxInFlight ?? 0));

/**
 * Where an ingress delivery's time goes before its answer: PostgreSQL, the signalWithStart call, and the rest (HTTP,
 * verify, parse); then the queries made after the answer, which cost CPU but no latency.
 */
function perEvent(runs: Run[], meanMs: number) {
  const events = runs.reduce((n, run) => n + run.events, 0);
  const sum = (pick: (run: Run) => Meter) =>
    runs.reduce((acc, run) => ({ calls: acc.calls + pick(run).calls, ms: acc.ms + pick(run).ms }), {
      calls: 0,
      ms: 0,
    });
  const db = sum((run) => run.db!.beforeAnswer);
  const after = sum((run) => run.db!.afterAnswer);
  const temporal = sum((run) => run.temporal!);
  return {
    dbQueries: round(db.calls / events, 2),
    dbMs: round(db.ms / events, 2),
    signalWithStartMs: round(temporal.ms / events, 2),
    otherMs: round(meanMs - db.ms / events - temporal.ms / events, 2),
    afterAnswer: { dbQueries: round(after.calls / events, 2), dbMs: round(after.ms / events, 2) },
  };
}

/**
 * Garbage-collection pauses of this process (the load, the ingress and the bare client share its one thread) while
 * the paced runs last, and how many of the slowest 1 % of deliveries (by own time) had one fall inside them.
 */
export class GcPauses {
  private readonly entries: PerformanceEntry[] = [];
  private readonly observer = new PerformanceObserver((list) => this.entries.push(...list.getEntries()));
  private readonly from = performance.now();
  private until = Infinity;

  static observe(): GcPauses {
    const pauses = new GcPauses();
    pauses.observer.observe({ entryTypes: ['gc'] });
    return pauses;
  }

  stop(): void {
    this.observer.disconnect();
    this.until = performance.now();
  }

  summary(runs: Run[]) {
    const ms = Float64Array.from(this.entries, (e) => e.duration).sort();
    const total = ms.reduce((n, v) => n + v, 0);
    // The deliveries whose own time is in the top 1 %, and whether a pause overlapped each.
    const deliveries = runs
      .filter((run) => run.side === 'ingress')
      .flatMap((run) =>
        Array.from(run.ownMs!, (own, i) => ({ own, from: run.sentAt![i]!, to: run.doneAt![i]! })),
      )
      .sort((a, b) => b.own - a.own);
    const slowest = deliveries.slice(0, Math.max(1, Math.ceil(deliveries.length / 100)));
    const paused = slowest.filter((d) =>
      this.entries.some((e) => e.startTime < d.to && e.startTime + e.duration > d.from),
    ).length;
    return {
      count: ms.length,
      p50Ms: ms.length > 0 ? percentile(ms, 0.5) : null,
      maxMs: ms.length > 0 ? round(ms[ms.length - 1]!, 2) : null,
      pausedPercent: round((100 * total) / (this.until - this.from), 2),
      slowestOwnWithPause: `${paused} of ${slowest.length}`,
    };
  }
}
