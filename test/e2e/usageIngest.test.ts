// Usage ingestion on a real PostgreSQL: POST /usage/events per-item verdicts, body limits, and the NDJSON/CSV bulk loader.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import { Registry } from 'prom-client';
import { registerUsageRoutes } from '../../ingress/usage';
import { loadUsageFile, main as loaderMain, type UsageLoadProgress } from '../../cli/usageLoader';
import { ingestUsageEvents, type IngestionLag } from '../../db/usage';
import { createPool } from '../../db/pool';
import type { UsageBatchSummary } from '../../domain/usageEvents';
import { operatorEnv, runBillops } from '../support/billopsCli';
import { insertTenant } from '../support/dunningFixtures';
import { testEnv } from '../support/testRuntime';

const hex = () => randomBytes(4).toString('hex');
const MAX_BATCH = 20;
const MAX_BODY_BYTES = 16 * 1024;

let pool: Pool;
let app: FastifyInstance;
let registry: Registry;
let tempDir: string;
let baseUrl: string;
let tenant: string;
let otherTenant: string;
/** Known through a usage cap. */
let cappedMeter: string;
/** Known through a tenant's negotiated rate. */
let pricedMeter: string;
/** The producer every test but the authentication ones sends as: both usage scopes, every tenant. */
let producer: CreatedKey;

interface CreatedKey {
  id: string;
  key: string;
  scopes: string[];
  tenants: string[] | null;
}

/** `billops keys create ... --json` as an operator runs it; the secret is in `key`. */
async function createKey(...flags: string[]): Promise<CreatedKey> {
  const run = await runBillops(['keys', 'create', ...flags, '--json'], operatorEnv('usage-ingest'));
  if (run.code !== 0)
    throw new Error(`billops keys create ${flags.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as CreatedKey;
}

beforeAll(async () => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  tempDir = mkdtempSync(join(tmpdir(), 'billops-usage-ingest-'));
  tenant = (await insertTenant(pool, 'pro')).id;
  otherTenant = (await insertTenant(pool, 'enterprise')).id;
  cappedMeter = `ingest_${hex()}.calls`;
  pricedMeter = `ingest_${hex()}.tokens`;
  producer = await createKey('--scope', 'usage:write,usage:read', '--name', 'usage ingest test');
  await pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, 1000000)', [
    tenant,
    cappedMeter,
  ]);
  await pool.query(
    `INSERT INTO rates (meter, tenant_id, effective_from, pricing_model, unit_price_minor, currency)
     VALUES ($1, $2, '2020-01-01T00:00:00Z', 'per_unit', 0.05, 'USD')`,
    [pricedMeter, otherTenant],
  );
  registry = new Registry();
  app = Fastify({ logger: false });
  registerUsageRoutes(app, { pool, maxBatch: MAX_BATCH, maxBodyBytes: MAX_BODY_BYTES, registry });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the test ingress has no TCP address');
  baseUrl = `http://127.0.0.1:${address.port}`;
});

afterAll(async () => {
  await app.close();
  await pool.end();
  rmSync(tempDir, { recursive: true, force: true });
});

function minutesFromNow(minutes: number): string {
  return new Date(Date.now() + minutes * 60_000).toISOString();
}

// Over real HTTP rather than app.inject: light-my-request needs the ESM-only `cookie` 2, which Jest on Node 20 cannot require.
async function request(
  method: 'GET' | 'POST',
  path: string,
  body?: string,
  auth: Record<string, string> = { authorization: `Bearer ${producer.key}` },
) {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: body === undefined ? auth : { ...auth, 'content-type': 'application/json' },
    body,
  });
  return {
    status: res.status,
    headers: res.headers,
    body: (await res.json()) as UsageBatchSummary & { message?: string },
  };
}

async function post(body: unknown, auth?: Record<string, string>) {
  return request('POST', '/usage/events', JSON.stringify(body), auth);
}

/** Rows recorded under these keys, as the database stores them. */
async function recorded(tenantId: string, keys: string[]) {
  const { rows } = await pool.query<{
    idempotency_key: string;
    meter: string;
    quantity: string;
    occurred_at: Date;
  }>(
    `SELECT idempotency_key, meter, quantity::text AS quantity, occurred_at FROM usage_events
     WHERE tenant_id = $1 AND idempotency_key = ANY($2::text[]) ORDER BY id`,
    [tenantId, keys],
  );
  return rows;
}

