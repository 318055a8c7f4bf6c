// Starts the Temporal CLI dev server (gRPC + Web UI) on loopback with billops' search attributes registered.
import { Connection } from '@temporalio/client';
import { billopsSearchAttributes } from '../domain/searchAttributes';
import { ChildSupervisor, isPortOpen, waitForPort, type ManagedChild } from './processes';

export interface DevServerOptions {
  cliPath: string;
  port: number;
  uiPort?: number;
  /** SQLite file that keeps every workflow across restarts; omit for an in-memory server. */
  dbFile?: string;
  logFile: string;
  namespace: string;
  /** CPUs the server may run on ("0" or "0,1"), set with util-linux's taskset before it starts; omit for every CPU. */
  cpus?: string;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  child: ManagedChild;
}

const host = '127.0.0.1';

export async function startTemporalDevServer(
  supervisor: ChildSupervisor,
  opts: DevServerOptions,
): Promise<DevServer> {
  for (const port of [opts.port, opts.uiPort]) {
    if (port !== undefined && (await isPortOpen(host, port))) {
      throw new Error(
        `port ${port} on ${host} is already in use, so the embedded Temporal dev server cannot start. ` +
          `Stop whatever listens there (an earlier billops or temporal?), or set TEMPORAL_PORT / TEMPORAL_UI_PORT, ` +
          `or point TEMPORAL_ADDRESS at a running Temporal.`,
      );
    }
  }
  const args = ['server', 'start-dev', '--ip', host, '--port', String(opts.port), '--log-level', 'warn'];
  args.push(...(opts.uiPort === undefined ? ['--headless'] : ['--ui-port', String(opts.uiPort)]));
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  if (opts.namespace !== 'default') args.push('--namespace', opts.namespace);
  for (const key of billopsSearchAttributes) args.push('--search-attribute', `${key.name}=Keyword`);

  const child = supervisor.spawn({
    name: 'temporal dev server',
    // taskset execs the CLI in place: the child's pid is the server's.
    command: opts.cpus === undefined ? opts.cliPath : 'taskset',
    args: opts.cpus === undefined ? args : ['-c', opts.cpus, opts.cliPath, ...args],
    logFile: opts.logFile,
  });
  await waitForPort(host, opts.port, { timeoutMs: 60_000, child });
  const address = `${host}:${opts.port}`;
  await waitUntilServing(address, opts.namespace);
  return { address, uiUrl: opts.uiPort === undefined ? undefined : `http://${host}:${opts.uiPort}`, child };
}

/** The port opens before the namespace is ready; poll until the server describes it. */
async function waitUntilServing(address: string, namespace: string): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await connection.close();
  }
}
