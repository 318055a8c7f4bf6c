// The embedded database for `npm start` with no DATABASE_URL: a real PostgreSQL server (many connections) with its data
// under .data/postgres, on the machine's PostgreSQL binaries, provisioned like the tests' (scripts/provision.sh postgres).
import { join } from 'node:path';
import { startPostgresCluster } from './postgresCluster';
import { ChildSupervisor, isPortOpen } from './processes';
import { findPostgresBinDir, provision } from './tools';

export interface EmbeddedPostgres {
  url: string;
  pid: number;
}

export async function startEmbeddedPostgres(
  supervisor: ChildSupervisor,
  opts: { dataDir: string; port: number; logFile: string },
): Promise<EmbeddedPostgres> {
  const host = '127.0.0.1';
  if (await isPortOpen(host, opts.port)) {
    throw new Error(
      `port ${opts.port} on ${host} is already in use, so the embedded PostgreSQL cannot start. ` +
        `Stop what listens there (an earlier npm start?), set BILLOPS_EMBEDDED_PG_PORT, ` +
        `or set DATABASE_URL to a PostgreSQL of yours.`,
    );
  }
  if (!findPostgresBinDir()) provision(['postgres']);
  const binDir = findPostgresBinDir();
  if (!binDir) throw new Error('PostgreSQL (initdb, postgres) is still missing after provisioning');
  const cluster = await startPostgresCluster(supervisor, {
    binDir,
    dataDir: opts.dataDir,
    port: opts.port,
    logFile: opts.logFile,
    durable: true,
  });
  return { url: cluster.url, pid: cluster.pid };
}

/** The folder under the data directory that keeps the embedded database between runs. */
export function embeddedPostgresDir(dataDir: string): string {
  return join(dataDir, 'postgres');
}