async function meterTotals(tenantId: string, meter: string): Promise<{ sum: string; count: number }> {
  const { rows } = await pool.query<{ sum: string; count: number }>(
    `SELECT COALESCE(sum(quantity), 0)::text AS sum, count(*)::int AS count FROM usage_events
     WHERE tenant_id = $1 AND meter = $2`,
    [tenantId, meter],
  );
  return rows[0] ?? { sum: '0', count: 0 };
}

describe('POST /usage/events', () => {
  it('records the good items, refuses each bad one with its reason, and treats a re-send as duplicates', async () => {
    const k = hex();
    const at = '2026-01-15T10:30:00.123456+05:30';
    const good = [
      { tenant_id: tenant, meter: cappedMeter, quantity: 3, timestamp: at, idempotency_key: `${k}-1` },
      {
        tenant_id: otherTenant,
        meter: pricedMeter,
        quantity: '0.125',
        timestamp: at,
        idempotency_key: `${k}-2`,
      },
      {
        tenant_id: tenant,
        meter: cappedMeter,
        quantity: '12345678901234567890.000000000001',
        timestamp: minutesFromNow(2),
        idempotency_key: `${k}-3`,
      },
    ];
    const batch: unknown[] = [
      ...good,
      // 3: the same key again in the same batch, with another quantity
      { ...good[0], quantity: 4 },
      { tenant_id: `nobody-${k}`, meter: cappedMeter, quantity: 1, timestamp: at, idempotency_key: `${k}-5` },
      { tenant_id: tenant, meter: `nosuch_${k}`, quantity: 1, timestamp: at, idempotency_key: `${k}-6` },
      { tenant_id: tenant, meter: cappedMeter, quantity: -1, timestamp: at, idempotency_key: `${k}-7` },
      { tenant_id: tenant, meter: cappedMeter, quantity: 'lots', timestamp: at, idempotency_key: `${k}-8` },
      {
        tenant_id: tenant,
        meter: cappedMeter,
        quantity: 1,
        timestamp: minutesFromNow(10),
        idempotency_key: `${k}-9`,
      },
      { tenant_id: tenant, meter: cappedMeter, quantity: '1e3', timestamp: at, idempotency_key: `${k}-10` },
      {
        tenant_id: tenant,
        meter: cappedMeter,
        quantity: 1,
        timestamp: '2026-01-15T10:30:00',
        idempotency_key: `${k}-11`,
      },
      {
        tenant_id: tenant,
        meter: cappedMeter,
        quantity: 0.1 + 0.2,
        timestamp: at,
        idempotency_key: `${k}-12`,
      },
      { tenant_id: tenant, meter: 'Bad Meter', quantity: 1, timestamp: at, idempotency_key: `${k}-13` },
      { tenant_id: tenant, meter: cappedMeter, quantity: 1, timestamp: at },
      'not an event',
    ];

    const first = await post({ events: batch });

    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ accepted: 3, duplicates: 1, rejected: 11 });
    const reasons = first.body.results.map((r) => [r.status, r.reason ?? '']);
    expect(first.body.results.map((r) => r.index)).toEqual(batch.map((_, i) => i));
    expect(reasons.slice(0, 3)).toEqual([
      ['accepted', ''],
      ['accepted', ''],
      ['accepted', ''],
    ]);
    expect(reasons[3]).toEqual([
      'duplicate',
      'repeats the idempotency key of item 0 with a different meter, quantity or timestamp: ignored',
    ]);
    expect(reasons[4]).toEqual(['rejected', `unknown tenant "nobody-${k}"`]);
    expect(reasons[5]).toEqual(['rejected', `unknown meter "nosuch_${k}": no rate or usage cap names it`]);
    expect(reasons[6]).toEqual(['rejected', 'quantity must not be negative (got -1)']);
    expect(reasons[7]?.[1]).toMatch(/^quantity must be a non-negative decimal number .*"lots"/);
    expect(reasons[8]?.[1]).toMatch(/^timestamp is \d+ s in the future; at most 300 s ahead is accepted$/);
    expect(reasons[9]).toEqual(['rejected', 'quantity must be written without an exponent (got "1e3")']);
    expect(reasons[10]?.[1]).toMatch(/^timestamp must be an ISO-8601 date-time with a zone/);
    expect(reasons[11]?.[1]).toMatch(
      /^quantity has more digits than a JSON number keeps exactly .*decimal string$/,
    );
    expect(reasons[12]?.[1]).toMatch(/^meter must be lower case/);
    expect(reasons[13]).toEqual(['rejected', 'idempotency_key is required']);
    expect(reasons[14]).toEqual(['rejected', 'event must be an object (got a string)']);

    // Exactly the good items landed, quantities exact and the instant as sent.
    const rows = await recorded(
      tenant,
      batch.map((_, i) => `${k}-${i + 1}`),
    );
    expect(rows.map((r) => [r.idempotency_key, r.quantity])).toEqual([
      [`${k}-1`, '3'],
      [`${k}-3`, '12345678901234567890.000000000001'],
    ]);
    expect(rows[0]?.occurred_at.toISOString()).toBe('2026-01-15T05:00:00.123Z');
    expect(await recorded(otherTenant, [`${k}-2`])).toMatchObject([{ quantity: '0.125' }]);

    // Re-sending the good items: every one a duplicate, nothing new recorded.
    const again = await post({ events: good });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 3, rejected: 0 });
    expect(again.body.results.every((r) => r.status === 'duplicate' && r.reason === 'already recorded')).toBe(
      true,
    );
    expect(await recorded(tenant, [`${k}-1`, `${k}-3`])).toHaveLength(2);

    // The same key with other content is still ignored, and says so.
    const changed = await post({ events: [{ ...good[0], quantity: 99 }] });
    expect(changed.body.results).toEqual([
      {
        index: 0,
        status: 'duplicate',
        reason: 'already recorded with a different meter, quantity or timestamp: ignored',
      },
    ]);

    const metrics = await registry.getSingleMetricAsString('billops_usage_events_total');
    expect(metrics).toContain('billops_usage_events_total{status="accepted"} 3');
    expect(metrics).toContain('billops_usage_events_total{status="rejected"} 11');
  });

  it('answers 422 when every item is refused, and records nothing', async () => {
    const k = hex();
    const res = await post({
      events: [
        {
          tenant_id: tenant,
          meter: cappedMeter,
          quantity: -5,
          timestamp: minutesFromNow(0),
          idempotency_key: k,
        },
        {
          tenant_id: `ghost-${k}`,
          meter: cappedMeter,
          quantity: 1,
          timestamp: minutesFromNow(0),
          idempotency_key: k,
        },
      ],
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ accepted: 0, duplicates: 0, rejected: 2 });
    expect(await recorded(tenant, [k])).toEqual([]);
  });

  it('refuses the items past the batch limit one by one while the first ones land', async () => {
    const k = hex();
    const events = Array.from({ length: MAX_BATCH + 2 }, (_, i) => ({
      tenant_id: tenant,
      meter: cappedMeter,
      quantity: 1,
      timestamp: minutesFromNow(-1),
      idempotency_key: `${k}-${i}`,
    }));
    const res = await post({ events });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: MAX_BATCH, rejected: 2 });
    expect(res.body.results.slice(MAX_BATCH)).toEqual([
      {
        index: MAX_BATCH,
        status: 'rejected',
        reason: `beyond the batch limit of ${MAX_BATCH} events: send it in a later batch`,
      },
      {
        index: MAX_BATCH + 1,
        status: 'rejected',
        reason: `beyond the batch limit of ${MAX_BATCH} events: send it in a later batch`,
      },
    ]);
  });

  it('answers 413 for a body over the byte limit and records nothing from it', async () => {
    const k = hex();
    const event = {
      tenant_id: tenant,
      meter: cappedMeter,
      quantity: 1,
      timestamp: minutesFromNow(0),
      idempotency_key: `${k}-${'x'.repeat(MAX_BODY_BYTES)}`,
    };
    const res = await post({ events: [event] });
    expect(res.status).toBe(413);
    const { rows } = await pool.query(
      'SELECT 1 FROM usage_events WHERE tenant_id = $1 AND idempotency_key LIKE $2',
      [tenant, `${k}-%`],
    );
    expect(rows).toEqual([]);
  });

  it.each([
    ['an object without events', {}],
    ['events that is not an array', { events: 'x' }],
    ['events that is a single object', { events: { tenant_id: 't' } }],
    ['an empty batch', { events: [] }],
    ['a bare array', [{ tenant_id: 't' }]],
  ])('answers 400 for %s', async (_what, body) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toBeTruthy();
  });

  it('answers 400 for a body that is not JSON', async () => {
    const res = await request('POST', '/usage/events', '{"events": [');
    expect(res.status).toBe(400);
  });

  it('records each event once when the same batch arrives twice at the same time', async () => {
    const k = hex();
    const events = Array.from({ length: 10 }, (_, i) => ({
      tenant_id: tenant,
      meter: cappedMeter,
      quantity: i,
      timestamp: minutesFromNow(-5),
      idempotency_key: `${k}-${i}`,
    }));
    const [a, b] = await Promise.all([post({ events }), post({ events })]);
    expect(a.body.accepted + b.body.accepted).toBe(10);
    expect(a.body.duplicates + b.body.duplicates).toBe(10);
    expect(
      await recorded(
        tenant,
        events.map((e) => e.idempotency_key),
      ),
    ).toHaveLength(10);
  });

  it('takes the future-timestamp allowance from its options', async () => {
    const k = hex();
    const event = {
      tenant_id: tenant,
      meter: cappedMeter,
      quantity: 1,
      timestamp: minutesFromNow(2),
      idempotency_key: k,
    };
    const as = { keyId: producer.id, tenants: null };
    const strict = await ingestUsageEvents(pool, [event], { producer: as, maxFutureSkewMs: 60_000 });
    expect(strict.results[0]?.reason).toMatch(/at most 60 s ahead is accepted/);
    const lenient = await ingestUsageEvents(pool, [event], { producer: as, maxFutureSkewMs: 10 * 60_000 });
    expect(lenient.accepted).toBe(1);
  });
});

