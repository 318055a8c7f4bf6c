// An outage hook command run contained: `/bin/sh -c` in a process group of its own with only the environment it is
// given, its output kept to the end of each stream, and its whole group killed on timeout and when the shell exits.
import { spawn } from 'node:child_process';
import { hookOutput, StreamTail } from './hookOutput';

export interface ContainedRun {
  /** null when it was killed or could not start. */
  exitCode: number | null;
  timedOut: boolean;
  /** Redacted and capped (hookOutput). */
  output: string;
  /** Why the shell could not start (an errno code), if it could not. */
  spawnError?: string;
}

export interface ContainedRunOptions {
  env: Record<string, string>;
  timeoutMs: number;
  secrets: readonly string[];
  outputLimit: number;
}

// After the group is killed, pipes held by a process that left the group cannot keep the run open longer than this.
const DRAIN_MS = 2_000;

export function runContained(command: string, opts: ContainedRunOptions): Promise<ContainedRun> {
  // Enough of each stream that a secret cut at the start of what is kept is still recognised or dropped.
  const keep = opts.outputLimit + Math.max(0, ...opts.secrets.map((s) => s.length)) + 1;
  const stdout = new StreamTail(keep);
  const stderr = new StreamTail(keep);

  return new Promise((resolve) => {
    let exitCode: number | null = null;
    let timedOut = false;
    let spawnError: string | undefined;
    let finished = false;
    let drain: NodeJS.Timeout | undefined;

    // detached: setsid(), so the shell leads a new process group that holds everything it starts.
    const child = spawn('/bin/sh', ['-c', command], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env,
    });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => stdout.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));

    const killGroup = () => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // ESRCH: nothing of the group is left.
      }
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(drain);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({
        exitCode,
        timedOut,
        spawnError,
        output: hookOutput([stdout.end(), stderr.end()], opts.secrets, opts.outputLimit),
      });
    };
    const drainThenFinish = () => {
      drain ??= setTimeout(finish, DRAIN_MS);
    };

    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
      drainThenFinish();
    }, opts.timeoutMs);
    child.on('exit', (code) => {
      exitCode = code;
      clearTimeout(timer);
      // What the hook left running in its group (a background child) does not outlive it.
      killGroup();
      drainThenFinish();
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      spawnError = err.code ?? 'error';
      finish();
    });
    child.on('close', finish);
  });
}
