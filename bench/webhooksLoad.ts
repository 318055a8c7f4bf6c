// How the webhooks benchmark sends its calls: a closed loop at a fixed concurrency, or paced at a fixed rate (open loop).
import { dunningWorkflowId } from '../temporal/dunning';
import { tenantId } from './webhooksRequests';
import type { Run, Side } from './webhooksRun';

/** A paced run that has this many calls open has fallen behind its rate for good: it stops with a message. */
export const MAX_IN_FLIGHT = 512;

/**
 * `count` calls, `concurrency` at a time. `prepare` builds a call's request (payload, signature) outside the timing;
 * the latency of a call is from sending it to its answer: for the ingress, an HTTP 2xx read in full.
 */
export async function drive(
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
export async function pace(
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
export function ownTimes(run: Run, runNumber: number, callMs: Map<string, number>): Float64Array {
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