describe('GET /usage/lag', () => {
  it('reports the newest event of each meter', async () => {
    const res = await fetch(`${baseUrl}/usage/lag`, { headers: { authorization: `Bearer ${producer.key}` } });
    expect(res.status).toBe(200);
    const lag = (await res.json()) as {
      meters: { meter: string; lastOccurredAt: string; tenants: number }[];
    };
    const priced = lag.meters.find((m) => m.meter === pricedMeter);
    expect(priced).toMatchObject({ lastOccurredAt: '2026-01-15T05:00:00.123Z', tenants: 1 });
  });
});

describe('usage ingestion is authenticated', () => {
  let readOnly: CreatedKey;
  let writeOnly: CreatedKey;
  let scoped: CreatedKey;
  let revoked: CreatedKey;
  let producerB: CreatedKey;
  let scopedReader: CreatedKey;

  beforeAll(async () => {
    [readOnly, writeOnly, scoped, revoked, producerB, scopedReader] = await Promise.all([
      createKey('--scope', 'usage:read'),
      createKey('--scope', 'usage:write'),
      createKey('--scope', 'usage:write', '--tenants', tenant),
      createKey('--scope', 'usage:write,usage:read'),
      createKey('--scope', 'usage:write', '--name', 'producer B'),
      createKey('--scope', 'usage:read', '--tenants', otherTenant),
    ]);
    const revoke = await runBillops(['keys', 'revoke', revoked.id], operatorEnv('usage-ingest'));
    if (revoke.code !== 0) throw new Error(`billops keys revoke exited ${revoke.code}: ${revoke.stderr}`);
  });

  const bearer = (key: CreatedKey) => ({ authorization: `Bearer ${key.key}` });
  const event = (idempotencyKey: string, tenantId = tenant) => ({
    tenant_id: tenantId,
    meter: cappedMeter,
    quantity: 1,
    timestamp: minutesFromNow(-1),
    idempotency_key: idempotencyKey,
  });

  it('answers 401 without a key or with an unknown one, on both routes, and records nothing', async () => {
    const k = hex();
    const unknownKey = `bk_${'0'.repeat(12)}_${'A'.repeat(43)}`;
    const attempts: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${unknownKey}` },
      { 'x-api-key': 'nonsense' },
    ];
    for (const auth of attempts) {
      const posted = await post({ events: [event(k)] }, auth);
      expect(posted.status).toBe(401);
      expect(posted.headers.get('www-authenticate')).toBe('Bearer');
      expect(posted.body.message).toMatch(/API key/);
      expect((await request('GET', '/usage/lag', undefined, auth)).status).toBe(401);
    }
    expect(await recorded(tenant, [k])).toEqual([]);
  });

  it('answers 401 to a revoked key on both routes', async () => {
    const k = hex();
    const posted = await post({ events: [event(k)] }, bearer(revoked));
    expect(posted.status).toBe(401);
    expect(posted.body.message).toMatch(/revoked/);
    expect((await request('GET', '/usage/lag', undefined, bearer(revoked))).status).toBe(401);
    expect(await recorded(tenant, [k])).toEqual([]);
  });

  it('answers 403 to a key without the route’s scope', async () => {
    const k = hex();
    const posted = await post({ events: [event(k)] }, bearer(readOnly));
    expect(posted.status).toBe(403);
    expect(posted.body.message).toMatch(/usage:write/);
    expect(await recorded(tenant, [k])).toEqual([]);
    expect((await request('GET', '/usage/lag', undefined, bearer(writeOnly))).status).toBe(403);
    expect((await request('GET', '/usage/lag', undefined, bearer(readOnly))).status).toBe(200);
  });

  it('refuses an event for a tenant outside the key’s tenants as that item alone; the others land', async () => {
    const k = hex();
    const res = await post(
      {
        events: [
          event(`${k}-1`),
          event(`${k}-2`, otherTenant),
          event(`${k}-3`),
          event(`${k}-4`, `nobody-${k}`),
        ],
      },
      bearer(scoped),
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 2, duplicates: 0, rejected: 2 });
    expect(res.body.results).toEqual([
      { index: 0, status: 'accepted' },
      { index: 1, status: 'rejected', reason: `tenant "${otherTenant}" is outside this API key's tenants` },
      { index: 2, status: 'accepted' },
      { index: 3, status: 'rejected', reason: `tenant "nobody-${k}" is outside this API key's tenants` },
    ]);
    expect(await recorded(tenant, [`${k}-1`, `${k}-3`])).toHaveLength(2);
    expect(await recorded(otherTenant, [`${k}-2`])).toEqual([]);
  });

  it('keeps idempotency keys per producer: A’s key does not block B’s event with the same key', async () => {
    const k = hex();
    const same = event(k);
    const fromA = await post({ events: [same] }, bearer(writeOnly));
    expect(fromA.body.results).toEqual([{ index: 0, status: 'accepted' }]);
    const fromB = await post({ events: [same] }, { 'x-api-key': producerB.key });
    expect(fromB.body.results).toEqual([{ index: 0, status: 'accepted' }]);
    // Each producer's own re-send is still its duplicate.
    for (const auth of [bearer(writeOnly), bearer(producerB)]) {
      const again = await post({ events: [same] }, auth);
      expect(again.body.results).toEqual([{ index: 0, status: 'duplicate', reason: 'already recorded' }]);
    }
    expect(await recorded(tenant, [k])).toHaveLength(2);
  });

  it('still counts an event recorded before producers existed once, whoever re-sends it', async () => {
    const k = hex();
    const legacy = event(k);
    await pool.query(
      `INSERT INTO usage_events (tenant_id, meter, quantity, occurred_at, idempotency_key) VALUES ($1, $2, 1, $3, $4)`,
      [tenant, cappedMeter, legacy.timestamp, k],
    );
    const again = await post({ events: [legacy] }, bearer(writeOnly));
    expect(again.body.results).toEqual([{ index: 0, status: 'duplicate', reason: 'already recorded' }]);
    expect(await recorded(tenant, [k])).toHaveLength(1);
  });

  it('shows a key limited to some tenants the lag of those tenants only', async () => {
    const res = await fetch(`${baseUrl}/usage/lag`, { headers: bearer(scopedReader) });
    expect(res.status).toBe(200);
    const lag = (await res.json()) as IngestionLag;
    expect(lag.tenantMeters.length).toBeGreaterThan(0);
    expect(new Set(lag.tenantMeters.map((p) => p.tenant))).toEqual(new Set([otherTenant]));
    expect(lag.meters.map((m) => [m.meter, m.tenants])).toEqual(lag.tenantMeters.map((p) => [p.meter, 1]));
  });
});

