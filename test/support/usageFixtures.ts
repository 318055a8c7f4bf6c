// Usage events for rollup tests, their true hourly totals computed here with integer arithmetic, and the rollups as stored.
import type { Pool } from 'pg';
import type { TimeWindow } from '../../domain/rollups';

const HOUR = 3_600_000;

/** One raw event; quantities are whole thousandths, so every sum is exact. */
export interface TestUsageEvent {
  tenantId: string;
  meter: string;
  milli: bigint;
  occurredAt: number;
  key: string;
}

/** A usage_rollups row as the tests compare it: quantity as PostgreSQL prints a numeric of scale 3. */
export interface RollupRow {
  tenantId: string;
  meter: string;
  hour: string;
  quantity: string;
  eventCount: number;
}

/** A small deterministic generator (mulberry32), so a failing data set can be regenerated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` events spread over the window, plus events on its edges and just outside it. */
export function generateUsageEvents(opts: {
  tenants: string[];
  meters: string[];
  window: TimeWindow;
  count: number;
  seed: number;
}): TestUsageEvent[] {
  const random = seededRandom(opts.seed);
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
  const [from, to] = [Date.parse(opts.window.from), Date.parse(opts.window.to)];
  const events: TestUsageEvent[] = [];
  const add = (tenantId: string, meter: string, occurredAt: number) =>
    events.push({
      tenantId,
      meter,
      milli: BigInt(Math.floor(random() * 100_000)),
      occurredAt,
      key: `ev-${opts.seed}-${events.length}`,
    });
  for (let i = 0; i < opts.count; i++) {
    add(pick(opts.tenants), pick(opts.meters), from + Math.floor(random() * (to - from)));
  }
  for (const tenantId of opts.tenants) {
    // The window is half-open: its first and last millisecond count, the millisecond before and its end do not.
    add(tenantId, opts.meters[0]!, from);
    add(tenantId, opts.meters[0]!, from + HOUR - 1);
    add(tenantId, opts.meters[0]!, to - 1);
    add(tenantId, opts.meters[0]!, from - 1);
    add(tenantId, opts.meters[0]!, to);
  }
  return events;
}

export function formatMilli(milli: bigint): string {
  const sign = milli < 0n ? '-' : '';
  const abs = milli < 0n ? -milli : milli;
  return `${sign}${abs / 1000n}.${(abs % 1000n).toString().padStart(3, '0')}`;
}

export async function insertUsageEvents(pool: Pool, events: TestUsageEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 10_000) {
    const batch = events.slice(i, i + 10_000);
    await pool.query(
      `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key)
       SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::timestamptz[], $5::text[])`,
      [
        batch.map((e) => e.tenantId),
        batch.map((e) => e.meter),
        batch.map((e) => formatMilli(e.milli)),
        batch.map((e) => new Date(e.occurredAt).toISOString()),
        batch.map((e) => e.key),
      ],
    );
  }
}

const rowKey = (r: Pick<RollupRow, 'tenantId' | 'meter' | 'hour'>) => `${r.tenantId}|${r.meter}|${r.hour}`;
const byKey = (a: RollupRow, b: RollupRow) => (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0);

/** The hourly totals the rollups must hold, computed from the events alone. */
export function expectedRollups(
  events: TestUsageEvent[],
  window: TimeWindow,
  tenants: string[],
): RollupRow[] {
  const [from, to] = [Date.parse(window.from), Date.parse(window.to)];
  const totals = new Map<string, RollupRow & { milli: bigint }>();
  for (const e of events) {
    if (e.occurredAt < from || e.occurredAt >= to || !tenants.includes(e.tenantId)) continue;
    const hour = new Date(Math.floor(e.occurredAt / HOUR) * HOUR).toISOString();
    const key = rowKey({ tenantId: e.tenantId, meter: e.meter, hour });
    const row = totals.get(key) ?? {
      tenantId: e.tenantId,
      meter: e.meter,
      hour,
      quantity: '',
      eventCount: 0,
      milli: 0n,
    };
    row.milli += e.milli;
    row.eventCount += 1;
    totals.set(key, row);
  }
  return [...totals.values()]
    .map(({ milli, ...row }) => ({ ...row, quantity: formatMilli(milli) }))
    .sort(byKey);
}

/** Every stored rollup of the tenants. */
export async function readRollups(pool: Pool, tenants: string[]): Promise<RollupRow[]> {
  const { rows } = await pool.query<{
    tenant_id: string;
    meter: string;
    hour: Date;
    quantity: string;
    event_count: number | string;
  }>(
    'SELECT tenant_id, meter, hour, quantity::text AS quantity, event_count FROM usage_rollups WHERE tenant_id = ANY ($1)',
    [tenants],
  );
  return rows
    .map((r) => ({
      tenantId: r.tenant_id,
      meter: r.meter,
      hour: r.hour.toISOString(),
      quantity: r.quantity,
      eventCount: Number(r.event_count),
    }))
    .sort(byKey);
}
