// Worker thread behind db/migrate.ts: applies pending migrations with node-pg-migrate's runner, an ES module that
// jest's CommonJS runtime cannot load on Node 20, so it runs here under Node's own loader.
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { PG_MIGRATE_LOCK_ID, runner } from 'node-pg-migrate';

const post = (message) => parentPort.postMessage(message);
const log = (line) => post({ kind: 'log', line: String(line) });

async function applyPending({ databaseUrl, dir, migrationsTable, lockTimeoutMs, connectTimeoutMs }) {
  const client = new pg.Client({
    connectionString: databaseUrl,
    application_name: 'billops-migrate',
    connectionTimeoutMillis: connectTimeoutMs,
  });
  // A dropped connection already fails the pending query; this keeps it from also crashing the thread.
  client.on('error', () => undefined);
  let stage = 'connect';
  try {
    await client.connect();
    stage = 'lock';
    // node-pg-migrate only tries its advisory lock once and fails if another migrator holds it; waiting here on the
    // same lock (re-entrant within this session) lets concurrent starts queue instead, and keeps out its CLI too.
    await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    await client.query('SELECT pg_advisory_lock($1)', [PG_MIGRATE_LOCK_ID]);
    await client.query('RESET lock_timeout');
    stage = 'migrate';
    const applied = await runner({
      dbClient: client,
      dir,
      migrationsTable,
      direction: 'up',
      // All pending migrations commit together or not at all.
      singleTransaction: true,
      checkOrder: true,
      log,
    });
    post({ kind: 'applied', names: applied.map((migration) => migration.name) });
  } catch (error) {
    post({
      kind: 'failed',
      stage,
      message: error instanceof Error ? error.message : String(error),
      code: typeof error?.code === 'string' ? error.code : undefined,
    });
  } finally {
    // Closing the session also releases the advisory lock taken above.
    await client.end().catch(() => undefined);
  }
}

await applyPending(workerData);
