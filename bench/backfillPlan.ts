// The backfill benchmark's options and the plan they make: how many events, tenants and days, chunk sizes, repeats.
import { DEFAULT_CHUNKS_PER_CALL, HOUR_MS, type TimeWindow } from '../domain/rollups';
import { parseNumberOptions } from './options';

/** 30 days of data ending where October 2026 starts; every event falls inside. */
const WINDOW_START = Date.parse('2026-09-01T00:00:00.000Z');
export const METERS = ['api.calls', 'compute.seconds', 'storage.gb_hours', 'egress.gb'];

const OPTIONS = {
  events: { min: 1_000, default: 10_000_000 },
  // Tenant ids are bench-t0000 … bench-t9999.
  tenants: { min: 1, max: 10_000, default: 100 },
  days: { min: 1, max: 3_650, default: 30 },
  'chunk-hours': { min: 1, default: 24 },
  'chunks-per-call': { min: 1, default: DEFAULT_CHUNKS_PER_CALL },
  'naive-events': { min: 100, default: 20_000 },
  repeat: { min: 1, default: 2 },
};

export const BACKFILL_USAGE =
  'npm run bench -- backfill [--events N] [--tenants N] [--days N] [--chunk-hours N] [--chunks-per-call N] [--naive-events N] [--repeat N]';

export interface Plan {
  events: number;
  tenants: number;
  'chunk-hours': number;
  'chunks-per-call': number;
  naiveEvents: number;
  repeat: number;
  window: TimeWindow;
}

/** The plan `argv` asks for; a bad option throws BenchUsageError. */
export function readPlan(argv: string[]): Plan {
  const opts = parseNumberOptions(argv, OPTIONS);
  const naiveEvents = Math.min(opts['naive-events'], opts.events);
  const window: TimeWindow = {
    from: new Date(WINDOW_START).toISOString(),
    to: new Date(WINDOW_START + opts.days * 24 * HOUR_MS).toISOString(),
  };
  return { ...opts, naiveEvents, window };
}
