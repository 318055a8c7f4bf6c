// The PostgreSQL connection pool billops uses, and a credential-free way to name a database in messages.
import { Pool, types, type CustomTypesConfig, type PoolClient } from 'pg';

export interface PoolOptions {
  /** Connections at most (the driver default, 10, unless given). */
  max?: number;
  /** Called when an idle connection fails (server restart); by default one line on stderr. */
  onIdleError?: (err: Error) => void;
  /** To open a connection (TCP, TLS, authentication) before the caller gets an error; POOL_DEFAULTS otherwise. */
  connectionTimeoutMs?: number;
  /** The server cancels a statement running longer (SQLSTATE 57014); 0 turns it off, for a long job's own pool. */
  statementTimeoutMs?: number;
  /** The server ends a session left idle inside a transaction this long, releasing its locks; 0 turns it off. */
  idleInTransactionTimeoutMs?: number;
  /** TCP keepalive probes start after this much silence, so a connection to a vanished server is noticed. */
  keepAliveInitialDelayMs?: number;
}

/**
 * billops' connection settings. Its statements take milliseconds; the heaviest, a rollup window, took 18 s over ten
 * million events in the bench, so a minute means a statement stuck on a lock or a runaway plan. No transaction of
 * billops waits on anything outside the database, so one idle for 30 s is a leaked connection holding its locks.
 * Parameters in DATABASE_URL's query (`?statement_timeout=0`) win over these and over the options.
 */
export const POOL_DEFAULTS = Object.freeze({
  connectionTimeoutMs: 10_000,
  statementTimeoutMs: 60_000,
  idleInTransactionTimeoutMs: 30_000,
  keepAliveInitialDelayMs: 10_000,
});

/** bigint columns hold money in minor units and counts: read them as numbers, refusing any a double would round. */
function parseInt8(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`bigint ${text} is beyond Number.MAX_SAFE_INTEGER and cannot be read as a number`);
  }
  return value;
}

const billopsTypes: CustomTypesConfig = {
  getTypeParser: (oid, format) =>
    oid === types.builtins.INT8 && format !== 'binary' ? parseInt8 : types.getTypeParser(oid, format),
};

export function createPool(databaseUrl: string, opts: PoolOptions = {}): Pool {
  const where = describeDatabaseUrl(databaseUrl);
  const pool = new Pool({
    connectionString: databaseUrl,
    max: opts.max ?? 10,
    application_name: 'billops',
    connectionTimeoutMillis: opts.connectionTimeoutMs ?? POOL_DEFAULTS.connectionTimeoutMs,
    statement_timeout: opts.statementTimeoutMs ?? POOL_DEFAULTS.statementTimeoutMs,
    idle_in_transaction_session_timeout:
      opts.idleInTransactionTimeoutMs ?? POOL_DEFAULTS.idleInTransactionTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: opts.keepAliveInitialDelayMs ?? POOL_DEFAULTS.keepAliveInitialDelayMs,
    idleTimeoutMillis: 30_000,
    types: billopsTypes,
  });
  // Without a listener an idle connection's error would crash the process.
  pool.on(
    'error',
    opts.onIdleError ??
      ((err) =>
        process.stderr.write(
          `billops: an idle connection to PostgreSQL at ${where} failed: ${err.message}\n`,
        )),
  );
  return pool;
}

/** Runs `work` in one transaction on a connection of its own: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** `host:port/database` for a connection URL, never its user or password; safe for logs and error messages. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    // libpq style: postgresql:///db?host=/var/run/postgresql names a Unix socket directory.
    const host = decodeURIComponent(parsed.hostname) || parsed.searchParams.get('host') || 'localhost';
    const port = parsed.port || parsed.searchParams.get('port') || '5432';
    const database =
      decodeURIComponent(parsed.pathname.replace(/^\//, '')) ||
      parsed.searchParams.get('dbname') ||
      '(default)';
    return `${host}:${port}/${database}`;
  } catch {
    return '(an unparsable database URL)';
  }
}