/** Usage lines for one tenant and meter, with quantities in thousandths so the expected sum is exact integer math. */
function generatedEvents(n: number, tenantId: string, meter: string, k: string) {
  const base = Date.UTC(2025, 5, 1);
  return Array.from({ length: n }, (_, i) => {
    const thousandths = (i * 7919) % 100_000;
    return {
      tenant_id: tenantId,
      meter,
      quantity: `${Math.floor(thousandths / 1000)}.${String(thousandths % 1000).padStart(3, '0')}`,
      thousandths,
      timestamp: new Date(base + i * 61_000).toISOString(),
      idempotency_key: `${k}-${i}`,
    };
  });
}

function thousandthsToDecimal(total: number): string {
  return `${Math.floor(total / 1000)}.${String(total % 1000).padStart(3, '0')}`;
}

describe('loadUsageFile', () => {
  it('loads an NDJSON file in batches, refuses the bad lines by number, and resumes by re-running', async () => {
    const meter = `load_${hex()}.ndjson`;
    await pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, 1000)', [
      tenant,
      meter,
    ]);
    const events = generatedEvents(1200, tenant, meter, hex());
    const lines = events.map(({ thousandths: _t, ...e }) => JSON.stringify(e));
    // Bad lines at known places (1-based line numbers after insertion): 11, 501, 902, plus a blank line at 300.
    lines.splice(10, 0, '{"tenant_id": "broken"');
    lines.splice(299, 0, '');
    lines.splice(
      500,
      0,
      JSON.stringify({ ...JSON.parse(lines[500] ?? '{}'), quantity: '-2', idempotency_key: 'neg' }),
    );
    const unknownMeter = `nosuch_${hex()}`;
    lines.splice(
      901,
      0,
      JSON.stringify({ ...JSON.parse(lines[901] ?? '{}'), meter: unknownMeter, idempotency_key: 'um' }),
    );
    const file = join(tempDir, 'usage.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);

    // The first run stops short: a file cut after line 600, as if the loader died there.
    const partial = join(tempDir, 'usage-partial.ndjson');
    writeFileSync(partial, `${lines.slice(0, 600).join('\n')}\n`);
    const firstRun = await loadUsageFile(pool, partial, { apiKey: producer.key, batchSize: 250 });
    expect(firstRun).toMatchObject({ format: 'ndjson', linesRead: 600, events: 599, rejected: 2 });
    expect(firstRun.accepted).toBe(597);

    const progress: UsageLoadProgress[] = [];
    const summary = await loadUsageFile(pool, file, {
      apiKey: producer.key,
      batchSize: 250,
      onProgress: (p) => progress.push(p),
    });

    expect(summary).toMatchObject({
      format: 'ndjson',
      linesRead: 1204,
      events: 1203,
      accepted: 1200 - 597,
      duplicates: 597,
      rejected: 3,
    });
    expect(summary.rejections.map((r) => r.line)).toEqual([11, 501, 902]);
    expect(summary.rejections[0]?.reason).toMatch(/^not valid JSON/);
    expect(summary.rejections[1]?.reason).toBe('quantity must not be negative (got "-2")');
    expect(summary.rejections[2]?.reason).toBe(
      `unknown meter "${unknownMeter}": no rate or usage cap names it`,
    );
    expect(progress.map((p) => p.linesRead)).toEqual(
      [...progress.map((p) => p.linesRead)].sort((a, b) => a - b),
    );
    expect(progress.length).toBe(5);
    expect(progress.at(-1)).toMatchObject({ linesRead: 1204, accepted: summary.accepted });

    const expected = events.reduce((sum, e) => sum + e.thousandths, 0);
    expect(await meterTotals(tenant, meter)).toEqual({ sum: thousandthsToDecimal(expected), count: 1200 });

    const rerun = await loadUsageFile(pool, file, { apiKey: producer.key, batchSize: 1000 });
    expect(rerun).toMatchObject({ accepted: 0, duplicates: 1200, rejected: 3 });
  });

  it('loads a CSV file with quoted fields and columns in any order', async () => {
    const meter = `load_${hex()}.csv`;
    await pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, 1000)', [
      otherTenant,
      meter,
    ]);
    const events = generatedEvents(300, otherTenant, meter, `${hex()},"quoted"`);
    const csvQuote = (s: string) => `"${s.replace(/"/g, '""')}"`;
    const lines = [
      'idempotency_key,tenant_id,meter,quantity,timestamp',
      ...events.map((e) =>
        [csvQuote(e.idempotency_key), e.tenant_id, e.meter, e.quantity, e.timestamp].join(','),
      ),
    ];
    lines.splice(5, 0, `"unterminated,${otherTenant},${meter},1,2025-06-01T00:00:00Z`);
    lines.splice(50, 0, `only-two,${otherTenant}`);
    lines.splice(100, 0, `future-1,${otherTenant},${meter},1,${minutesFromNow(60)}`);
    lines.splice(200, 0, `nan-1,${otherTenant},${meter},NaN,2025-06-01T00:00:00Z`);
    const file = join(tempDir, 'usage.csv');
    writeFileSync(file, `${lines.join('\r\n')}\r\n`);

    const summary = await loadUsageFile(pool, file, { apiKey: producer.key, batchSize: 64 });

    expect(summary).toMatchObject({
      format: 'csv',
      linesRead: 305,
      events: 304,
      accepted: 300,
      duplicates: 0,
      rejected: 4,
    });
    expect(summary.rejections.map((r) => r.line)).toEqual([6, 51, 101, 201]);
    expect(summary.rejections.map((r) => r.reason)).toEqual([
      'a quoted field is not closed on this line',
      'has 2 fields; the header names 5',
      expect.stringMatching(/^timestamp is \d+ s in the future/),
      expect.stringMatching(/^quantity must be a non-negative decimal number/),
    ]);
    const expected = events.reduce((sum, e) => sum + e.thousandths, 0);
    expect(await meterTotals(otherTenant, meter)).toEqual({
      sum: thousandthsToDecimal(expected),
      count: 300,
    });
    expect(await recorded(otherTenant, [events[0]?.idempotency_key ?? ''])).toHaveLength(1);
  });

  it('runs as a CLI: progress on stderr, the summary on stdout, and exit codes for refused lines and bad arguments', async () => {
    const meter = `load_${hex()}.cli`;
    await pool.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, 1000)', [
      tenant,
      meter,
    ]);
    const file = join(tempDir, 'cli.ndjson');
    const k = hex();
    const line = (i: number, quantity: string) =>
      JSON.stringify({
        tenant_id: tenant,
        meter,
        quantity,
        timestamp: '2025-07-01T00:00:00Z',
        idempotency_key: `${k}-${i}`,
      });
    writeFileSync(file, [line(1, '1'), line(2, '2'), line(3, '-3')].join('\n'));
    const out: string[] = [];
    const err: string[] = [];
    const log = jest
      .spyOn(console, 'log')
      .mockImplementation((...args: unknown[]) => void out.push(args.join(' ')));
    const error = jest
      .spyOn(console, 'error')
      .mockImplementation((...args: unknown[]) => void err.push(args.join(' ')));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    const previousUrl = process.env.DATABASE_URL;
    const previousKey = process.env.BILLOPS_API_KEY;
    process.env.DATABASE_URL = testEnv('databaseUrl');
    process.env.BILLOPS_API_KEY = producer.key;
    try {
      expect(await loaderMain([file])).toBe(1);
      expect(out.join('\n')).toContain('3 lines, 3 events: 2 accepted, 0 duplicates, 1 rejected');
      expect(err.join('')).toContain('line 3: quantity must not be negative (got "-3")');
      expect(err.join('')).toContain('3 lines read: 2 accepted, 0 duplicates, 1 rejected');

      writeFileSync(file, [line(1, '1'), line(2, '2')].join('\n'));
      expect(await loaderMain([file, '--json'])).toBe(0);
      expect(JSON.parse(out.at(-1) ?? '{}')).toMatchObject({ accepted: 0, duplicates: 2, rejected: 0 });

      expect(await loaderMain([])).toBe(2);
      expect(await loaderMain([file, '--batch-size', 'many'])).toBe(2);
      expect(await loaderMain([join(tempDir, 'missing.ndjson')])).toBe(1);
      expect(err.join('')).toMatch(/ENOENT/);
    } finally {
      if (previousUrl === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = previousUrl;
      if (previousKey === undefined) delete process.env.BILLOPS_API_KEY;
      else process.env.BILLOPS_API_KEY = previousKey;
      log.mockRestore();
      error.mockRestore();
      stderr.mockRestore();
    }
    expect(await meterTotals(tenant, meter)).toEqual({ sum: '3', count: 2 });
  });
});
