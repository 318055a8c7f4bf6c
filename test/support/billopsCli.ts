// bin/billops run as an operator runs it: in its own process, with only the environment an operator would set.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { testEnv } from './testRuntime';

const BILLOPS = join(__dirname, '../../bin/billops');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The shared dev server and database, the suite's task queue, and `more` (an operator, another database). */
export function operatorEnv(taskQueue: string, more: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    TEMPORAL_ADDRESS: testEnv('temporalAddress'),
    DATABASE_URL: testEnv('databaseUrl'),
    BILLOPS_TASK_QUEUE: taskQueue,
    ...more,
  };
}

/** Runs bin/billops with exactly `env`; a failing exit is an answer (its code), not an error. */
export function runBillops(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(BILLOPS, args, { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export const TEST_OPERATOR = 'oncall@billops.test';

/** `billops(...args)` as the on-call operator, on the suite's task queue. */
export function operatorCli(taskQueue: string): (...args: string[]) => Promise<CliRun> {
  return (...args) => runBillops(args, operatorEnv(taskQueue, { BILLOPS_OPERATOR: TEST_OPERATOR }));
}
