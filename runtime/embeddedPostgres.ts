// The embedded database for `npm start` with no DATABASE_URL: PGlite persisted under .data/, served on a loopback socket.
import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { isPortOpen } from './processes';

export interface EmbeddedPostgres {
  url: string;
  close(): Promise<void>;
}

/** PGlite serves one session at a time, so every client of this database must use a pool of exactly one connection. */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
}): Promise<EmbeddedPostgres> {
  const host = '127.0.0.1';
  if (await isPortOpen(host, opts.port)) {
    throw new Error(
      `port ${opts.port} on ${host} is already in use, so the embedded PostgreSQL cannot start. ` +
        `Stop what listens there, set BILLOPS_EMBEDDED_PG_PORT, or set DATABASE_URL to a real PostgreSQL.`,
    );
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir);
  const server = new PGLiteSocketServer({ db, host, port: opts.port, maxConnections: 1 });
  // Every connection is handed the same session: what an earlier one prepared would clash by name with the statements
  // of the next (pg names its prepared statements). Dropped as each connection arrives, before it sends a query.
  server.addEventListener('connection', () => {
    db.exec('DEALLOCATE ALL').catch(() => undefined);
  });
  await server.start();
  return {
    url: `postgres://postgres@${host}:${opts.port}/postgres`,
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}
