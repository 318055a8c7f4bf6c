// Applies pending migrations from db/migrations with node-pg-migrate, safely from several processes at once.
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { describeDatabaseUrl } from './pool';

export const MIGRATIONS_DIR = join(__dirname, 'migrations');
export const MIGRATIONS_TABLE = 'pgmigrations';
const WORKER_FILE = join(__dirname, 'migrate-worker.mjs');

export interface MigrateOptions {
  /** Receives node-pg-migrate's progress lines; silent by default. */
  log?: (line: string) => void;
  /** How long to wait for a migration running elsewhere to finish; default two minutes. */
  lockTimeoutMs?: number;
}

export type MigrationStage = 'connect' | 'lock' | 'migrate';

export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(
    message: string,
    readonly stage: MigrationStage,
    readonly code?: string,
  ) {
    super(message);
  }
}

const workerMessage = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('log'), line: z.string() }),
  z.object({ kind: z.literal('applied'), names: z.array(z.string()) }),
  z.object({
    kind: z.literal('failed'),
    stage: z.enum(['connect', 'lock', 'migrate']),
    message: z.string(),
    code: z.string().optional(),
  }),
]);
type WorkerOutcome = Exclude<z.infer<typeof workerMessage>, { kind: 'log' }>;
type WorkerFailure = Extract<WorkerOutcome, { kind: 'failed' }>;

/** Runs every pending up-migration in one transaction and returns their names (empty when there were none). */
export async function migrate(databaseUrl: string, opts: MigrateOptions = {}): Promise<string[]> {
  const where = describeDatabaseUrl(databaseUrl);
  const sqlErrors: string[] = [];
  const log = (line: string): void => {
    if (line.startsWith('Error executing')) sqlErrors.push(line);
    opts.log?.(line);
  };
  const lockTimeoutMs = opts.lockTimeoutMs ?? 120_000;
  let outcome: WorkerOutcome;
  try {
    outcome = await runWorker(
      {
        databaseUrl,
        dir: MIGRATIONS_DIR,
        migrationsTable: MIGRATIONS_TABLE,
        lockTimeoutMs,
        connectTimeoutMs: 10_000,
      },
      log,
    );
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new MigrationError(
      `Database migration at ${where} could not run: ${redact(reason, databaseUrl)}`,
      'migrate',
    );
  }
  if (outcome.kind === 'applied') return outcome.names;
  throw new MigrationError(
    explain(outcome, where, lockTimeoutMs, sqlErrors, databaseUrl),
    outcome.stage,
    outcome.code,
  );
}

function runWorker(data: Record<string, unknown>, log: (line: string) => void): Promise<WorkerOutcome> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_FILE, { workerData: data });
    let outcome: WorkerOutcome | undefined;
    worker.on('message', (raw: unknown) => {
      const message = workerMessage.parse(raw);
      if (message.kind === 'log') log(message.line);
      else outcome = message;
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (outcome) resolve(outcome);
      else reject(new Error(`the migration worker exited with code ${code} without reporting a result`));
    });
  });
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

function explain(
  failure: WorkerFailure,
  where: string,
  lockTimeoutMs: number,
  sqlErrors: string[],
  databaseUrl: string,
): string {
  const message = redact(failure.message, databaseUrl);
  const code = failure.code ?? '';
  switch (failure.stage) {
    case 'connect': {
      let hint = 'Check DATABASE_URL and that the server accepts connections.';
      if (code === '3D000')
        hint = 'Create that database (createdb) or point DATABASE_URL at an existing one.';
      else if (code === '28P01' || code === '28000')
        hint = 'Check the user name and password in DATABASE_URL.';
      else if (UNREACHABLE.has(code) || /timeout/i.test(message))
        hint = 'Is PostgreSQL running and listening there? Check the host and port in DATABASE_URL.';
      return `Cannot connect to PostgreSQL at ${where} to migrate: ${message}. ${hint}`;
    }
    case 'lock':
      return (
        `Database migration at ${where} waited ${lockTimeoutMs} ms for another migration to finish: ${message}. ` +
        'Let that migration finish (or end the session holding the node-pg-migrate advisory lock, see pg_locks) and run `billops db migrate` again.'
      );
    case 'migrate': {
      const at = sqlErrors.map(failingLine).find((line) => line !== undefined);
      const hint = message.startsWith('Not run migration')
        ? 'A migration file was added before one already applied: new migrations need a later timestamp prefix.'
        : 'Nothing was applied (pending migrations run in one transaction). Fix the migration or the data it trips on and run `billops db migrate` again.';
      return `Database migration at ${where} failed: ${message}${at ? ` (at: ${at})` : ''}. ${hint}`;
    }
  }
}

/** The SQL line node-pg-migrate marked with ^^^^ in its "Error executing" report. */
function failingLine(report: string): string | undefined {
  const lines = report.split('\n');
  const caret = lines.findIndex((line) => /^\s*\^\^\^\^/.test(line));
  return caret > 0 ? lines[caret - 1]?.trim() : undefined;
}

/** Removes the URL's password from a message, should a driver ever echo it. */
function redact(message: string, databaseUrl: string): string {
  try {
    const password = decodeURIComponent(new URL(databaseUrl).password);
    return password ? message.split(password).join('***') : message;
  } catch {
    return message;
  }
}
