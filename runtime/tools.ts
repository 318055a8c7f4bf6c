// Finds the binaries billops runs locally: the user's own first, then those scripts/provision.sh put under .tools/.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

export const projectRoot = resolve(__dirname, '..');
const toolsDir = join(projectRoot, '.tools');

export class MissingToolError extends Error {
  constructor(tool: string, remedy: string) {
    super(`${tool} was not found. ${remedy}`);
    this.name = 'MissingToolError';
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** TEMPORAL_CLI_PATH, then `temporal` on PATH, then .tools/bin/temporal. */
export function findTemporalCli(): string | undefined {
  const fromEnv = process.env.TEMPORAL_CLI_PATH;
  if (fromEnv && isExecutable(fromEnv)) return fromEnv;
  return (
    onPath('temporal') ??
    (isExecutable(join(toolsDir, 'bin', 'temporal')) ? join(toolsDir, 'bin', 'temporal') : undefined)
  );
}

/** TEMPORAL_TEST_SERVER_PATH, then .tools/bin/temporal-test-server. */
export function findTestServer(): string | undefined {
  const fromEnv = process.env.TEMPORAL_TEST_SERVER_PATH;
  if (fromEnv && isExecutable(fromEnv)) return fromEnv;
  const local = join(toolsDir, 'bin', 'temporal-test-server');
  return isExecutable(local) ? local : undefined;
}

/** The directory holding initdb and pg_ctl: PATH, the file provision.sh writes, or Debian's layout. */
export function findPostgresBinDir(): string | undefined {
  const initdb = onPath('initdb');
  if (initdb && onPath('pg_ctl')) return resolve(initdb, '..');
  const recorded = join(toolsDir, 'pg-bin-dir');
  if (existsSync(recorded)) {
    const dir = readFileSync(recorded, 'utf8').trim();
    if (isExecutable(join(dir, 'initdb'))) return dir;
  }
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = spawnSync('ls', [debian], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
      const dir = join(debian, version, 'bin');
      if (isExecutable(join(dir, 'initdb'))) return dir;
    }
  }
  return undefined;
}

/** Runs scripts/provision.sh for the named pieces, streaming its progress; throws naming the piece when it fails. */
export function provision(pieces: string[]): void {
  const result = spawnSync('bash', [join(projectRoot, 'scripts', 'provision.sh'), ...pieces], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.status !== 0) {
    throw new MissingToolError(
      pieces.join(', '),
      'scripts/provision.sh failed; its message above says what to do.',
    );
  }
}

/** STRIPE_MOCK_PATH, then `stripe-mock` on PATH, then .tools/bin/stripe-mock. */
export function findStripeMock(): string | undefined {
  const fromEnv = process.env.STRIPE_MOCK_PATH;
  if (fromEnv && isExecutable(fromEnv)) return fromEnv;
  const local = join(toolsDir, 'bin', 'stripe-mock');
  return onPath('stripe-mock') ?? (isExecutable(local) ? local : undefined);
}
