// Usage integrity checks on a real PostgreSQL: ingestion lag per meter and per tenant, and the rollup spot check.
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import {
  createUsageIntegrityActivities,
  ingestionLag,
  spotCheckRollups,
} from '../../../activities/usage/integrity';
import { createPool } from '../../../db/pool';
import { testEnv } from '../../support/testRuntime';

const hex = () => randomBytes(4).toString('hex');
const HOUR_MS = 3_600_000;

let pool: Pool;

beforeAll(() => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
});

afterAll(async () => {
  await pool.end();
});

async function insertTenant(id: string): Promise<string> {
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor)
     VALUES ($1, 'Usage Integrity Ltd', 'pro', 'ops@integrity.test', 'billing@integrity.test', 'USD', 'stripe')`,
    [id],
  );
  return id;
}

/** Raw events straight into the table: [tenant, meter, quantity, occurred_at as ISO-8601 with zone]. */
async function insertEvents(events: [string, string, string, string][]): Promise<void> {
  await pool.query(
    `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key)
     SELECT t, m, q, o, gen_random_uuid()::text
     FROM unnest($1::text[], $2::text[], $3::numeric[], $4::timestamptz[]) AS e(t, m, q, o)`,
    [events.map((e) => e[0]), events.map((e) => e[1]), events.map((e) => e[2]), events.map((e) => e[3])],
  );
}

/** Rollups written by hand: [tenant, meter, hour as ISO-8601, quantity, event count]. */
async function insertRollups(rollups: [string, string, string, string, number][]): Promise<void> {
  await pool.query(
    `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count)
     SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::numeric[], $5::bigint[])`,
    [0, 1, 2, 3, 4].map((i) => rollups.map((r) => r[i])),
  );
}

describe('ingestionLag', () => {
  it('reports the newest event per meter and per tenant and meter, against the database clock', async () => {
    const k = hex();
    const [a, b] = [await insertTenant(`lag-${k}-a`), await insertTenant(`lag-${k}-b`)];
    const [calls, tokens] = [`lag_${k}.calls`, `lag_${k}.tokens`];
    const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
    const [aCallsLast, bCallsLast, aTokensLast] = [ago(30), ago(12), ago(-2)];
    await insertEvents([
      [a, calls, '1', ago(90)],
      [a, calls, '2', aCallsLast],
      [b, calls, '3', ago(45)],
      [b, calls, '4', bCallsLast],
      [a, tokens, '5', ago(300)],
      // Stamped slightly ahead of our clock: a lag of zero, not a negative one.
      [a, tokens, '6', aTokensLast],
    ]);

    const lag = await ingestionLag(pool);

    const asOf = Date.parse(lag.asOf);
    expect(Math.abs(asOf - Date.now())).toBeLessThan(60_000);
    expect(lag.lastReceivedAt).not.toBeNull();
    expect(lag.meters.filter((m) => m.meter.startsWith(`lag_${k}.`))).toEqual([
      { meter: calls, lastOccurredAt: bCallsLast, lagSeconds: expect.any(Number), tenants: 2 },
      { meter: tokens, lastOccurredAt: aTokensLast, lagSeconds: 0, tenants: 1 },
    ]);
    const mine = lag.tenantMeters.filter((t) => t.meter.startsWith(`lag_${k}.`));
    expect(mine.map((t) => [t.meter, t.tenant, t.lastOccurredAt])).toEqual([
      [calls, a, aCallsLast],
      [calls, b, bCallsLast],
      [tokens, a, aTokensLast],
    ]);
    const secondsSince = (iso: string) => (asOf - Date.parse(iso)) / 1000;
    expect(mine[0]?.lagSeconds).toBeCloseTo(secondsSince(aCallsLast), 0);
    expect(mine[1]?.lagSeconds).toBeCloseTo(secondsSince(bCallsLast), 0);
    expect(lag.meters.find((m) => m.meter === calls)?.lagSeconds).toBe(mine[1]?.lagSeconds);

    // The activity answers the same.
    const viaActivity = await createUsageIntegrityActivities({ pool }).usageIngestionLag();
    expect(
      viaActivity.tenantMeters.filter((t) => t.meter.startsWith(`lag_${k}.`)).map((t) => t.lastOccurredAt),
    ).toEqual(mine.map((t) => t.lastOccurredAt));
  });
});

describe('spotCheckRollups', () => {
  const k = hex();
  // A random past day, far from the windows other suites roll up.
  const day = Date.UTC(
    2019 + (parseInt(k, 16) % 4),
    parseInt(k.slice(0, 2), 16) % 12,
    1 + (parseInt(k, 16) % 27),
  );
  const hour = (n: number) => new Date(day + n * HOUR_MS).toISOString();
  const [a, b, c] = [`spot-${k}-a`, `spot-${k}-b`, `spot-${k}-c`];
  const [m1, m2] = [`spot_${k}.calls`, `spot_${k}.tokens`];
  const range = { from: hour(0), to: hour(3) };

  beforeAll(async () => {
    for (const t of [a, b, c]) await insertTenant(t);
    await insertEvents([
      [a, m1, '1.5', hour(0)],
      [a, m1, '2.25', new Date(day + HOUR_MS - 1).toISOString().replace('Z', '999Z')],
      [a, m1, '3', hour(1)],
      // 07:45 at +05:30 is 02:15 UTC: the UTC hour counts, not the sender's.
      [a, m2, '0.001', `${hour(2).slice(0, 11)}07:45:00+05:30`],
      [b, m1, '10', hour(0)],
      [b, m1, '5', hour(2)],
      [c, m1, '1', hour(1)],
      // Outside the range: neither compared nor reported.
      [a, m1, '7', hour(5)],
    ]);
    await insertRollups([
      [a, m1, hour(0), '3.75', 2],
      [a, m1, hour(1), '3', 1],
      [a, m2, hour(2), '0.001', 1],
      [b, m1, hour(0), '10', 1],
      [b, m1, hour(2), '5.000', 1],
      [c, m1, hour(1), '1', 1],
      [a, m1, hour(5), '999', 9],
    ]);
  });

  it('reports no mismatch when the rollups are exactly the raw sums', async () => {
    const result = await spotCheckRollups(pool, { ...range, tenants: [b, a] });
    expect(result).toEqual({
      from: hour(0),
      to: hour(3),
      tenants: [a, b],
      unknownTenants: [],
      checked: [
        { tenant: a, meter: m1, hours: 2 },
        { tenant: a, meter: m2, hours: 1 },
        { tenant: b, meter: m1, hours: 2 },
      ],
      mismatches: [],
    });
    // A range that starts and ends inside hours is widened to the whole hours.
    const widened = await spotCheckRollups(pool, {
      from: new Date(day + 10 * 60_000),
      to: new Date(day + 2 * HOUR_MS + 1),
      tenants: [a],
    });
    expect(widened).toMatchObject({ from: hour(0), to: hour(3), mismatches: [] });
  });

  it('finds an altered rollup, a missing rollup hour and a stray rollup, and only for the tenants checked', async () => {
    await pool.query(
      `UPDATE usage_rollups SET quantity = 3.5 WHERE tenant_id = $1 AND meter = $2 AND hour = $3`,
      [a, m1, hour(1)],
    );
    await pool.query(`DELETE FROM usage_rollups WHERE tenant_id = $1 AND meter = $2 AND hour = $3`, [
      b,
      m1,
      hour(2),
    ]);
    await insertRollups([
      [a, m2, hour(0), '4', 2],
      // Zero over an hour without events is exactly the raw sum of nothing.
      [b, m2, hour(1), '0', 0],
      [c, m2, hour(0), '1', 1],
    ]);

    const result = await spotCheckRollups(pool, { ...range, tenants: [a, b, `ghost-${k}`] });

    expect(result.unknownTenants).toEqual([`ghost-${k}`]);
    expect(result.checked).toEqual([
      { tenant: a, meter: m1, hours: 2 },
      { tenant: a, meter: m2, hours: 2 },
      { tenant: b, meter: m1, hours: 2 },
      { tenant: b, meter: m2, hours: 1 },
    ]);
    expect(result.mismatches).toEqual([
      {
        tenant: a,
        meter: m1,
        hour: hour(1),
        kind: 'different',
        rollupQuantity: '3.5',
        rollupCount: 1,
        rawQuantity: '3',
        rawCount: 1,
      },
      {
        tenant: a,
        meter: m2,
        hour: hour(0),
        kind: 'stray_rollup',
        rollupQuantity: '4',
        rollupCount: 2,
        rawQuantity: '0',
        rawCount: 0,
      },
      {
        tenant: b,
        meter: m1,
        hour: hour(2),
        kind: 'missing_rollup',
        rollupQuantity: null,
        rollupCount: null,
        rawQuantity: '5',
        rawCount: 1,
      },
    ]);

    // The activity gives the same answer; tenant c's stray rollup shows only when c is checked.
    const activities = createUsageIntegrityActivities({ pool });
    expect((await activities.spotCheckUsageRollups({ ...range, tenants: [a, b] })).mismatches).toEqual(
      result.mismatches,
    );
    const onlyC = await spotCheckRollups(pool, { ...range, tenants: [c] });
    expect(onlyC.mismatches.map((m) => [m.tenant, m.kind])).toEqual([[c, 'stray_rollup']]);
  });

  it('draws a random sample from the named tenants, or from the tenants active in the range', async () => {
    const fromNamed = await spotCheckRollups(pool, { ...range, tenants: [a, b, c], sample: 2 });
    expect(fromNamed.tenants).toHaveLength(2);
    expect([a, b, c]).toEqual(expect.arrayContaining(fromNamed.tenants));
    expect(new Set(fromNamed.checked.map((s) => s.tenant)).size).toBeLessThanOrEqual(2);

    const anyActive = await spotCheckRollups(pool, { ...range, sample: 3 });
    expect(anyActive.tenants.length).toBeGreaterThan(0);
    expect(anyActive.tenants.length).toBeLessThanOrEqual(3);
    // Every sampled tenant has events or rollups in the range, so each shows up in checked.
    expect(new Set(anyActive.checked.map((s) => s.tenant))).toEqual(new Set(anyActive.tenants));
  });

  it('refuses a request it cannot answer, as a non-retryable failure', async () => {
    const refusal = (req: Parameters<typeof spotCheckRollups>[1]) =>
      spotCheckRollups(pool, req).then(
        () => undefined,
        (err: unknown) => (err instanceof ApplicationFailure ? [err.type, err.nonRetryable] : err),
      );
    expect(await refusal({ ...range })).toEqual(['InvalidSpotCheckRequest', true]);
    expect(await refusal({ from: hour(2), to: hour(1), tenants: [a] })).toEqual([
      'InvalidSpotCheckRequest',
      true,
    ]);
    expect(await refusal({ from: 'yesterday', to: hour(1), tenants: [a] })).toEqual([
      'InvalidSpotCheckRequest',
      true,
    ]);
    expect(await refusal({ ...range, sample: 0 })).toEqual(['InvalidSpotCheckRequest', true]);
  });
});
