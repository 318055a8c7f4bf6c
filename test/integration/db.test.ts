// db/ against a real PostgreSQL: migrations (idempotent, concurrent), table constraints, the demo seed and the tenants repository.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Client, type Pool } from 'pg';
import { migrate, MigrationError, MIGRATIONS_DIR, MIGRATIONS_TABLE } from '../../db/migrate';
import { createPool, describeDatabaseUrl } from '../../db/pool';
import { DEMO_TENANT_IDS, seedDemoTenants } from '../../db/seed';
import { addTenant, getTenant, listTenants, TenantConflictError, TenantInputError } from '../../db/tenants';

const envUrl = process.env.BILLOPS_TEST_DATABASE_URL;
if (!envUrl) {
  throw new Error(
    'BILLOPS_TEST_DATABASE_URL is not set: these tests need a real, migrated PostgreSQL database. ' +
      'Run them with `npm test` (its globalSetup starts one) or set the variable yourself.',
  );
}
const databaseUrl: string = envUrl;

const EXPECTED_TABLES = [
  'billing_holds',
  'credits_adjustments',
  'dashboard_notifications',
  'decisions',
  'dunning_records',
  'email_outbox',
  'invoices',
  'payment_transactions',
  'rates',
  'rollup_runs',
  'service_control_changes',
  'service_controls',
  'subscriptions',
  'tenants',
  'usage_caps',
  'usage_events',
  'usage_rollups',
  'webhook_events',
];
const MIGRATION_NAMES = readdirSync(MIGRATIONS_DIR)
  .filter((f) => f.endsWith('.sql'))
  .map((f) => f.replace(/\.sql$/, ''))
  .sort();

const suffix = () => randomBytes(4).toString('hex');

/** The same server, another database. */
function urlForDatabase(name: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

let pool: Pool;

beforeAll(() => {
  pool = createPool(databaseUrl, { max: 4 });
});

afterAll(async () => {
  await pool.end();
});

/** A tenant of its own for each test that needs one, so suites sharing the database never collide. */
async function insertTenant(overrides: Record<string, string> = {}): Promise<string> {
  const row = {
    id: `dbtest-${suffix()}`,
    name: 'DB Test Ltd',
    tier: 'pro',
    payment_processor: 'stripe',
    ...overrides,
  };
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, currency, payment_processor)
     VALUES ($1, $2, $3, 'ops@dbtest.example', 'billing@dbtest.example', 'USD', $4)`,
    [row.id, row.name, row.tier, row.payment_processor],
  );
  return row.id;
}

describe('migrate()', () => {
  it('applies nothing the second time, and has recorded every migration file', async () => {
    await migrate(databaseUrl); // globalSetup has normally run it already; then this applies nothing too
    expect(await migrate(databaseUrl)).toEqual([]);
    const { rows } = await pool.query<{ name: string }>(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY name`);
    expect(rows.map((r) => r.name)).toEqual(MIGRATION_NAMES);
  });

  it('has created every table', async () => {
    const { rows } = await pool.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1)`,
      [EXPECTED_TABLES],
    );
    expect(rows.map((r) => r.table_name).sort()).toEqual(EXPECTED_TABLES);
  });

  it('applies each migration exactly once when two runs start together on a fresh database', async () => {
    const name = `billops_dbtest_${suffix()}`;
    const admin = new Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name}`);
      const freshUrl = urlForDatabase(name);
      const [first, second] = await Promise.all([migrate(freshUrl), migrate(freshUrl)]);
      // The second waits on the advisory lock, then finds nothing left to do.
      expect([first, second].sort((a, b) => b.length - a.length)).toEqual([MIGRATION_NAMES, []]);

      const fresh = new Client({ connectionString: freshUrl });
      await fresh.connect();
      try {
        const { rows } = await fresh.query<{ name: string }>(
          `SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY id`,
        );
        expect(rows.map((r) => r.name)).toEqual(MIGRATION_NAMES);
      } finally {
        await fresh.end();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('names host, port and database of an unreachable server, never the password', async () => {
    const failure: unknown = await migrate('postgres://billops:s3cret-pw@127.0.0.1:1/nowhere').catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(MigrationError);
    expect(failure).toMatchObject({ stage: 'connect' });
    const message = (failure as Error).message;
    expect(message).toMatch(/Cannot connect to PostgreSQL at 127\.0\.0\.1:1\/nowhere.*DATABASE_URL/);
    expect(message).not.toContain('s3cret-pw');
  });
});

describe('describeDatabaseUrl()', () => {
  it('keeps host, port and database and drops the credentials', () => {
    expect(describeDatabaseUrl('postgres://u:p%40ss@db.internal:6543/billops?sslmode=require')).toBe(
      'db.internal:6543/billops',
    );
    expect(describeDatabaseUrl('postgresql://localhost/billops')).toBe('localhost:5432/billops');
    expect(describeDatabaseUrl('not a url')).toBe('(an unparsable database URL)');
  });
});

