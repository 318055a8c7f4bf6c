// The backfill benchmark's events: generated set-based in PostgreSQL and loaded like a bulk import, the schema checked after.
import type { Client } from 'pg';
import { METERS, type Plan } from './backfillPlan';
import { benchClient, progress } from './support';

/** Events generated per INSERT statement; two statements run at once. */
const GENERATE_BATCH = 1_000_000;

/**
 * Tenants × meters × timestamps, set-based with generate_series and deterministic: event i (id i + 1) happens at
 * window start + i/N of the window plus under a second of jitter; its tenant, meter and quantity (whole thousandths,
 * below 100) come from hashint8extended(i). Loaded like a bulk import: usage_events' secondary indexes and its
 * unique and foreign-key constraints are dropped, the rows inserted by two sessions at once, then everything is
 * rebuilt from its own catalog definition and checked to be exactly as the migrations made it.
 */
export async function generateEvents(url: string, admin: Client, plan: Plan): Promise<number> {
  const t0 = performance.now();
  progress(
    `generating ${plan.events} events: ${plan.tenants} tenants × ${METERS.length} meters over ${plan.window.from}..${plan.window.to}`,
  );
  await admin.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email)
     SELECT 'bench-t' || lpad(t::text, 4, '0'), 'Bench tenant ' || t, 'pro',
            'ops+' || t || '@bench.example', 'billing+' || t || '@bench.example'
     FROM generate_series(0, $1::int - 1) AS t`,
    [plan.tenants],
  );
  const schemaBefore = await schemaOf(admin);
  const rebuild = await dropForLoad(admin);
  const spanMs = Date.parse(plan.window.to) - Date.parse(plan.window.from);
  const batches: Array<[number, number]> = [];
  for (let lo = 0; lo < plan.events; lo += GENERATE_BATCH) {
    batches.push([lo, Math.min(lo + GENERATE_BATCH, plan.events) - 1]);
  }
  let done = 0;
  await inParallel(url, 2, async (client) => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      await client.query(
        `INSERT INTO usage_events (id, tenant_id, meter, quantity, occurred_at, idempotency_key, received_at)
         OVERRIDING SYSTEM VALUE
         SELECT i + 1, 'bench-t' || lpad((h % $4)::text, 4, '0'), ($5::text[])[((h / 1000003) % $6)::int + 1],
                ((h / 7919) % 100000) * 0.001, at, 'bench-' || i, at + interval '2 seconds'
         FROM generate_series($1::bigint, $2::bigint) AS i,
              LATERAL (SELECT hashint8extended(i, 20261122) & 9223372036854775807 AS h) AS hashed,
              LATERAL (SELECT $7::timestamptz + interval '1 millisecond' *
                         least(i * $8::bigint / $3::bigint + (h / 13) % 1000, $8::bigint - 1) AS at) AS timed`,
        [batch[0], batch[1], plan.events, plan.tenants, METERS, METERS.length, plan.window.from, spanMs],
      );
      done += batch[1] - batch[0] + 1;
      progress(`generated ${done}/${plan.events} events`);
    }
  });
  await admin.query(`SELECT setval(pg_get_serial_sequence('usage_events', 'id'), $1)`, [plan.events]);
  progress(`rebuilding ${rebuild.indexes.length} indexes and ${rebuild.constraints.length} constraints`);
  const indexes = [...rebuild.indexes];
  await inParallel(url, 2, async (client) => {
    for (let sql = indexes.shift(); sql; sql = indexes.shift()) await client.query(sql);
  });
  for (const sql of rebuild.constraints) await admin.query(sql);
  const schemaAfter = await schemaOf(admin);
  if (schemaAfter !== schemaBefore) {
    throw new Error(
      `usage_events differs from its migrated definition after the load:\n${schemaBefore}\n---\n${schemaAfter}`,
    );
  }
  return performance.now() - t0;
}

/** Runs `work` on `sessions` connections at once. */
async function inParallel(
  url: string,
  sessions: number,
  work: (client: Client) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      const client = benchClient(url, 'billops-bench-generate');
      await client.connect();
      try {
        await work(client);
      } finally {
        await client.end();
      }
    }),
  );
}

/** Every index and constraint of usage_events, as PostgreSQL prints them. */
async function schemaOf(admin: Client): Promise<string> {
  const { rows } = await admin.query<{ def: string }>(
    `SELECT 'index ' || pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = 'usage_events'::regclass
     UNION ALL
     SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid) || CASE WHEN convalidated THEN '' ELSE ' NOT VALID' END
     FROM pg_constraint WHERE conrelid = 'usage_events'::regclass
     ORDER BY 1`,
  );
  return rows.map((row) => row.def).join('\n');
}

/**
 * Drops what slows a bulk insert (every index but the primary key, unique and foreign-key constraints) and returns
 * the statements that put each back: indexes first (unique constraints as an index, then attached to it), then the
 * constraints. Anything that cannot be dropped (another table's key depends on it) stays.
 */
async function dropForLoad(admin: Client): Promise<{ indexes: string[]; constraints: string[] }> {
  const { rows } = await admin.query<{
    kind: 'index' | 'unique' | 'foreign';
    name: string;
    index_def: string | null;
    constraint_def: string | null;
  }>(
    `SELECT 'index' AS kind, c.relname AS name, pg_get_indexdef(i.indexrelid) AS index_def, NULL AS constraint_def
     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
     WHERE i.indrelid = 'usage_events'::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid)
     UNION ALL
     SELECT CASE k.contype WHEN 'u' THEN 'unique' ELSE 'foreign' END, k.conname,
            CASE k.contype WHEN 'u' THEN pg_get_indexdef(k.conindid) END, pg_get_constraintdef(k.oid)
     FROM pg_constraint k
     WHERE k.conrelid = 'usage_events'::regclass AND k.contype IN ('u', 'f') AND k.convalidated`,
  );
  const indexes: string[] = [];
  const constraints: string[] = [];
  const attach: string[] = [];
  for (const row of rows) {
    const name = `"${row.name.replace(/"/g, '""')}"`;
    try {
      if (row.kind === 'index') {
        await admin.query(`DROP INDEX ${name}`);
        indexes.push(row.index_def!);
      } else {
        await admin.query(`ALTER TABLE usage_events DROP CONSTRAINT ${name}`);
        if (row.kind === 'unique') {
          indexes.push(row.index_def!);
          attach.push(`ALTER TABLE usage_events ADD CONSTRAINT ${name} UNIQUE USING INDEX ${name}`);
        } else {
          constraints.push(`ALTER TABLE usage_events ADD CONSTRAINT ${name} ${row.constraint_def!}`);
        }
      }
    } catch (err) {
      progress(
        `keeping ${row.kind} ${row.name} during the load: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  return { indexes, constraints: [...attach, ...constraints] };
}
