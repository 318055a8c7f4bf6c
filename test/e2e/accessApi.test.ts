// The access API through the real ingress: each access state from the holds that cause it, ETag/304 and Cache-Control,
// 401/403/404, the changedSince sync with a cursor that moves, and the in-app notices listed and acknowledged.
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import { createServiceControlActivities } from '../../activities/serviceControls';
import { createPool } from '../../db/pool';
import type { AccessChanges, Notice, TenantAccess } from '../../db/access';
import { buildIngress } from '../../ingress/server';
import { operatorEnv, runBillops } from '../support/billopsCli';
import { insertOpenInvoice, insertTenant } from '../support/dunningFixtures';
import { testEnv } from '../support/testRuntime';

const MAX_AGE_SECONDS = 7;

let pool: Pool;
let client: Client;
let app: FastifyInstance;
let baseUrl: string;
/** access:read on every tenant. */
let reader: string;
/** access:read and notices:write on every tenant: the product's dashboard. */
let dashboard: string;
/** usage:read only. */
let usageOnly: string;

const controls = () => createServiceControlActivities({ pool });

async function createKey(...flags: string[]): Promise<string> {
  const run = await runBillops(['keys', 'create', ...flags, '--json'], operatorEnv('access-api'));
  if (run.code !== 0)
    throw new Error(`billops keys create ${flags.join(' ')} exited ${run.code}: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { key: string }).key;
}

beforeAll(async () => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  client = new Client({ connection: await Connection.connect({ address: testEnv('temporalAddress') }) });
  [reader, dashboard, usageOnly] = await Promise.all([
    createKey('--scope', 'access:read', '--name', 'gateway'),
    createKey('--scope', 'access:read,notices:write', '--name', 'dashboard'),
    createKey('--scope', 'usage:read', '--name', 'usage only'),
  ]);
  app = buildIngress({ client, pool, access: { maxAgeSeconds: MAX_AGE_SECONDS } });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
  await client.connection.close();
  await pool.end();
});

async function call(
  method: 'GET' | 'POST',
  path: string,
  /** null: no key at all. */
  key: string | null = reader,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
}

async function access(tenantId: string, key = reader): Promise<TenantAccess> {
  const res = await call('GET', `/v1/tenants/${tenantId}/access`, key);
  expect(res.status).toBe(200);
  return res.body as TenantAccess;
}

/** Changes one source's hold as that source's workflow does, through the service-control activity. */
async function hold(
  tenantId: string,
  source: 'dunning' | 'overage' | 'operator',
  fields: { rateLimitPercent?: number; apiBlocked?: boolean; suspended?: boolean; until?: string },
  reason: string,
) {
  await controls().applyServiceControls({
    tenantId,
    workflowId: `${source}-${tenantId}`,
    operator: source === 'operator' ? 'ops@billops.test' : 'billops',
    reason,
    source,
    ...fields,
  });
}

describe('GET /v1/tenants/{id}/access', () => {
  it('answers active for a tenant nothing restricts, cacheable for the configured time', async () => {
    const { id } = await insertTenant(pool, 'pro');
    const res = await call('GET', `/v1/tenants/${id}/access`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tenantId: id,
      state: 'active',
      rateLimitPercent: 100,
      readOnly: false,
      holds: [],
      notices: [],
    });
    expect(res.headers.get('cache-control')).toBe(`max-age=${MAX_AGE_SECONDS}`);
    expect(res.headers.get('etag')).toMatch(/^"[A-Za-z0-9_-]{16,}"$/);
  });

  it('answers throttled with the rate of an overage hold, listing the hold with its source, since, until and reason', async () => {
    const { id } = await insertTenant(pool, 'pro');
    const until = new Date(Date.now() + 3_600_000).toISOString();
    await hold(id, 'overage', { rateLimitPercent: 25, until }, 'usage at 120% of cap');
    const body = await access(id);
    expect(body.state).toBe('throttled');
    expect(body.rateLimitPercent).toBe(25);
    expect(body.holds).toEqual([
      { source: 'overage', since: expect.any(String), until, reason: 'usage at 120% of cap' },
    ]);
    expect(Date.parse(body.holds[0]!.since)).toBeLessThanOrEqual(Date.now());
  });

  it('answers blocked with the payment link of the unpaid invoice, and the lower rate of two sources', async () => {
    const { id } = await insertTenant(pool, 'pro');
    const { invoiceId } = await insertOpenInvoice(pool, id);
    const link = `https://invoice.stripe.test/i/${invoiceId}`;
    await pool.query('UPDATE invoices SET hosted_invoice_url = $2 WHERE id = $1', [invoiceId, link]);
    await hold(id, 'overage', { rateLimitPercent: 40 }, 'usage at 130% of cap');
    await hold(id, 'operator', { apiBlocked: true }, 'abuse report 17');
    const body = await access(id);
    expect(body).toMatchObject({ state: 'blocked', rateLimitPercent: 40, paymentUrl: link });
    expect(body.holds.map((h) => h.source)).toEqual(['operator', 'overage']);

    // Paid: no payment link any more; lifting the operator's hold leaves the overage throttle.
    await pool.query(
      `UPDATE invoices SET status = 'paid', amount_paid_minor = total_minor, paid_at = now() WHERE id = $1`,
      [invoiceId],
    );
    await controls().restoreService({
      tenantId: id,
      workflowId: `operator-${id}`,
      operator: 'ops',
      reason: 'cleared',
      source: 'operator',
    });
    const after = await access(id);
    expect(after).toMatchObject({ state: 'throttled', rateLimitPercent: 40 });
    expect(after.paymentUrl).toBeUndefined();
  });

  it('answers suspended by dunning, with the dated limit and suspension notices dunning posted', async () => {
    const { id } = await insertTenant(pool, 'pro');
    // The dunning lifecycle's soft limit, hard limit and suspension, as its steps call the activity.
    await hold(id, 'dunning', { rateLimitPercent: 10 }, 'dunning softLimit: payment not collected');
    await hold(id, 'dunning', { apiBlocked: true }, 'dunning hardLimit: payment not collected');
    await hold(id, 'dunning', { suspended: true }, 'dunning suspension: payment not collected');
    // A retried activity posts nothing twice.
    await hold(id, 'dunning', { suspended: true }, 'dunning suspension: payment not collected');
    const body = await access(id);
    expect(body).toMatchObject({ state: 'suspended', rateLimitPercent: 10 });
    expect(body.holds).toEqual([
      { source: 'dunning', since: expect.any(String), reason: 'dunning suspension: payment not collected' },
    ]);
    expect(body.notices.map((n) => n.kind)).toEqual(['softLimit', 'hardLimit', 'suspension']);
    expect(body.notices[0]!.message).toMatch(
      /limited to 10% of normal capacity since \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/,
    );
    expect(body.notices[2]!.message).toMatch(/suspended since \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/);

    // Recovery lifts dunning's hold and withdraws its notices: no banner outlives its restriction.
    await controls().restoreService({
      tenantId: id,
      workflowId: `dunning-${id}`,
      operator: 'billops',
      reason: 'paid',
      source: 'dunning',
    });
    expect(await access(id)).toMatchObject({
      state: 'active',
      rateLimitPercent: 100,
      holds: [],
      notices: [],
    });
  });

  it('answers deleted once the tenant data is deleted', async () => {
    const { id } = await insertTenant(pool, 'pro');
    await hold(id, 'dunning', { suspended: true }, 'dunning suspension: payment not collected');
    await pool.query('UPDATE tenants SET deleted_at = now() WHERE id = $1', [id]);
    expect(await access(id)).toMatchObject({ state: 'deleted', rateLimitPercent: 0 });
  });

  it('drops a hold once its until has passed', async () => {
    const { id } = await insertTenant(pool, 'pro');
    await hold(
      id,
      'operator',
      { apiBlocked: true, until: new Date(Date.now() + 1500).toISOString() },
      'maintenance window',
    );
    expect((await access(id)).state).toBe('blocked');
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect(await access(id)).toMatchObject({ state: 'active', holds: [] });
  });

  it('answers 304 to If-None-Match with the current ETag, and 200 with a new one once access changes', async () => {
    const { id } = await insertTenant(pool, 'pro');
    const first = await call('GET', `/v1/tenants/${id}/access`);
    const etag = first.headers.get('etag')!;
    const again = await call('GET', `/v1/tenants/${id}/access`, reader, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body).toBeUndefined();
    expect(again.headers.get('etag')).toBe(etag);
    expect(again.headers.get('cache-control')).toBe(`max-age=${MAX_AGE_SECONDS}`);
    expect(
      (await call('GET', `/v1/tenants/${id}/access`, reader, { 'if-none-match': `W/${etag}` })).status,
    ).toBe(304);

    await hold(id, 'overage', { rateLimitPercent: 50 }, 'usage at 120% of cap');
    const changed = await call('GET', `/v1/tenants/${id}/access`, reader, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect((changed.body as TenantAccess).state).toBe('throttled');
  });

  it('refuses a missing or wrong key (401), a key without access:read (403), and answers 404 for an unknown tenant', async () => {
    const { id } = await insertTenant(pool, 'pro');
    const missing = await call('GET', `/v1/tenants/${id}/access`, null);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await call('GET', `/v1/tenants/${id}/access`, `bk_aaaaaaaaaaaa_${'x'.repeat(43)}`);
    expect(wrong.status).toBe(401);
    const noScope = await call('GET', `/v1/tenants/${id}/access`, usageOnly);
    expect(noScope.status).toBe(403);
    expect((noScope.body as { message: string }).message).toMatch(/lacks scope access:read/);
    const unknown = await call('GET', '/v1/tenants/no-such-tenant/access');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: expect.stringContaining('no-such-tenant'),
    });
  });

  it("answers 404 for a tenant outside a key's --tenants, as for one that does not exist", async () => {
    const [mine, other] = await Promise.all([insertTenant(pool, 'pro'), insertTenant(pool, 'pro')]);
    const limited = await createKey('--scope', 'access:read', '--tenants', mine.id);
    expect((await call('GET', `/v1/tenants/${mine.id}/access`, limited)).status).toBe(200);
    const outside = await call('GET', `/v1/tenants/${other.id}/access`, limited);
    expect(outside.status).toBe(404);
    expect((await call('GET', `/v1/tenants/${other.id}/notices`, limited)).status).toBe(404);
  });
});