describe('constraints', () => {
  it("rejects a tenant on tier 'gold'", async () => {
    await expect(insertTenant({ tier: 'gold' })).rejects.toMatchObject({
      code: '23514',
      constraint: 'tenants_tier_known',
    });
  });

  it('rejects a free tenant with a payment processor (no payment processing on Free)', async () => {
    await expect(insertTenant({ tier: 'free', payment_processor: 'stripe' })).rejects.toMatchObject({
      code: '23514',
      constraint: 'tenants_free_tier_has_no_processor',
    });
  });

  it('rejects negative amounts', async () => {
    const tenantId = await insertTenant();
    await expect(
      pool.query(
        `INSERT INTO payment_transactions (tenant_id, processor, reference, amount_minor, currency)
         VALUES ($1, 'paystack', $2, -100, 'NGN')`,
        [tenantId, `ref-${suffix()}`],
      ),
    ).rejects.toMatchObject({ code: '23514', constraint: 'payment_transactions_amount_positive' });
    await expect(
      pool.query(
        `INSERT INTO invoices (tenant_id, period_start, period_end, status, subtotal_minor, currency)
         VALUES ($1, now() - interval '1 month', now(), 'open', -1, 'USD')`,
        [tenantId],
      ),
    ).rejects.toMatchObject({ code: '23514', constraint: 'invoices_subtotal_not_negative' });
    await expect(
      pool.query(
        `INSERT INTO credits_adjustments (tenant_id, kind, amount_minor, currency, reason, idempotency_key, created_by)
         VALUES ($1, 'credit', -500, 'USD', 'overbilled', $2, 'test')`,
        [tenantId, `credit-${suffix()}`],
      ),
    ).rejects.toMatchObject({ code: '23514', constraint: 'credits_adjustments_amount_positive' });
  });

  it('rejects a second webhook event with the same provider and event key', async () => {
    const key = `evt_${suffix()}`;
    const insert = (provider: string) =>
      pool.query(
        `INSERT INTO webhook_events (provider, event_key, event_type, payload, signature_valid)
         VALUES ($1, $2, 'invoice.payment_failed', '{}', true)`,
        [provider, key],
      );
    await insert('stripe');
    await expect(insert('stripe')).rejects.toMatchObject({
      code: '23505',
      constraint: 'webhook_events_event_key_unique',
    });
    await expect(insert('paystack')).resolves.toMatchObject({ rowCount: 1 });
  });

  it('rejects a second email outbox row with the same idempotency key', async () => {
    const tenantId = await insertTenant();
    const key = `dunning-${tenantId}/warning-email`;
    const insert = () =>
      pool.query(
        `INSERT INTO email_outbox (idempotency_key, tenant_id, to_address, subject, body_text, template)
         VALUES ($1, $2, 'billing@dbtest.example', 'Payment Issue', 'body', 'paymentFailureNotice')`,
        [key, tenantId],
      );
    await insert();
    await expect(insert()).rejects.toMatchObject({
      code: '23505',
      constraint: 'email_outbox_idempotency_key_unique',
    });
  });

  it('keeps service controls in range and records every change in the append-only history', async () => {
    const tenantId = await insertTenant();
    await expect(
      pool.query('UPDATE service_controls SET rate_limit_percent = 150 WHERE tenant_id = $1', [tenantId]),
    ).rejects.toMatchObject({ code: '23514', constraint: 'service_controls_rate_limit_percent_range' });

    const softLimit = () =>
      pool.query(
        `UPDATE service_controls SET rate_limit_percent = 10, reason = 'soft limit', updated_by = 'dunning'
         WHERE tenant_id = $1`,
        [tenantId],
      );
    await softLimit();
    await softLimit(); // the same state again: no second history row
    const { rows } = await pool.query<{ rate_limit_percent: number; changed_by: string }>(
      'SELECT rate_limit_percent, changed_by FROM service_control_changes WHERE tenant_id = $1 ORDER BY id',
      [tenantId],
    );
    expect(rows).toEqual([
      { rate_limit_percent: 100, changed_by: 'system' },
      { rate_limit_percent: 10, changed_by: 'dunning' },
    ]);
    await expect(
      pool.query('DELETE FROM service_control_changes WHERE tenant_id = $1', [tenantId]),
    ).rejects.toThrow(/append-only/);
  });

  it('accepts usage rollups only on the hour', async () => {
    const tenantId = await insertTenant();
    const insert = (hour: string) =>
      pool.query(
        `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, 'api_calls', $2, 10, 2)`,
        [tenantId, hour],
      );
    await expect(insert('2026-01-01T10:00:00Z')).resolves.toMatchObject({ rowCount: 1 });
    await expect(insert('2026-01-01T10:30:00Z')).rejects.toMatchObject({
      constraint: 'usage_rollups_hour_aligned',
    });
  });
});

