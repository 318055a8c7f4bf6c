// The webhooks benchmark's options, goals and fixed settings, and where its processes run (CPU placement).
import { allowedCpus, cpuList } from './cpus';
import { BenchUsageError, parseNumberOptions } from './options';

export const GOALS = { ingressOverBare: 0.9, addedP99Ms: 5 } as const;

/** The CPUs this process may run on, read once. */
export const ALLOWED_CPUS = allowedCpus();

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

export const NAMESPACE = 'default';
export const TASK_QUEUE = 'billops-bench-webhooks';
export const STRIPE_SECRET = 'whsec_billops_bench_webhooks';
export const PORTAL_URL = 'https://billing.bench.example/portal';

export type Options = Record<keyof typeof OPTIONS, number>;

/** The options `argv` asks for; a bad one throws BenchUsageError. */
export const readOptions = (argv: string[]): Options => parseNumberOptions(argv, OPTIONS);

/** The CPUs the dev server runs on alone, and those this process and the private cluster run on. */
export interface Placement {
  temporal: number[];
  others: number[];
}

/** The dev server gets the first `n` of this process's CPUs, everything else the rest; null for `n` = 0. */
export function placeCpus(n: number, allowed: number[]): Placement | null {
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