describe('GET /v1/access?changedSince=', () => {
  async function sync(key: string, cursor?: string, limit?: number): Promise<AccessChanges> {
    const query = new URLSearchParams({
      ...(cursor ? { changedSince: cursor } : {}),
      ...(limit ? { limit: String(limit) } : {}),
    });
    const res = await call('GET', `/v1/access?${query}`, key);
    expect(res.status).toBe(200);
    return res.body as AccessChanges;
  }

  /** Pages through until the window is drained; the tenants seen and the cursor to ask from next. */
  async function drain(key: string, cursor?: string, limit?: number) {
    const seen: TenantAccess[] = [];
    let page = await sync(key, cursor, limit);
    seen.push(...page.tenants);
    while (page.hasMore) {
      page = await sync(key, page.nextCursor, limit);
      seen.push(...page.tenants);
    }
    return { seen, cursor: page.nextCursor };
  }

  it('lists only the tenants whose access changed since the cursor, page by page, and the cursor moves', async () => {
    const [a, b, c] = await Promise.all([
      insertTenant(pool, 'pro'),
      insertTenant(pool, 'pro'),
      insertTenant(pool, 'pro'),
    ]);
    // A key limited to these tenants, so other tests' tenants in the shared database stay out of the answer.
    const key = await createKey('--scope', 'access:read', '--tenants', [a.id, b.id, c.id].join(','));
    const start = await drain(key);
    expect(start.seen).toEqual([]);

    await hold(a.id, 'overage', { rateLimitPercent: 10 }, 'usage at 150% of cap');
    await hold(c.id, 'dunning', { suspended: true }, 'dunning suspension: payment not collected');
    const first = await sync(key, start.cursor, 1);
    expect(first.hasMore).toBe(true);
    expect(first.tenants).toHaveLength(1);
    const second = await sync(key, first.nextCursor, 1);
    expect(second.hasMore).toBe(false);
    const changed = [...first.tenants, ...second.tenants].sort((x, y) =>
      x.tenantId.localeCompare(y.tenantId),
    );
    expect(changed.map((t) => [t.tenantId, t.state])).toEqual(
      [
        [a.id, 'throttled'],
        [c.id, 'suspended'],
      ].sort((x, y) => x[0]!.localeCompare(y[0]!)),
    );
    expect(second.nextCursor).not.toBe(start.cursor);

    // Nothing changed since: nothing listed; then only b.
    expect((await sync(key, second.nextCursor)).tenants).toEqual([]);
    await hold(b.id, 'operator', { apiBlocked: true }, 'abuse report 18');
    const third = await drain(key, second.nextCursor);
    expect(third.seen.map((t) => [t.tenantId, t.state])).toEqual([[b.id, 'blocked']]);
  });

  it('hands out a tenant once when a hold on it ends by its until', async () => {
    const { id } = await insertTenant(pool, 'pro');
    const key = await createKey('--scope', 'access:read', '--tenants', id);
    await hold(
      id,
      'operator',
      { apiBlocked: true, until: new Date(Date.now() + 1500).toISOString() },
      'maintenance',
    );
    const before = await drain(key);
    expect(before.seen.map((t) => t.state)).toEqual(['blocked']);
    expect((await drain(key, before.cursor)).seen).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const ended = await drain(key, before.cursor);
    expect(ended.seen.map((t) => [t.tenantId, t.state])).toEqual([[id, 'active']]);
    expect((await drain(key, ended.cursor)).seen).toEqual([]);
  });

  it('refuses a cursor it did not give out (400, saying what to do) and a key without access:read (403)', async () => {
    const bad = await call('GET', '/v1/access?changedSince=not-a-cursor');
    expect(bad.status).toBe(400);
    expect((bad.body as { message: string }).message).toMatch(/nextCursor/);
    expect((await call('GET', '/v1/access', usageOnly)).status).toBe(403);
    expect((await call('GET', '/v1/access', null)).status).toBe(401);
  });
});