describe('seedDemoTenants()', () => {
  const demoRowCounts = async () => {
    const { rows } = await pool.query<{ subscriptions: number; invoices: number; rates: number }>(
      `SELECT (SELECT count(*) FROM subscriptions WHERE tenant_id = ANY($1)) AS subscriptions,
              (SELECT count(*) FROM invoices WHERE tenant_id = ANY($1)) AS invoices,
              (SELECT count(*) FROM rates) AS rates`,
      [DEMO_TENANT_IDS],
    );
    return rows[0];
  };

  it('is idempotent and seeds a tenant of each tier with controls, a live subscription and open invoices', async () => {
    const first = await seedDemoTenants(pool);
    expect(first).toBeLessThanOrEqual(DEMO_TENANT_IDS.length);
    const counts = await demoRowCounts();
    expect(await seedDemoTenants(pool)).toBe(0);
    expect(await demoRowCounts()).toEqual(counts);

    const { rows } = await pool.query<{
      id: string;
      tier: string;
      controls: number;
      live: number;
      open: number;
    }>(
      `SELECT t.id, t.tier,
              (SELECT count(*) FROM service_controls c WHERE c.tenant_id = t.id) AS controls,
              (SELECT count(*) FROM subscriptions s WHERE s.tenant_id = t.id AND s.status <> 'canceled') AS live,
              (SELECT count(*) FROM invoices i WHERE i.tenant_id = t.id AND i.status = 'open') AS open
       FROM tenants t WHERE t.id = ANY($1) ORDER BY t.id`,
      [DEMO_TENANT_IDS],
    );
    expect(rows.map((r) => r.id)).toEqual([...DEMO_TENANT_IDS].sort());
    expect(new Set(rows.map((r) => r.tier))).toEqual(new Set(['free', 'pro', 'enterprise']));
    expect(rows.every((r) => r.controls === 1 && r.live === 1)).toBe(true);
    expect(rows.reduce((sum, r) => sum + r.open, 0)).toBeGreaterThanOrEqual(2);

    const umbrella = await getTenant(pool, 'umbrella');
    expect(umbrella).toMatchObject({ tier: 'pro', paymentProcessor: 'paystack', currency: 'NGN' });
    const globex = await getTenant(pool, 'globex');
    expect(globex?.accountManagerEmail).toEqual(expect.stringContaining('@'));
  });
});

describe('tenants repository', () => {
  it('rejects bad input with a readable message naming each field', async () => {
    const attempt = addTenant(pool, {
      id: `bad-${suffix()}`,
      name: 'Bad',
      tier: 'gold',
      email: 'not-an-email',
    });
    await expect(attempt).rejects.toThrow(TenantInputError);
    await expect(attempt).rejects.toThrow(
      /invalid tenant: tier: must be one of free, pro, enterprise \(got "gold"\); email: must be an email address/,
    );
    await expect(addTenant(pool, {})).rejects.toThrow(
      /id: is required; name: is required; tier: is required/,
    );
    await expect(
      addTenant(pool, {
        id: `free-${suffix()}`,
        name: 'Free',
        tier: 'free',
        email: 'a@b.example',
        paymentProcessor: 'stripe',
      }),
    ).rejects.toThrow(/paymentProcessor: the free tier has no payment processing/);
  });

  it('adds a tenant with defaults and caps, reads it back, lists it, and refuses a duplicate', async () => {
    const id = `dbtest-${suffix()}`;
    const added = await addTenant(pool, {
      id,
      name: 'Newco',
      tier: 'enterprise',
      email: 'ops@newco.example',
      currency: 'eur',
      usageCaps: { api_calls: 2_000_000 },
    });
    expect(added).toMatchObject({
      id,
      tier: 'enterprise',
      billingEmail: 'ops@newco.example',
      currency: 'EUR',
      paymentProcessor: 'stripe',
      usageCaps: { api_calls: 2_000_000 },
      normalCapacityRps: 100,
      deletedAt: null,
    });
    expect(added.createdAt).toBeInstanceOf(Date);
    expect(await getTenant(pool, id)).toEqual(added);
    expect((await listTenants(pool)).map((t) => t.id)).toContain(id);
    await expect(addTenant(pool, { id, name: 'Again', tier: 'pro', email: 'x@y.example' })).rejects.toThrow(
      TenantConflictError,
    );
    expect(await getTenant(pool, `missing-${suffix()}`)).toBeUndefined();
  });
});
