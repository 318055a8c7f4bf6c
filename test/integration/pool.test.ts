// db/pool.ts against a real PostgreSQL: every connection of a pool carries the statement and idle-in-transaction
// timeouts, TCP keepalive is on, and a server that never answers fails the connect within the connection timeout.
import { createServer, type Socket } from 'node:net';
import type { Pool, PoolClient } from 'pg';
import { createPool, POOL_DEFAULTS } from '../../db/pool';
import { freePort } from '../../runtime/processes';
import { testEnv } from '../support/testRuntime';

const pools: Pool[] = [];
function pool(opts: Parameters<typeof createPool>[1] = {}): Pool {
  const created = createPool(testEnv('databaseUrl'), { max: 2, onIdleError: () => undefined, ...opts });
  pools.push(created);
  return created;
}

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

/** A session setting in milliseconds, as the server applies it. */
async function settingMs(client: Pool | PoolClient, name: string): Promise<number> {
  const { rows } = await client.query<{ setting: string; unit: string }>(
    'SELECT setting, unit FROM pg_settings WHERE name = $1',
    [name],
  );
  expect(rows[0]?.unit).toBe('ms');
  return Number(rows[0]!.setting);
}

describe('createPool', () => {
  it("sets billops' defaults on every connection: statement and idle-in-transaction timeouts", async () => {
    const p = pool();
    const clients = await Promise.all([p.connect(), p.connect()]);
    try {
      for (const client of clients) {
        expect(await settingMs(client, 'statement_timeout')).toBe(POOL_DEFAULTS.statementTimeoutMs);
        expect(await settingMs(client, 'idle_in_transaction_session_timeout')).toBe(
          POOL_DEFAULTS.idleInTransactionTimeoutMs,
        );
      }
    } finally {
      for (const client of clients) client.release();
    }
    expect(p.options).toMatchObject({
      connectionTimeoutMillis: POOL_DEFAULTS.connectionTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: POOL_DEFAULTS.keepAliveInitialDelayMs,
    });
  });

  it('a statement running past statement_timeout is cancelled by the server', async () => {
    const p = pool({ statementTimeoutMs: 300 });
    await expect(p.query('SELECT pg_sleep(5)')).rejects.toMatchObject({
      code: '57014',
      message: expect.stringMatching(/statement timeout/),
    });
    // The connection stays usable for the next statement.
    expect((await p.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a transaction left idle past idle_in_transaction_session_timeout is ended by the server', async () => {
    const p = pool({ idleInTransactionTimeoutMs: 300 });
    const client = await p.connect();
    const errors: Error[] = [];
    try {
      client.on('error', (err) => errors.push(err));
      await client.query('BEGIN');
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      // The server ended the session (and so its transaction and locks)...
      const alive = await p.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1',
        [rows[0]!.pid],
      );
      expect(alive.rows).toEqual([{ n: 0 }]);
      // ...and the client heard it.
      expect(errors.length).toBeGreaterThan(0);
      await expect(client.query('SELECT 1')).rejects.toThrow();
    } finally {
      client.release(errors[0] ?? true);
    }
    // The pool replaces the lost connection.
    expect((await p.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('options override the defaults, including 0 to turn a timeout off for a long job', async () => {
    const p = pool({ statementTimeoutMs: 0, idleInTransactionTimeoutMs: 45_000 });
    expect(await settingMs(p, 'statement_timeout')).toBe(0);
    expect(await settingMs(p, 'idle_in_transaction_session_timeout')).toBe(45_000);
  });

  it('a server that accepts the connection but never answers fails the connect within the connection timeout', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
    });
    const port = await freePort();
    await new Promise<void>((resolve) => silent.listen(port, '127.0.0.1', () => resolve()));
    const p = createPool(`postgres://billops@127.0.0.1:${port}/billops`, {
      max: 1,
      connectionTimeoutMs: 300,
      onIdleError: () => undefined,
    });
    const startedAt = Date.now();
    try {
      await expect(p.query('SELECT 1')).rejects.toThrow(/timeout/i);
      expect(Date.now() - startedAt).toBeLessThan(3_000);
    } finally {
      await p.end();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
