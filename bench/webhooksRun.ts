// What one timed run of the webhooks benchmark records: its side, its latencies, and the queries, calls and CPU it cost.

export type Side = 'bare' | 'ingress';

/** Time spent in one kind of call, as the ingress makes it. */
export interface Meter {
  calls: number;
  ms: number;
}

export interface Run {
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

/** A delivery's queries: those before its answer, and the finishing update made after it. */
export interface Queries {
  beforeAnswer: Meter;
  afterAnswer: Meter;
}

/** CPU milliseconds spent by this Node process, the Temporal dev server and the scratch database's backends. */
export interface Cpu {
  node: number;
  temporal: number;
  /** Null when PostgreSQL runs where /proc cannot see it (DATABASE_URL on another machine). */
  postgres: number | null;
  /** Percent of the time each group of CPUs was busy, whoever ran there. */
  busy: Record<string, number | null>;
  ms: number;
}
