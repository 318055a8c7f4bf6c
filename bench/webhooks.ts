// Benchmark: signed Stripe invoice.payment_failed deliveries through the HTTP ingress against bare signalWithStart calls on the same Temporal dev server.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { createPool } from '../db/pool';
import type { DunningInput } from '../domain/dunning';
import { defaultPolicy } from '../domain/policy';
import { dunningWorkflowId, startOrJoinDunning } from '../temporal/dunning';
import { buildIngress } from '../ingress/server';
import { FINISH_STATEMENT } from '../db/webhookEvents';
import { ChildSupervisor, freePort } from '../runtime/processes';
import { startTemporalDevServer } from '../runtime/temporalDevServer';
import { MissingToolError, findTemporalCli } from '../runtime/tools';
import { ensureSearchAttributes } from '../temporal/searchAttributes';
import {
  allowedCpus,
  BenchUsageError,
  benchClient,
  busyPercent,
  cpuJiffies,
  cpuList,
  machine,
  openScratchDatabase,
  parseNumberOptions,
  pinProcess,
  progress,
  round,
  tailLog,
  type ScratchDatabase,
} from './support';

export const GOALS = { ingressOverBare: 0.9, addedP99Ms: 5 } as const;

/** The CPUs this process may run on, read once. */
const ALLOWED_CPUS = allowedCpus();

const OPTIONS = {
  // Deliveries per timed run of each side.
  events: { min: 100, default: 500 },
  // Calls in flight in the saturated runs: enough that the dev server has calls queued on either side, so each side's
  // rate is what the server sustains, not the time a call spends outside it (Little's law).
  concurrency: { min: 1, max: 1_000, default: 64 },
  // Rounds of one bare run and one ingress run, in ABBA order: bare first and last. Short runs, many rounds: the dev
  // server slows as its in-memory store grows, and alternating often cancels that out.
  repeat: { min: 1, default: 8 },
  // Untimed deliveries per side first: JIT, keep-alive sockets and pool connections warm.
  warmup: { min: 0, default: 300 },
  // Calls per side in each paced run: the latency at a steady rate, instead of at saturation.
  'paced-events': { min: 100, default: 400 },
  // The paced rate of both sides together, in percent of the bare side's saturated throughput measured just before.
  'paced-load': { min: 5, max: 95, default: 50 },
  // CPUs given to the dev server alone, as a Temporal cluster has hosts of its own: its capacity is then the same for
  // both sides, and the ingress's work cannot take from it what it takes from nothing in a deployment. This process
  // (the load, the ingress, the bare client) and the private PostgreSQL cluster run on the other CPUs. 0: every
  // process shares every CPU.
  'temporal-cpus': { min: 0, default: ALLOWED_CPUS.length >= 2 ? 1 : 0 },
};

export const WEBHOOKS_USAGE =
  'npm run bench -- webhooks [--events N] [--concurrency N] [--repeat N] [--warmup N] [--paced-events N] [--paced-load PERCENT] [--temporal-cpus N]';

const NAMESPACE = 'default';
const TASK_QUEUE = 'billops-bench-webhooks';
const STRIPE_SECRET = 'whsec_billops_bench_webhooks';
const PORTAL_URL = 'https://billing.bench.example/portal';
const AMOUNT_MINOR = 4_900;
const DAY_SECONDS = 86_400;

type Side = 'bare' | 'ingress';

/** A paced run that has this many calls open has fallen behind its rate for good: it stops with a message. */
const MAX_IN_FLIGHT = 512;

/** Time spent in one kind of call, as the ingress makes it. */
interface Meter {
  calls: number;
  ms: number;
}

interface Run {
  side: Side;
  events: number;
  ms: number;
  latencies: Float64Array;
  /** Paced runs: the most calls open at once. */
  maxInFlight?: number;
  /** Paced runs: when each call was sent and answered (performance.now()); a late send counts in its latency. */
  sentAt?: Float64Array;
  doneAt?: Float64Array;
  /** Paced ingress runs: the time each delivery spent outside its own signalWithStart call, from sending to answer. */
  ownMs?: Float64Array;
  /** Ingress runs: PostgreSQL queries and signalWithStart calls made while the run lasted. */
  db?: Queries;
  temporal?: Meter;
  cpu?: Cpu;
}

/** The CPUs the dev server runs on alone, and those this process and the private cluster run on. */
interface Placement {
  temporal: number[];
  others: number[];
}

