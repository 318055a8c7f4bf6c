// The embedded database for `npm start` with no DATABASE_URL: a real PostgreSQL server (many connections) with its data
// under .data/postgres, on the machine's PostgreSQL binaries, provisioned like the tests' (scripts/provision.sh postgres).
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { clusterOwner, startPostgresCluster } from './postgresCluster';
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

/**
 * The folder that keeps the embedded database between runs: .data/postgres. Run as root, PostgreSQL runs as the
 * `postgres` user, which must be able to enter every folder above it; a clone under /root (0700) or a private temp
 * folder does not allow that, so its data then lives in Debian's PostgreSQL home, one folder per clone.
 */
export function embeddedPostgresDir(dataDir: string): string {
  const inClone = join(resolve(dataDir), 'postgres');
  const owner = clusterOwner();
  if (!owner || ancestorsEnterable(dirname(inClone), owner)) return inClone;
  const home = existsSync('/var/lib/postgresql') ? '/var/lib/postgresql' : '/var/tmp';
  const id = createHash('sha256').update(inClone).digest('hex').slice(0, 12);
  return join(home, `billops-${id}`);
}

/** Whether a user can enter (search) every existing folder from the root down to `dir`. */
function ancestorsEnterable(dir: string, user: { uid: number; gid: number }): boolean {
  const parts = resolve(dir).split(sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const path = sep + parts.slice(0, i).join(sep);
    if (!existsSync(path)) return true; // created below by root, then chowned with the data folder
    const { mode, uid, gid } = statSync(path);
    const enterable =
      uid === user.uid
        ? (mode & 0o100) !== 0
        : gid === user.gid
          ? (mode & 0o010) !== 0
          : (mode & 0o001) !== 0;
    if (!enterable) return false;
  }
  return true;
}
