// A private PostgreSQL cluster in a directory of ours, on a loopback port: what the tests run against.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ChildSupervisor, waitForPort } from './processes';

export interface PostgresCluster {
  /** Connection URL of the `postgres` database, as the superuser. */
  url: string;
  /** The postmaster's pid. */
  pid: number;
}

/**
 * initdb and postgres refuse to run as root; as root they run as the `postgres` user Debian's package creates, set on
 * the process itself (no runuser between us and the postmaster, so a stop signal reaches the server directly).
 */
export function clusterOwner(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error(
      'running as root, and there is no `postgres` user to own the PostgreSQL data folder; install PostgreSQL with apt-get install postgresql',
    );
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startPostgresCluster(
  supervisor: ChildSupervisor,
  opts: {
    binDir: string;
    dataDir: string;
    port: number;
    logFile: string;
    /** Keep fsync and full-page writes on (npm start's data outlives a crash); tests trade them for speed. */
    durable?: boolean;
  },
): Promise<PostgresCluster> {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const owner = clusterOwner();
  if (owner) chownSync(opts.dataDir, owner.uid, owner.gid);
  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) {
    const args = ['-D', opts.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8'];
    if (!opts.durable) args.push('--no-sync');
    const result = spawnSync(join(opts.binDir, 'initdb'), args, { encoding: 'utf8', ...owner });
    if (result.status !== 0) {
      const why = result.error?.message ?? (result.stderr || result.stdout);
      throw new Error(
        `initdb failed in ${opts.dataDir}: ${why}` +
          (owner
            ? ' (as root it runs as the postgres user, which must be able to enter every parent folder)'
            : ''),
      );
    }
  }
  const fast = opts.durable
    ? []
    : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'];
  const child = supervisor.spawn({
    name: 'postgres',
    command: join(opts.binDir, 'postgres'),
    args: [
      '-D',
      opts.dataDir,
      '-p',
      String(opts.port),
      '-h',
      '127.0.0.1',
      '-k',
      opts.dataDir,
      ...fast,
      '-c',
      'max_connections=200',
    ],
    logFile: opts.logFile,
    ...owner,
    // Fast shutdown: roll back open transactions and close every session, rather than wait for clients to leave.
    stopSignal: 'SIGINT',
  });
  await waitForPort('127.0.0.1', opts.port, { timeoutMs: 30_000, child });
  return { url: `postgres://postgres@127.0.0.1:${opts.port}/postgres`, pid: child.process.pid! };
}