/** CPU milliseconds spent by this Node process, the Temporal dev server and the scratch database's backends. */
interface Cpu {
  node: number;
  temporal: number;
  /** Null when PostgreSQL runs where /proc cannot see it (DATABASE_URL on another machine). */
  postgres: number | null;
  /** Percent of the time each group of CPUs was busy, whoever ran there. */
  busy: Record<string, number | null>;
  ms: number;
}

/** Runs the benchmark and prints its JSON line on stdout; progress goes to stderr. */
export async function webhooksBench(argv: string[]): Promise<Record<string, unknown>> {
  const opts = parseNumberOptions(argv, OPTIONS);
  const placement = placeCpus(opts['temporal-cpus'], ALLOWED_CPUS);
  const cliPath = findTemporalCli();
  if (!cliPath) {
    throw new MissingToolError(
      'The Temporal CLI (dev server)',
      'Run `bash scripts/provision.sh temporal` (it installs .tools/bin/temporal), or set TEMPORAL_CLI_PATH.',
    );
  }
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const workDir = mkdtempSync(join(tmpdir(), 'billops-bench-webhooks-'));
  const supervisor = new ChildSupervisor();
  // Ctrl-C: openScratchDatabase's handler cleans the database up, then exits; this stops the dev server with it.
  const onExit = () => {
    supervisor.killAllNow();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const temporalLog = join(workDir, 'temporal.log');
  let failed = false;
  // Before anything starts: the private cluster's processes inherit this process's CPUs.
  if (placement) {
    pinProcess(process.pid, placement.others);
    progress(
      `CPUs: the dev server alone on ${cpuList(placement.temporal)}; this process and the private cluster on ` +
        cpuList(placement.others),
    );
  }
  // Started side by side; each is stopped whatever happens to the other.
  const [database, devServer] = await Promise.allSettled([
    openScratchDatabase('billops_bench_webhooks'),
    (async () => {
      progress(`starting a private Temporal dev server (${cliPath}), in memory, headless`);
      return startTemporalDevServer(supervisor, {
        cliPath,
        port: await freePort(),
        logFile: temporalLog,
        namespace: NAMESPACE,
        ...(placement ? { cpus: cpuList(placement.temporal) } : {}),
      });
    })(),
  ]);
  try {
    if (database.status === 'rejected') throw database.reason;
    if (devServer.status === 'rejected') throw devServer.reason;
    const connection = await Connection.connect({ address: devServer.value.address });
    try {
      await ensureSearchAttributes(connection, NAMESPACE);
      const temporalPid = devServer.value.child.process.pid!;
      const groups: Record<string, number[]> = placement
        ? { temporalCpus: placement.temporal, otherCpus: placement.others }
        : { allCpus: ALLOWED_CPUS };
      const result = await measure(database.value, connection, temporalPid, groups, opts);
      const line = {
        bench: 'webhooks',
        ...result,
        goals: GOALS,
        temporal: { server: temporalVersion(cliPath), mode: 'dev server, in memory, no worker' },
        cpus: placement
          ? {
              temporalCpus: cpuList(placement.temporal),
              otherCpus: cpuList(placement.others),
              placement:
                'the dev server alone on temporalCpus; the load, the ingress and the private cluster on otherCpus',
            }
          : { allCpus: cpuList(ALLOWED_CPUS), placement: 'shared: every process on every CPU' },
        database: { where: database.value.description, postgres: database.value.serverVersion },
        machine: machine(loadAtStart),
        totalSeconds: round((Date.now() - started) / 1000, 1),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return line;
    } finally {
      await connection.close();
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await supervisor.stopAll();
    if (failed) tailLog(temporalLog, 'the Temporal dev server');
    process.removeListener('exit', onExit);
    rmSync(workDir, { recursive: true, force: true });
    if (database.status === 'fulfilled') await database.value.close();
    if (placement) {
      // Back on every CPU for whatever runs next in this process (`npm run bench` runs every benchmark in turn).
      try {
        pinProcess(process.pid, ALLOWED_CPUS);
      } catch (err) {
        progress(
          `could not put this process back on CPUs ${cpuList(ALLOWED_CPUS)}: ${(err as Error).message}`,
        );
      }
    }
  }
}

/** The dev server gets the first `n` of this process's CPUs, everything else the rest; null for `n` = 0. */
function placeCpus(n: number, allowed: number[]): Placement | null {
  if (n === 0) return null;
  if (n >= allowed.length) {
    throw new BenchUsageError(
      `--temporal-cpus ${n} leaves no CPU for the ingress, the load and PostgreSQL: this process may run on ` +
        `${allowed.length} (${cpuList(allowed)}). Give the dev server at most ${allowed.length - 1}, or 0 to let ` +
        `every process use every CPU.`,
    );
  }
  return { temporal: allowed.slice(0, n), others: allowed.slice(n) };
}

type Options = Record<keyof typeof OPTIONS, number>;

async function measure(
  db: ScratchDatabase,
  connection: Connection,
  temporalPid: number,
  groups: Record<string, number[]>,
  opts: Options,
) {
  // Run 0 is the warm-up; each run has its own tenants, so every delivery starts a new lifecycle.
  await insertTenants(db.url, opts);
  const cpu = await CpuMeter.start(db.url, temporalPid, groups);

  const bareClient = new Client({ connection, namespace: NAMESPACE });
  const temporal: Meter = { calls: 0, ms: 0 };
  /** How long the ingress's signalWithStart took per workflow id, for the paced runs' own time per delivery. */
  const callMs = new Map<string, number>();
  // A client of its own for the ingress, on the same connection, to time the signalWithStart calls it makes.
  const ingressClient = new Client({
    connection,
    namespace: NAMESPACE,
    interceptors: {
      workflow: [
        {
          async signalWithStart(input, next) {
            const t0 = performance.now();
            try {
              return await next(input);
            } finally {
              const ms = performance.now() - t0;
              temporal.calls += 1;
              temporal.ms += ms;
              callMs.set(input.options.workflowId, ms);
            }
          },
        },
      ],
    },
  });
  // Ctrl-C drops the database under the pool's idle connections: nothing to report then.
  const pool = createPool(db.url, { onIdleError: () => undefined });
  const queries = meterQueries(pool);
  const app = buildIngress({
    client: ingressClient,
    pool,
    webhooks: {
      taskQueue: TASK_QUEUE,
      policy: defaultPolicy,
      billingPortalUrl: PORTAL_URL,
      stripeWebhookSecret: STRIPE_SECRET,
    },
  });
  // Sockets enough for every paced call in flight: a call waiting for a socket would time the benchmark, not the ingress.
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  try {
    const port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    progress(`ingress listening on http://127.0.0.1:${port}; ${opts.concurrency} deliveries at a time`);

    /** A side's calls as thunks: the request (payload, signature) is built outside the timing. */
    const calls: Record<Side, (run: number) => (i: number) => () => Promise<void>> = {
      bare: (run) => (i) => {
        const input = bareInput(run, i);
        return async () => {
          await startOrJoinDunning(bareClient, TASK_QUEUE, input);
        };
      },
      ingress: (run) => (i) => {
        const delivery = stripeDelivery(run, i);
        return () => deliver(agent, port, delivery);
      },
    };
    const meters = async () => ({
      cpu: await cpu.sample(),
      db: { beforeAnswer: { ...queries.beforeAnswer }, afterAnswer: { ...queries.afterAnswer } },
      temporal: { ...temporal },
    });
    /** The ingress's queries and Temporal calls (only the ingress makes them) since `before`. */
    const ingressMeters = (before: Awaited<ReturnType<typeof meters>>) => ({
      db: queriesSince(queries, before.db),
      temporal: since(temporal, before.temporal),
    });
    const report = (label: string, run: Run) => {
      const s = summarise([run]);
      progress(
        `${label} ${run.side}: ${run.events} events in ${(run.ms / 1000).toFixed(2)} s, ` +
          `${s.eventsPerSecond}/s, p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms`,
      );
    };
    // Saturated rounds in ABBA order (bare first and last), so a drift of the machine or of the dev server (its
    // in-memory store grows) weighs on both sides.
    const saturatedRounds = async (): Promise<Run[]> => {
      const runs: Run[] = [];
      for (let r = 1; r <= opts.repeat; r++) {
        const turn: Side[] = r % 2 === 1 ? ['bare', 'ingress'] : ['ingress', 'bare'];
        for (const side of turn) {
          const before = await meters();
          const result = await drive(side, opts.events, opts.concurrency, calls[side](r));
          const run: Run = {
            ...result,
            ...(side === 'ingress' ? ingressMeters(before) : {}),
            cpu: cpu.since(await cpu.sample(), before.cpu),
          };
          runs.push(run);
          report(`saturated run ${r}`, run);
        }
      }
      return runs;
    };
    // Paced rounds interleave the sides call by call, so a stall of the dev server or of the machine meets both alike;
    // which side goes first alternates from round to round.
    const pacedRounds = async (perSecond: number): Promise<Run[]> => {
      const runs: Run[] = [];
      callMs.clear();
      for (let r = 1; r <= opts.repeat; r++) {
        const run = opts.repeat + r;
        const before = await meters();
        const [first, second] = (r % 2 === 1 ? ['bare', 'ingress'] : ['ingress', 'bare']) as [Side, Side];
        const paced = await pace(opts['paced-events'], perSecond, [
          { side: first, prepare: calls[first](run) },
          { side: second, prepare: calls[second](run) },
        ]);
        const used = cpu.since(await cpu.sample(), before.cpu);
        for (const side of paced) {
          const metered: Run = {
            ...side,
            ...(side.side === 'ingress'
              ? { ...ingressMeters(before), ownMs: ownTimes(side, run, callMs) }
              : {}),
            cpu: used,
          };
          runs.push(metered);
          report(`paced run ${r}`, metered);
        }
      }
      return runs;
    };

    if (opts.warmup > 0) {
      progress(`warm-up: ${opts.warmup} events each side, untimed`);
      await drive('bare', opts.warmup, opts.concurrency, calls.bare(0));
      await drive('ingress', opts.warmup, opts.concurrency, calls.ingress(0));
    }
    progress(`saturated: ${opts.concurrency} calls in flight on each side`);
    const saturatedRuns = await saturatedRounds();
    const bare = summarise(saturatedRuns.filter((run) => run.side === 'bare'));
    const ingressRuns = saturatedRuns.filter((run) => run.side === 'ingress');
    const ingress = summarise(ingressRuns);

    const perSecond = Math.max(2, Math.round((bare.eventsPerSecond * opts['paced-load']) / 100));
    progress(
      `paced: ${perSecond} calls a second (${opts['paced-load']} % of the bare throughput), bare and ingress in turn`,
    );
    const gc = GcPauses.observe();
    const pacedRuns = await pacedRounds(perSecond).finally(() => gc.stop());
    const pacedBare = summarise(pacedRuns.filter((run) => run.side === 'bare'));
    const pacedIngressRuns = pacedRuns.filter((run) => run.side === 'ingress');
    const pacedIngress = summarise(pacedIngressRuns);
    const own = distribution(pacedIngressRuns.map((run) => run.ownMs!));
    const pauses = gc.summary(pacedRuns);
    progress(
      `paced ingress own time (delivery less its signalWithStart): p50 ${own.p50Ms} ms, p99 ${own.p99Ms} ms; ` +
        `${pauses.count} GC pauses (p50 ${pauses.p50Ms} ms, max ${pauses.maxMs} ms), ` +
        `in ${pauses.slowestOwnWithPause} of the slowest 1 %`,
    );

    const verified = await verify(db.url, bareClient, opts);
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
      verified,
    };
  } finally {
    await app.close();
    agent.destroy();
    await pool.end();
    await cpu.stop();
  }
}

/**
 * `count` calls, `concurrency` at a time. `prepare` builds a call's request (payload, signature) outside the timing;
 * the latency of a call is from sending it to its answer: for the ingress, an HTTP 2xx read in full.
 */
async function drive(
  side: Side,
  count: number,
  concurrency: number,
  prepare: (i: number) => () => Promise<void>,
): Promise<Run> {
  const latencies = new Float64Array(count);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const call = prepare(i);
        const sent = performance.now();
        await call();
        latencies[i] = performance.now() - sent;
      }
    }),
  );
  return { side, events: count, ms: performance.now() - t0, latencies };
}