describe('in-app notices', () => {
  it('lists the open notices with their dates, and an acknowledged one is no longer open', async () => {
    const { id } = await insertTenant(pool, 'pro');
    await pool.query(
      `INSERT INTO dashboard_notifications (tenant_id, kind, message, idempotency_key)
       VALUES ($1, 'downgradeWarning', 'Service Limits Ahead - Account #' || $1, 'warning-' || $1)`,
      [id],
    );
    await hold(id, 'dunning', { rateLimitPercent: 10 }, 'dunning softLimit: payment not collected');
    const listed = await call('GET', `/v1/tenants/${id}/notices`);
    expect(listed.status).toBe(200);
    const { notices } = listed.body as { tenantId: string; notices: Notice[] };
    expect(notices.map((n) => n.kind)).toEqual(['downgradeWarning', 'softLimit']);
    for (const n of notices) expect(Date.parse(n.createdAt)).toBeLessThanOrEqual(Date.now());
    const warning = notices[0]!;

    // access:read alone may not acknowledge.
    expect((await call('POST', `/v1/tenants/${id}/notices/${warning.id}/ack`)).status).toBe(403);
    const acked = await call('POST', `/v1/tenants/${id}/notices/${warning.id}/ack`, dashboard);
    expect(acked.status).toBe(200);
    expect(acked.body).toMatchObject({
      id: warning.id,
      kind: 'downgradeWarning',
      dismissedBy: expect.stringMatching(/^api-key:/),
    });
    // Again: the same answer, not an error.
    const twice = await call('POST', `/v1/tenants/${id}/notices/${warning.id}/ack`, dashboard);
    expect(twice.status).toBe(200);
    expect((twice.body as Notice).dismissedAt).toBe((acked.body as Notice).dismissedAt);

    expect(
      ((await call('GET', `/v1/tenants/${id}/notices`)).body as { notices: Notice[] }).notices.map(
        (n) => n.kind,
      ),
    ).toEqual(['softLimit']);
    expect((await access(id)).notices.map((n) => n.kind)).toEqual(['softLimit']);
  });

  it("answers 404 for another tenant's notice, an unknown notice or tenant", async () => {
    const [a, b] = await Promise.all([insertTenant(pool, 'pro'), insertTenant(pool, 'pro')]);
    await hold(a.id, 'dunning', { rateLimitPercent: 10 }, 'dunning softLimit: payment not collected');
    const [notice] = ((await call('GET', `/v1/tenants/${a.id}/notices`)).body as { notices: Notice[] })
      .notices;
    expect((await call('POST', `/v1/tenants/${b.id}/notices/${notice!.id}/ack`, dashboard)).status).toBe(404);
    expect((await call('POST', `/v1/tenants/${a.id}/notices/999999999999/ack`, dashboard)).status).toBe(404);
    expect((await call('GET', '/v1/tenants/no-such-tenant/notices')).status).toBe(404);
    expect((await call('POST', `/v1/tenants/${a.id}/notices/${notice!.id}/ack`, null)).status).toBe(401);
  });
});
