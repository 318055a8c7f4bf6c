// A benchmark's scratch database: under DATABASE_URL, else in a private PostgreSQL cluster; migrated, and removed at the end.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'pg';
import { migrate } from '../db/migrate';
import { describeDatabaseUrl } from '../db/pool';
import { startPostgresCluster } from '../runtime/postgresCluster';
import { ChildSupervisor, freePort } from '../runtime/processes';
import { findPostgresBinDir } from '../runtime/tools';
import { benchClient, progress, tailLog } from './support';

/** Settings of the private cluster: fast and unsafe (no fsync), sized for a benchmark on a machine with room to spare. */
const PRIVATE_CLUSTER_SETTINGS: Record<string, string> = {
  shared_buffers: '2GB',
  work_mem: '64MB',
  maintenance_work_mem: '1GB',
  max_wal_size: '16GB',
  checkpoint_timeout: '1h',
  wal_level: 'minimal',
  max_wal_senders: '0',
  // Vacuum and analyze run when the benchmark says, never in the middle of a timed step.
  autovacuum: 'off',
};

export interface ScratchDatabase {
  url: string;
  /** Where the database lives, for the JSON line: never a password. */
  description: string;
  serverVersion: string;
  settings: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A new database with every migration applied. With DATABASE_URL it is created on that server and dropped at the
 * end; without, a private cluster is started in a temporary directory (initdb, fsync off) and removed at the end.
 */
export async function openScratchDatabase(name: string): Promise<ScratchDatabase> {
  const cleanups: Array<() => Promise<void> | void> = [];
  // Ctrl-C or a kill: clean up first (stop the cluster, drop the database), then leave. A terminal's Ctrl-C reaches
  // this process twice (from the terminal and relayed by tsx): later signals wait for the cleanup already running.
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    progress(`${signal}: cleaning up`);
    void close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  cleanups.push(() => {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  });
  const close = async (): Promise<void> => {
    while (cleanups.length > 0) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        progress(`cleanup: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  try {
    let adminUrl = process.env.DATABASE_URL;
    let where: string;
    if (adminUrl) {
      where = `DATABASE_URL server ${describeDatabaseUrl(adminUrl).replace(/\/.*$/, '')}`;
    } else {
      const cluster = await startPrivateCluster(cleanups);
      adminUrl = cluster.url;
      where = 'private cluster on loopback';
    }
    const database = `${name}_${Date.now()}_${process.pid}`;
    const admin = benchClient(adminUrl, 'billops-bench-admin');
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${database}`);
    } finally {
      await admin.end();
    }
    cleanups.push(() => dropDatabase(adminUrl, database));
    const url = withDatabase(adminUrl, database);
    progress(`scratch database ${database} on the ${where}; migrating`);
    await migrate(url);
    const { version, settings } = await serverFacts(url);
    return { url, description: where, serverVersion: version, settings, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function startPrivateCluster(cleanups: Array<() => Promise<void> | void>): Promise<{ url: string }> {
  const binDir = findPostgresBinDir();
  if (!binDir) {
    throw new Error(
      'no DATABASE_URL and no PostgreSQL binaries (initdb) found: set DATABASE_URL or run `bash scripts/provision.sh`',
    );
  }
  const workDir = mkdtempSync(join(tmpdir(), 'billops-bench-'));
  // As root the cluster runs as the `postgres` user, which must be able to enter this directory.
  chmodSync(workDir, 0o755);
  const dataDir = join(workDir, 'pg');
  const logFile = join(workDir, 'postgres.log');
  let supervisor = new ChildSupervisor();
  let failed = false;
  // Last resort when the process ends without the orderly cleanup (an uncaught error, a second Ctrl-C).
  const onExit = () => {
    supervisor.killAllNow();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  cleanups.push(() => {
    process.removeListener('exit', onExit);
    if (failed || process.exitCode) tailLog(logFile, 'PostgreSQL');
    rmSync(workDir, { recursive: true, force: true });
  });
  cleanups.push(() => supervisor.stopAll());
  try {
    progress(`starting a private PostgreSQL cluster (${binDir}) in ${workDir}`);
    let cluster = await startPostgresCluster(supervisor, {
      binDir,
      dataDir,
      port: await freePort(),
      logFile,
    });
    const admin = await connectWhenReady(cluster.url);
    try {
      for (const [setting, value] of Object.entries(PRIVATE_CLUSTER_SETTINGS)) {
        await admin.query(`ALTER SYSTEM SET ${setting} = '${value}'`);
      }
    } finally {
      await admin.end();
    }
    // shared_buffers and wal_level take effect at a restart.
    await supervisor.stopAll();
    supervisor = new ChildSupervisor();
    cluster = await startPostgresCluster(supervisor, { binDir, dataDir, port: await freePort(), logFile });
    await (await connectWhenReady(cluster.url)).end();
    return cluster;
  } catch (err) {
    failed = true;
    throw err;
  }
}

/** The port opens before the server accepts sessions ("the database system is starting up"): retry until it does. */
async function connectWhenReady(url: string, timeoutMs = 30_000): Promise<Client> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = benchClient(url, 'billops-bench-admin');
    try {
      await client.connect();
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      const code = (err as { code?: string }).code;
      if (code !== '57P03' || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  parsed.searchParams.delete('dbname');
  return parsed.toString();
}

async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const admin = benchClient(adminUrl, 'billops-bench-admin');
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

async function serverFacts(url: string): Promise<{ version: string; settings: Record<string, string> }> {
  const client = benchClient(url, 'billops-bench-admin');
  await client.connect();
  try {
    const names = ['shared_buffers', 'work_mem', 'fsync', 'synchronous_commit', 'jit', 'autovacuum'];
    const { rows } = await client.query<{ name: string; setting: string }>(
      `SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name`,
      [names],
    );
    const version = await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return {
      version: version.rows[0]!.v,
      settings: Object.fromEntries(rows.map((row) => [row.name, row.setting])),
    };
  } finally {
    await client.end();
  }
}