/**
 * Open loop over the sides in turn: call i is due `i / perSecond` seconds after the start and goes to side
 * `i % sides.length`; it is sent when due, whatever is still open, and its latency counts from when it was due. A stall
 * thus delays the calls due during it instead of hiding them, as a closed loop would (coordinated omission), and meets
 * every side alike. Each side makes `perSide` calls; one Run per side, in the order given.
 */
async function pace(
  perSide: number,
  perSecond: number,
  sides: { side: Side; prepare: (i: number) => () => Promise<void> }[],
): Promise<Run[]> {
  const latencies = sides.map(() => new Float64Array(perSide));
  const sentAt = sides.map(() => new Float64Array(perSide));
  const doneAt = sides.map(() => new Float64Array(perSide));
  const interval = 1000 / perSecond;
  const open = new Set<Promise<void>>();
  let maxInFlight = 0;
  let failure: unknown;
  const t0 = performance.now();
  for (let n = 0; n < perSide * sides.length && failure === undefined; n++) {
    const s = n % sides.length;
    const i = Math.floor(n / sides.length);
    const call = sides[s]!.prepare(i);
    const due = t0 + n * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (open.size >= MAX_IN_FLIGHT) {
      await Promise.allSettled(open);
      throw new Error(
        `the calls fell behind ${perSecond} a second (${MAX_IN_FLIGHT} open at once): lower --paced-load`,
      );
    }
    sentAt[s]![i] = performance.now();
    const sent: Promise<void> = call().then(
      () => {
        doneAt[s]![i] = performance.now();
        latencies[s]![i] = doneAt[s]![i]! - due;
        open.delete(sent);
      },
      (err: unknown) => {
        failure ??= err;
        open.delete(sent);
      },
    );
    open.add(sent);
    maxInFlight = Math.max(maxInFlight, open.size);
  }
  await Promise.all(open);
  if (failure !== undefined) throw failure;
  const ms = performance.now() - t0;
  return sides.map(({ side }, s) => ({
    side,
    events: perSide,
    ms,
    latencies: latencies[s]!,
    maxInFlight,
    sentAt: sentAt[s]!,
    doneAt: doneAt[s]!,
  }));
}

