// A private PostgreSQL cluster in a directory of ours, on a loopback port: what the tests run against.
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ChildSupervisor, waitForPort } from './processes';

export interface PostgresCluster {
  /** Connection URL of the `postgres` database, as the superuser. */
  url: string;
}

/** initdb and postgres refuse to run as root; as root we run them as the `postgres` user Debian's package creates. */
function asClusterOwner(command: string, args: string[]): { command: string; args: string[]; uid?: number } {
  if (process.getuid?.() !== 0) return { command, args };
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status !== 0) {
    throw new Error(
      'running as root, and there is no `postgres` user to own the test cluster; install PostgreSQL with apt-get install postgresql',
    );
  }
  return {
    command: 'runuser',
    args: ['-u', 'postgres', '--', command, ...args],
    uid: Number(id.stdout.trim()),
  };
}

export async function startPostgresCluster(
  supervisor: ChildSupervisor,
  opts: { binDir: string; dataDir: string; port: number; logFile: string },
): Promise<PostgresCluster> {
  mkdirSync(opts.dataDir, { recursive: true });
  const owner = asClusterOwner('true', []);
  if (owner.uid !== undefined) chownSync(opts.dataDir, owner.uid, owner.uid);
  if (!existsSync(join(opts.dataDir, 'PG_VERSION'))) {
    const init = asClusterOwner(join(opts.binDir, 'initdb'), [
      '-D',
      opts.dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ]);
    const result = spawnSync(init.command, init.args, { encoding: 'utf8' });
    if (result.status !== 0)
      throw new Error(`initdb failed in ${opts.dataDir}: ${result.stderr || result.stdout}`);
  }
  const run = asClusterOwner(join(opts.binDir, 'postgres'), [
    '-D',
    opts.dataDir,
    '-p',
    String(opts.port),
    '-h',
    '127.0.0.1',
    '-k',
    opts.dataDir,
    '-c',
    'fsync=off',
    '-c',
    'synchronous_commit=off',
    '-c',
    'full_page_writes=off',
    '-c',
    'max_connections=200',
  ]);
  const child = supervisor.spawn({
    name: 'postgres',
    command: run.command,
    args: run.args,
    logFile: opts.logFile,
  });
  await waitForPort('127.0.0.1', opts.port, { timeoutMs: 30_000, child });
  return { url: `postgres://postgres@127.0.0.1:${opts.port}/postgres` };
}
