// A real gateway in front of a product: Debian's nginx with the shipped deploy/gateway/ configuration asks billops'
// ingress (auth_request to /v1/tenants/{id}/access/decision) whether to serve each request. An active tenant passes,
// a suspended one gets 402 with its payment link, a deleted one 403, a throttled one is held near 10 % of the normal
// rate (limit_req), and with billops unreachable the gateway fails open or closed as configured.
import { createServer, type Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'pg';
import { createServiceControlActivities } from '../../activities/serviceControls';
import { createPool } from '../../db/pool';
import { buildIngress } from '../../ingress/server';
import { operatorEnv, runBillops } from '../support/billopsCli';
import { insertOpenInvoice, insertTenant } from '../support/dunningFixtures';
import { freePort, startGateway, type Gateway } from '../support/nginx';
import { testEnv } from '../support/testRuntime';

const TENANT_RATE = 20;
/** The policy's downgrade.softLimitRatePercent (10) of the normal rate. */
const THROTTLED_RATE = 2;

let pool: Pool;
let client: Client;
let ingress: FastifyInstance;
let product: Server;
let productAddr: string;
let gatewayKey: string;
let closed: Gateway;
/** host:port of billops' ingress. */
let billopsAddr: string;

async function createKey(...flags: string[]): Promise<string> {
  const run = await runBillops(['keys', 'create', ...flags, '--json'], operatorEnv('gateway'));
  if (run.code !== 0) throw new Error(`billops keys create exited ${run.code}: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { key: string }).key;
}

/** Restricts a tenant the way its workflow would, through the service-control activity. */
async function hold(
  tenantId: string,
  source: 'dunning' | 'overage',
  fields: { rateLimitPercent?: number; suspended?: boolean },
) {
  await createServiceControlActivities({ pool }).applyServiceControls({
    tenantId,
    workflowId: `${source}-${tenantId}`,
    operator: 'billops',
    reason: `${source} test`,
    source,
    ...fields,
  });
}

async function through(gateway: Gateway, tenantId: string) {
  const res = await fetch(`${gateway.url}/v1/reports`, { headers: { 'X-Tenant-Id': tenantId } });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** As many requests as the client manages in `ms`, four at a time; how many the product answered. */
async function served(
  gateway: Gateway,
  tenantId: string,
  ms: number,
): Promise<{ ok: number; limited: number }> {
  const until = Date.now() + ms;
  const counts = { ok: 0, limited: 0 };
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (Date.now() < until) {
        const { status } = await through(gateway, tenantId);
        if (status === 200) counts.ok++;
        else if (status === 429) counts.limited++;
        else throw new Error(`unexpected ${status} for ${tenantId}`);
      }
    }),
  );
  return counts;
}

beforeAll(async () => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  client = new Client({ connection: await Connection.connect({ address: testEnv('temporalAddress') }) });
  gatewayKey = await createKey('--scope', 'access:read', '--name', 'nginx gateway');
  ingress = buildIngress({ client, pool, access: { maxAgeSeconds: 0 } });
  billopsAddr = new URL(await ingress.listen({ host: '127.0.0.1', port: 0 })).host;
  product = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ served: req.url, tenant: req.headers['x-tenant-id'] }));
  });
  await new Promise<void>((resolve) => product.listen(0, '127.0.0.1', resolve));
  productAddr = `127.0.0.1:${(product.address() as { port: number }).port}`;
  closed = await startGateway({
    billopsAddr,
    accessKey: gatewayKey,
    productAddr,
    tenantRate: TENANT_RATE,
    throttledRate: THROTTLED_RATE,
    whenUnreachable: 'closed',
  });
});

afterAll(async () => {
  await closed?.stop();
  await ingress?.close();
  await new Promise((r) => product?.close(r));
  await client?.connection.close();
  await pool?.end();
});

describe('nginx with deploy/gateway/ in front of the product', () => {
  it('serves an active tenant, answers 402 with the payment link for a suspended one, 403 for a deleted or unknown one', async () => {
    const active = await insertTenant(pool, 'pro');
    const ok = await through(closed, active.id);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ served: '/v1/reports', tenant: active.id });

    const suspended = await insertTenant(pool, 'pro');
    const { invoiceId } = await insertOpenInvoice(pool, suspended.id);
    const link = `https://pay.example.test/${invoiceId}`;
    await pool.query('UPDATE invoices SET hosted_invoice_url = $2 WHERE id = $1', [invoiceId, link]);
    await hold(suspended.id, 'dunning', { rateLimitPercent: 10, suspended: true });
    const refused = await through(closed, suspended.id);
    expect(refused.status).toBe(402);
    expect(JSON.parse(refused.body)).toEqual({
      error: 'payment required',
      state: 'suspended',
      paymentUrl: link,
    });
    expect(refused.headers.get('billops-payment-url')).toBe(link);

    const deleted = await insertTenant(pool, 'pro');
    await pool.query('UPDATE tenants SET deleted_at = now() WHERE id = $1', [deleted.id]);
    expect((await through(closed, deleted.id)).status).toBe(403);
    const unknown = await through(closed, 'no-such-tenant');
    expect(unknown.status).toBe(403);
    expect(unknown.body).toContain('unknown tenant');
  });

  it('holds a throttled tenant near 10 % of the rate an active one gets', async () => {
    const active = await insertTenant(pool, 'pro');
    const throttled = await insertTenant(pool, 'pro');
    await hold(throttled.id, 'overage', { rateLimitPercent: 10 });
    // Side by side in the same two seconds, so the machine's speed affects both alike.
    const [normal, slowed] = await Promise.all([
      served(closed, active.id, 2_000),
      served(closed, throttled.id, 2_000),
    ]);
    expect(slowed.limited).toBeGreaterThan(0);
    const ratio = slowed.ok / normal.ok;
    expect(ratio).toBeGreaterThan(0.03);
    expect(ratio).toBeLessThan(0.25);
  });

  it('with billops unreachable, fails closed (503) or open (served) as configured', async () => {
    const tenant = await insertTenant(pool, 'pro');
    const nowhere = `127.0.0.1:${await freePort()}`;
    const settings = {
      billopsAddr: nowhere,
      accessKey: gatewayKey,
      productAddr,
      tenantRate: TENANT_RATE,
      throttledRate: THROTTLED_RATE,
    };
    const failClosed = await startGateway({ ...settings, whenUnreachable: 'closed' });
    const failOpen = await startGateway({ ...settings, whenUnreachable: 'open' });
    try {
      const refused = await through(failClosed, tenant.id);
      expect(refused.status).toBe(503);
      expect(refused.body).toContain('access cannot be checked');
      const servedAnyway = await through(failOpen, tenant.id);
      expect(servedAnyway.status).toBe(200);
    } finally {
      await failClosed.stop();
      await failOpen.stop();
    }
  });

  it('a gateway key billops refuses is a configuration error (503), never a payment demand', async () => {
    const tenant = await insertTenant(pool, 'pro');
    const usageKey = await createKey('--scope', 'usage:read', '--name', 'wrong scope for a gateway');
    const misconfigured = await startGateway({
      billopsAddr,
      accessKey: usageKey,
      productAddr,
      tenantRate: TENANT_RATE,
      throttledRate: THROTTLED_RATE,
      whenUnreachable: 'closed',
    });
    try {
      const res = await through(misconfigured, tenant.id);
      expect(res.status).toBe(503);
      expect(res.body).toContain('gateway key is refused');
    } finally {
      await misconfigured.stop();
    }
  });
});