/**
 * Each delivery's own time: from sending it to reading its answer, less its signalWithStart call as the ingress timed
 * it. What is left is what the ingress adds to the call: HTTP at both ends, the signature, parsing, PostgreSQL, and any
 * pause of this process meanwhile.
 */
function ownTimes(run: Run, runNumber: number, callMs: Map<string, number>): Float64Array {
  const own = new Float64Array(run.events);
  for (let i = 0; i < run.events; i++) {
    const workflowId = dunningWorkflowId(tenantId('ingress', runNumber, i));
    const call = callMs.get(workflowId);
    if (call === undefined) throw new Error(`the ingress made no signalWithStart for ${workflowId}`);
    callMs.delete(workflowId);
    own[i] = run.doneAt![i]! - run.sentAt![i]! - call;
  }
  return own;
}

/**
 * Garbage-collection pauses of this process (the load, the ingress and the bare client share its one thread) while
 * the paced runs last, and how many of the slowest 1 % of deliveries (by own time) had one fall inside them.
 */
class GcPauses {
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

// ---- The two sides' requests ----

const tenantId = (side: Side, run: number, i: number) =>
  `bench-${side === 'bare' ? 'b' : 'w'}${run}-${String(i).padStart(7, '0')}`;

/** The input the ingress would build for a tenant: same tier, processor, policy and invoice shape. */
function bareInput(run: number, i: number): DunningInput {
  const id = tenantId('bare', run, i);
  return {
    tenantId: id,
    tenantName: `Bench tenant ${id}`,
    tier: 'pro',
    processor: 'stripe',
    invoice: { invoiceId: randomUUID(), amountMinor: AMOUNT_MINOR, currency: 'USD' },
    policy: defaultPolicy,
    billingPortalUrl: PORTAL_URL,
  };
}

interface Delivery {
  eventId: string;
  payload: string;
  signature: string;
}

/** A Stripe invoice.payment_failed event for its own tenant and invoice, signed as Stripe signs it. */
function stripeDelivery(run: number, i: number): Delivery {
  const now = Math.floor(Date.now() / 1000);
  const start = now - 30 * DAY_SECONDS;
  const eventId = `evt_bench_${run}_${i}`;
  const payload = JSON.stringify({
    id: eventId,
    object: 'event',
    api_version: '2025-09-30.clover',
    created: now,
    type: 'invoice.payment_failed',
    data: {
      object: {
        id: `in_bench_${run}_${i}`,
        object: 'invoice',
        customer: `cus_bench_${run}_${i}`,
        metadata: { tenant_id: tenantId('ingress', run, i) },
        amount_due: AMOUNT_MINOR,
        amount_paid: 0,
        currency: 'usd',
        status: 'open',
        period_start: start,
        period_end: now,
        lines: { object: 'list', data: [{ period: { start, end: now } }] },
        hosted_invoice_url: 'https://invoice.stripe.test/i/bench',
      },
    },
  });
  const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: STRIPE_SECRET });
  return { eventId, payload, signature };
}

