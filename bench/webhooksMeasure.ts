// The webhooks benchmark's timed part: the ingress and the bare client on one dev server, warm-up, saturated and paced rounds.
import { Agent } from 'node:http';
import { Client, type Connection } from '@temporalio/client';
import { createPool } from '../db/pool';
import { defaultPolicy } from '../domain/policy';
import { buildIngress } from '../ingress/server';
import { freePort } from '../runtime/processes';
import { startOrJoinDunning } from '../temporal/dunning';
import type { ScratchDatabase } from './scratchDatabase';
import { progress } from './support';
import { GcPauses, distribution, figures, summarise } from './webhooksFigures';
import { MAX_IN_FLIGHT, drive, ownTimes, pace } from './webhooksLoad';
import { CpuMeter, meterQueries, queriesSince, since } from './webhooksMeters';
import { NAMESPACE, PORTAL_URL, STRIPE_SECRET, TASK_QUEUE, type Options } from './webhooksOptions';
import { bareInput, deliver, stripeDelivery } from './webhooksRequests';
import type { Meter, Run, Side } from './webhooksRun';
import { insertTenants, verify } from './webhooksSetup';

/** Runs every round on a fresh ingress and returns the JSON line's figures, once the runs are verified. */
export async function measure(
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

    const perSecond = Math.max(2, Math.round((bare.eventsPerSecond * opts['paced-load']) / 100));
    progress(
      `paced: ${perSecond} calls a second (${opts['paced-load']} % of the bare throughput), bare and ingress in turn`,
    );
    const gc = GcPauses.observe();
    const pacedRuns = await pacedRounds(perSecond).finally(() => gc.stop());
    const own = distribution(pacedRuns.filter((run) => run.side === 'ingress').map((run) => run.ownMs!));
    const pauses = gc.summary(pacedRuns);
    progress(
      `paced ingress own time (delivery less its signalWithStart): p50 ${own.p50Ms} ms, p99 ${own.p99Ms} ms; ` +
        `${pauses.count} GC pauses (p50 ${pauses.p50Ms} ms, max ${pauses.maxMs} ms), ` +
        `in ${pauses.slowestOwnWithPause} of the slowest 1 %`,
    );

    const verified = await verify(db.url, bareClient, opts);
    return {
      ...figures(opts, { saturated: saturatedRuns, paced: pacedRuns, perSecond, own, pauses }),
      verified,
    };
  } finally {
    await app.close();
    agent.destroy();
    await pool.end();
    await cpu.stop();
  }
}
