// Checks docker-compose.yml with the real `docker compose config` (no Docker engine needed): the stack parses,
// has its six services and the wiring between them, and a broken copy of the file is refused.
// The compose plugin comes from scripts/provision.sh, which puts it at .tools/docker-config/cli-plugins/docker-compose;
// docker finds it there through `docker --config .tools/docker-config`.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const composeFile = join(root, 'docker-compose.yml');
const dockerConfig = join(root, '.tools', 'docker-config');
const plugin = join(dockerConfig, 'cli-plugins', 'docker-compose');

interface ComposeService {
  image?: string;
  build?: { context: string };
  command?: string[] | null;
  environment?: Record<string, string | null>;
  ports?: { target: number; published?: string }[];
  depends_on?: Record<string, { condition: string }>;
}

interface ComposeResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Fails the test (never skips it) when the docker client or the compose plugin is not installed. */
function requireCompose(): void {
  const remedy = 'Run `bash scripts/provision.sh compose` to install it.';
  try {
    accessSync(plugin, constants.X_OK);
  } catch {
    throw new Error(`The docker compose plugin is missing (expected at ${plugin}). ${remedy}`);
  }
  try {
    execFileSync('docker', ['--version'], { stdio: 'pipe' });
  } catch {
    throw new Error(`The docker CLI is not on PATH (only the client is needed, no engine). ${remedy}`);
  }
}

/** Runs `docker compose -f <file> config --format json` with the plugin from .tools/; never throws on exit codes. */
function composeConfig(file: string): ComposeResult {
  const env = { ...process.env };
  // Only the file under test decides the outcome, not a caller's compose settings.
  for (const name of [
    'COMPOSE_FILE',
    'COMPOSE_PROFILES',
    'COMPOSE_PROJECT_NAME',
    'COMPOSE_ENV_FILES',
    'DOCKER_CONFIG',
  ]) {
    delete env[name];
  }
  try {
    const stdout = execFileSync(
      'docker',
      ['--config', dockerConfig, 'compose', '-f', file, 'config', '--format', 'json'],
      { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 },
    );
    return { status: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status?: number | null; stdout?: string; stderr?: string; message: string };
    return { status: e.status ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

function parsedStack(): Record<string, ComposeService> {
  requireCompose();
  const result = composeConfig(composeFile);
  if (result.status !== 0) {
    throw new Error(`docker compose config exited ${result.status}:\n${result.stderr}`);
  }
  return (JSON.parse(result.stdout) as { services: Record<string, ComposeService> }).services;
}

describe('docker-compose.yml', () => {
  // Parsed once; when the plugin is missing every test fails with the message naming the fix.
  let services: Record<string, ComposeService> | undefined;
  const stack = (): Record<string, ComposeService> => (services ??= parsedStack());

  it('is accepted by docker compose config and defines the six services', () => {
    expect(Object.keys(stack()).sort()).toEqual(
      ['billops-ingress', 'billops-worker', 'mailpit', 'postgresql', 'temporal', 'temporal-ui'].sort(),
    );
  });

  it('publishes the ingress on port 8080', () => {
    const ingress = stack()['billops-ingress'];
    expect(ingress?.ports).toEqual(
      expect.arrayContaining([expect.objectContaining({ target: 8080, published: '8080' })]),
    );
    expect(ingress?.environment).toMatchObject({ INGRESS_HOST: '0.0.0.0', INGRESS_PORT: '8080' });
    expect(ingress?.command).toEqual(['node', '--import', 'tsx', 'ingress/main.ts']);
  });

  it('runs Temporal on the postgresql service', () => {
    const temporal = stack().temporal;
    expect(temporal?.environment).toMatchObject({
      DB: 'postgres12',
      POSTGRES_SEEDS: 'postgresql',
      DB_PORT: '5432',
    });
    expect(temporal?.depends_on?.postgresql?.condition).toBe('service_healthy');
  });

  it('points the worker at Temporal, PostgreSQL and the SMTP catcher', () => {
    const worker = stack()['billops-worker'];
    expect(worker?.environment).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'default',
      DATABASE_URL: 'postgres://billops:billops@postgresql:5432/billops',
      SMTP_URL: 'smtp://mailpit:1025',
    });
    expect(worker?.build?.context).toBe(root);
    expect(worker?.command).toEqual(['node', '--import', 'tsx', 'workers/main.ts']);
  });

  describe('a broken copy', () => {
    let dir: string;
    let original: string;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'billops-compose-'));
      original = readFileSync(composeFile, 'utf8');
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    function checkBroken(name: string, broken: string): ComposeResult {
      requireCompose();
      expect(broken).not.toBe(original); // the edit below really changed the file
      const file = join(dir, name);
      writeFileSync(file, broken);
      return composeConfig(file);
    }

    it('is refused when a service has a key compose does not know', () => {
      const result = checkBroken(
        'unknown-key.yml',
        original.replace(/^ {2}billops-ingress:\n/m, '  billops-ingress:\n    not_a_compose_key: true\n'),
      );
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/not_a_compose_key/);
    });

    it('is refused when a port mapping is malformed', () => {
      const result = checkBroken('bad-port.yml', original.replace("- '8080:8080'", "- '8080:not-a-port'"));
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/port/i);
    });
  });
});