/** POSTs one delivery and fails unless the ingress answers 200 with the lifecycle it started. */
function deliver(agent: Agent, port: number, delivery: Delivery): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/webhooks/stripe',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(delivery.payload),
          'stripe-signature': delivery.signature,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200 && body.includes('"status":"processed"')) return resolve();
          reject(
            new Error(
              `the ingress answered ${res.statusCode} to ${delivery.eventId} instead of 200 processed: ${body}`,
            ),
          );
        });
      },
    );
    req.on('error', reject);
    req.end(delivery.payload);
  });
}

// ---- Setup and checks ----

/** Deliveries per side: the warm-up, the saturated runs and the paced runs. */
const perSide = (opts: Options) => opts.warmup + opts.repeat * (opts.events + opts['paced-events']);

/**
 * One pro tenant on Stripe per ingress delivery, in one statement: run 0 is the warm-up, runs 1..repeat the saturated
 * ones, the next `repeat` runs the paced ones.
 */
async function insertTenants(url: string, opts: Options): Promise<void> {
  const admin = benchClient(url, 'billops-bench-admin');
  await admin.connect();
  try {
    const total = perSide(opts);
    progress(`inserting ${total} tenants`);
    await admin.query(
      `INSERT INTO tenants (id, name, tier, email, billing_email, payment_processor)
       SELECT id, 'Bench tenant ' || id, 'pro', 'ops@' || id || '.bench.example',
              'billing@' || id || '.bench.example', 'stripe'
       FROM (SELECT 'bench-w' || run || '-' || lpad(i::text, 7, '0') AS id
             FROM generate_series(0, 2 * $1::int) AS run,
                  LATERAL generate_series(
                    0, CASE WHEN run = 0 THEN $2::int WHEN run <= $1::int THEN $3::int ELSE $4::int END - 1) AS i) AS ids`,
      [opts.repeat, opts.warmup, opts.events, opts['paced-events']],
    );
    await admin.query('VACUUM ANALYZE tenants');
  } finally {
    await admin.end();
  }
}

