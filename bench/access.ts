// Benchmark: GET /v1/tenants/{id}/access through the HTTP ingress against a bare `SELECT` of the same tenant's
// service_controls row through pg, in the same run on the same database.
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import type { Pool } from 'pg';
import { createApiKey } from '../db/apiKeys';
import { createPool } from '../db/pool';
import { changeServiceControlHold } from '../db/serviceControls';
import { buildIngress } from '../ingress/server';
import { parseNumberOptions } from './options';
import { openScratchDatabase } from './scratchDatabase';
import { machine, progress, round } from './support';

const SPECS = {
  tenants: { min: 10, max: 1_000_000, default: 2000 },
  requests: { min: 100, max: 10_000_000, default: 4000 },
  concurrency: { min: 1, max: 1024, default: 16 },
  warmup: { min: 0, max: 1_000_000, default: 500 },
  repeat: { min: 1, max: 20, default: 3 },
};

export const ACCESS_USAGE =
  'access [--tenants N] [--requests N] [--concurrency N] [--warmup N] [--repeat N]   (defaults 2000, 4000 per side per round, 16, 500, 3)';

/** Both sides use pools of this size, so neither has more connections to the database. */
const POOL_SIZE = 10;

interface Figures {
  p50Ms: number;
  p99Ms: number;
  requestsPerSecond: number;
}

/** `requests` calls, `concurrency` at a time, each on a tenant in turn; latency of each and the throughput. */
async function load(
  tenants: string[],
  requests: number,
  concurrency: number,
  call: (tenantId: string) => Promise<void>,
): Promise<Figures> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const tenantId = tenants[next++ % tenants.length]!;
        const t0 = performance.now();
        await call(tenantId);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), requestsPerSecond: round(requests / seconds, 1) };
}

/** Tenants, a tenth of them throttled by an overage hold, a tenth blocked with an unpaid invoice and a notice. */
async function seed(pool: Pool, count: number): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor)
     SELECT 'bench-' || n, 'bench ' || n, 'pro', 'billing@bench-' || n || '.test', 'billing@bench-' || n || '.test',
            'USD', 'stripe'
     FROM generate_series(1, $1) AS n RETURNING id`,
    [count],
  );
  const ids = rows.map((r) => r.id);
  for (const [i, tenantId] of ids.entries()) {
    if (i % 10 === 1) {
      await changeServiceControlHold(pool, {
        tenantId,
        source: 'overage',
        workflowId: `overage-${tenantId}`,
        operator: 'bench',
        reason: 'usage at 120% of cap',
        fields: { rateLimitPercent: 10 },
      });
    } else if (i % 10 === 2) {
      await changeServiceControlHold(pool, {
        tenantId,
        source: 'dunning',
        workflowId: `dunning-${tenantId}`,
        operator: 'bench',
        reason: 'dunning hardLimit: payment not collected',
        fields: { rateLimitPercent: 10, apiBlocked: true },
      });
      await pool.query(
        `INSERT INTO invoices (tenant_id, period_start, period_end, status, subtotal_minor, total_minor, currency,
                               hosted_invoice_url, due_at)
         VALUES ($1, now() - interval '1 month', now(), 'open', 4900, 4900, 'USD', 'https://pay.bench.test/' || $1, now())`,
        [tenantId],
      );
      await pool.query(
        `INSERT INTO dashboard_notifications (tenant_id, kind, message) VALUES ($1, 'hardLimit', 'New API requests blocked')`,
        [tenantId],
      );
    }
  }
  await pool.query('VACUUM ANALYZE');
  return ids;
}

/** Runs the benchmark and prints its JSON line on stdout; progress goes to stderr. */
export async function accessBench(argv: string[]): Promise<Record<string, unknown>> {
  const opts = parseNumberOptions(argv, SPECS);
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const database = await openScratchDatabase('billops_bench_access');
  // The scratch database is dropped with FORCE at the end: a session it ends is no failure of the benchmark.
  const quiet = { max: POOL_SIZE, onIdleError: () => undefined };
  const pool = createPool(database.url, quiet);
  const bare = createPool(database.url, quiet);
  // Only the access routes are called: no Temporal client is needed.
  const app = buildIngress({ client: {} as never, pool });
  try {
    progress(`seeding ${opts.tenants} tenants`);
    const tenants = await seed(pool, opts.tenants);
    const { secret } = await createApiKey(pool, { name: 'bench', scopes: ['access:read'], tenants: null });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const headers = { authorization: `Bearer ${secret}` };

    const sides = {
      bare: async (tenantId: string) => {
        const { rows } = await bare.query('SELECT * FROM service_controls WHERE tenant_id = $1', [tenantId]);
        if (rows.length !== 1) throw new Error(`bare SELECT found ${rows.length} rows for ${tenantId}`);
      },
      access: async (tenantId: string) => {
        const res = await fetch(`${base}/v1/tenants/${tenantId}/access`, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`GET access of ${tenantId} answered ${res.status}`);
      },
    };
    progress(`warming up: ${opts.warmup} calls per side`);
    for (const call of Object.values(sides)) await load(tenants, opts.warmup, opts.concurrency, call);

    // Rounds take turns, so a burst of other work on the machine hits both sides alike; the best round counts.
    const rounds: Record<keyof typeof sides, Figures[]> = { bare: [], access: [] };
    for (let r = 1; r <= opts.repeat; r++) {
      for (const name of ['bare', 'access'] as const) {
        const figures = await load(tenants, opts.requests, opts.concurrency, sides[name]);
        rounds[name].push(figures);
        progress(
          `round ${r} ${name}: ${figures.requestsPerSecond} req/s, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms`,
        );
      }
    }
    const best = (list: Figures[]) =>
      list.reduce((a, b) => (b.requestsPerSecond > a.requestsPerSecond ? b : a));
    const bareBest = best(rounds.bare);
    const accessBest = best(rounds.access);
    const line = {
      bench: 'access',
      tenants: opts.tenants,
      requestsPerRound: opts.requests,
      concurrency: opts.concurrency,
      rounds: opts.repeat,
      bare: { ...bareBest, what: 'SELECT * FROM service_controls WHERE tenant_id = $1 through pg' },
      access: { ...accessBest, what: 'GET /v1/tenants/{id}/access over keep-alive HTTP, API key checked' },
      ratios: {
        accessOverBareThroughput: round(accessBest.requestsPerSecond / bareBest.requestsPerSecond),
        accessOverBareP50: round(accessBest.p50Ms / bareBest.p50Ms, 2),
      },
      database: { where: database.description, postgres: database.serverVersion },
      machine: machine(loadAtStart),
      totalSeconds: round((Date.now() - started) / 1000, 1),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    return line;
  } finally {
    await app.close();
    await bare.end();
    await pool.end();
    await database.close();
  }
}

if (require.main === module) {
  accessBench(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
