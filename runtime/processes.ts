// Child processes that billops starts for itself, tracked so one shutdown stops them all and frees their ports.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';

export interface ManagedChild {
  name: string;
  process: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  /** What asks it to stop before SIGKILL: SIGTERM unless the program wants another (PostgreSQL: SIGINT). */
  stopSignal: NodeJS.Signals;
}

export interface SpawnRequest {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group (root starting PostgreSQL as `postgres`). */
  uid?: number;
  gid?: number;
  stopSignal?: NodeJS.Signals;
}

/** Starts children in their own process group, so a terminal Ctrl-C reaches billops first and billops stops them in order. */
export class ChildSupervisor {
  private readonly children: ManagedChild[] = [];

  spawn(request: SpawnRequest): ManagedChild {
    mkdirSync(dirname(request.logFile), { recursive: true });
    const log = createWriteStream(request.logFile, { flags: 'a' });
    const child = spawn(request.command, request.args, {
      env: request.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(request.uid === undefined ? {} : { uid: request.uid }),
      ...(request.gid === undefined ? {} : { gid: request.gid }),
    });
    // Both streams share one log; neither may end it, so it closes when the child is gone.
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    log.on('error', () => undefined);
    child.once('close', () => log.end());
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.once('error', () => resolve(-1));
    });
    const managed = {
      name: request.name,
      process: child,
      logFile: request.logFile,
      exited,
      stopSignal: request.stopSignal ?? 'SIGTERM',
    };
    this.children.push(managed);
    return managed;
  }

  /** Stops children newest first: their stop signal, then SIGKILL for any still running after the grace period. */
  async stopAll(graceMs = 10_000): Promise<void> {
    for (const child of [...this.children].reverse()) {
      await stopChild(child, graceMs);
    }
    this.children.length = 0;
  }

  /** The children still running, by name and pid. */
  running(): { name: string; pid: number }[] {
    return this.children
      .filter(
        (c) => c.process.pid !== undefined && c.process.exitCode === null && c.process.signalCode === null,
      )
      .map((c) => ({ name: c.name, pid: c.process.pid! }));
  }

  /** Last-resort synchronous kill, for process 'exit' when an orderly stop was not possible. */
  killAllNow(): void {
    for (const child of this.children) signalGroup(child.process, 'SIGKILL');
  }
}

async function stopChild(child: ManagedChild, graceMs: number): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  signalGroup(child.process, child.stopSignal);
  const timedOut = await Promise.race([
    child.exited.then(() => false),
    new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
  ]);
  if (timedOut) {
    signalGroup(child.process, 'SIGKILL');
    await child.exited;
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Waits until host:port accepts connections, failing early if the child that should listen has exited. */
export async function waitForPort(
  host: string,
  port: number,
  opts: { timeoutMs: number; child?: ManagedChild },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let childExit: number | null | undefined;
  void opts.child?.exited.then((code) => (childExit = code));
  while (Date.now() < deadline) {
    if (await isPortOpen(host, port)) return;
    if (childExit !== undefined) {
      throw new Error(
        `${opts.child?.name} exited (code ${childExit}) before listening on ${host}:${port}; see ${opts.child?.logFile}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`nothing listened on ${host}:${port} within ${opts.timeoutMs} ms`);
}

/** Asks the OS for a free loopback port. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
