// The PostgreSQL connection pool billops uses, and a credential-free way to name a database in messages.
import { Pool, types, type CustomTypesConfig, type PoolClient } from 'pg';

export interface PoolOptions {
  /** Connections at most; 1 against the embedded PGlite, which serves a single session. */
  max?: number;
  /** Called when an idle connection fails (server restart); by default one line on stderr. */
  onIdleError?: (err: Error) => void;
}

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
    connectionTimeoutMillis: 10_000,
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