/** Every delivery stored as processed, and one running lifecycle per call on either side. */
async function verify(url: string, client: Client, opts: Options) {
  const delivered = perSide(opts);
  const admin = benchClient(url, 'billops-bench-admin');
  await admin.connect();
  let processed: number;
  try {
    // A delivery marks its event processed just after answering: give the last ones a moment.
    processed = await until(
      async () => {
        const { rows } = await admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM webhook_events WHERE provider = 'stripe' AND status = 'processed'`,
        );
        return Number(rows[0]!.n);
      },
      delivered,
      (n) => `${n} webhook events are stored as processed, ${delivered} were delivered`,
    );
  } finally {
    await admin.end();
  }
  const query = `WorkflowType = 'dunningWorkflow' AND ExecutionStatus = 'Running'`;
  const running = await until(
    async () => (await client.workflow.count(query)).count,
    2 * delivered,
    (n) => `${n} dunning lifecycles are running, ${2 * delivered} were started`,
  );
  progress(`verified: ${processed} webhook events processed, ${running} lifecycles running`);
  return { webhookEventsProcessed: processed, workflowsRunning: running };
}

/** Polls `read` until it gives `expected`; after 30 s fails with `problem` of the last value read. */
async function until(
  read: () => Promise<number>,
  expected: number,
  problem: (last: number) => string,
): Promise<number> {
  const deadline = Date.now() + 30_000;
  let last: number;
  while ((last = await read()) !== expected) {
    if (Date.now() > deadline) throw new Error(problem(last));
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

/** A delivery's queries: those before its answer, and the finishing update made after it. */
interface Queries {
  beforeAnswer: Meter;
  afterAnswer: Meter;
}

/** Counts and times the queries made through this pool (time includes waiting for a free connection). */
function meterQueries(pool: Pool): Queries {
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

const queriesSince = (now: Queries, before: Queries): Queries => ({
  beforeAnswer: since(now.beforeAnswer, before.beforeAnswer),
  afterAnswer: since(now.afterAnswer, before.afterAnswer),
});

const since = (now: Meter, before: Meter): Meter => ({
  calls: now.calls - before.calls,
  ms: now.ms - before.ms,
});

// ---- CPU ----

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
class CpuMeter {
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

// ---- Figures ----

function summarise(runs: Run[]) {
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
function distribution(parts: Float64Array[]) {
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

function temporalVersion(cliPath: string): string {
  const out = spawnSync(cliPath, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return out.trim().replace(/^temporal version /, 'temporal CLI ');
}

if (require.main === module) {
  webhooksBench(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
