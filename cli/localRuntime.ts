// The file `npm start` writes under its data directory (`.data/runtime.json`, mode 0600): where its parts listen and the
// local secrets it generated or used, so a CLI in another terminal works against it with no variable set.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const RUNTIME_FILE = 'runtime.json';

export interface LocalRuntime {
  version: 1;
  /** The `npm start` node process; the file is stale once it is gone. */
  pid: number;
  startedAt: string;
  /** The configuration as environment variables, the names `billops` and `npm start` read (DATABASE_URL, ...). */
  env: Record<string, string>;
  temporal: { address: string; namespace: string; taskQueue: string; webUi?: string };
  databaseUrl: string;
  ingressUrl: string;
  smtpUrl: string;
  /** The local mail catcher's folder, one JSON file per message; absent when SMTP_URL names a server. */
  mailDir?: string;
  stripeApiBase?: string;
  /** The file holding the usage API key `npm start` made for local producers; absent on a configured database. */
  apiKeyFile?: string;
  /** Which webhook secrets and tokens `npm start` generated itself (their values are in `env`). */
  generatedSecrets: string[];
  /** Every port the run listens on, and the processes it started: what a stop must free. */
  ports: number[];
  children: { name: string; pid: number }[];
}

/** Where a running `npm start` has it: under the data directory, relative to the project like `npm start` resolves it. */
export function runtimeFilePath(dataDir: string): string {
  return join(resolve(__dirname, '..', dataDir), RUNTIME_FILE);
}

/** The variables whose presence means the environment names billops' servers itself, so the file is not read. */
export const NAMING_VARIABLES = ['TEMPORAL_ADDRESS', 'DATABASE_URL'] as const;

export type RuntimeFileState =
  | { state: 'none' }
  | { state: 'running'; file: string; runtime: LocalRuntime }
  | { state: 'stale'; file: string; why: string };

export function readRuntimeFile(dataDir: string): RuntimeFileState {
  const file = runtimeFilePath(dataDir);
  if (!existsSync(file)) return { state: 'none' };
  let runtime: LocalRuntime;
  try {
    runtime = JSON.parse(readFileSync(file, 'utf8')) as LocalRuntime;
  } catch (err) {
    return {
      state: 'stale',
      file,
      why: `it cannot be read (${err instanceof Error ? err.message : String(err)})`,
    };
  }
  if (runtime.version !== 1 || typeof runtime.pid !== 'number' || typeof runtime.env !== 'object') {
    return { state: 'stale', file, why: 'it is not in the format this billops writes' };
  }
  if (!isNpmStart(runtime.pid)) {
    return { state: 'stale', file, why: `npm start is no longer running (process ${runtime.pid} is gone)` };
  }
  return { state: 'running', file, runtime };
}

/** The process is alive and, where /proc shows it, is runtime/start.ts (a reused pid is not npm start). */
function isNpmStart(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('start.ts');
  } catch {
    return true; // no /proc (macOS): the pid check alone
  }
}

/** What the CLI says when the file is stale: which file, why, and what to do instead. */
export function staleRuntimeMessage(stale: { file: string; why: string }): string {
  return (
    `${stale.file} is stale: ${stale.why}. Start it again with npm start, or name the servers to use: ` +
    `set DATABASE_URL and TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, BILLOPS_TASK_QUEUE, INGRESS_PORT as needed).`
  );
}
