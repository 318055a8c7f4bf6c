// The quick start as a new user lives it: `npm start` on its embedded defaults in one terminal, the `billops` CLI in
// another with nothing set, then a supervisor's SIGTERM to the npm process alone stops everything it started.
import { waitForOutput } from '../support/childOutput';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, isPortOpen } from '../../runtime/processes';
import { projectRoot } from '../../runtime/tools';

const BILLOPS = join(projectRoot, 'bin', 'billops');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

interface RuntimeFile {
  pid: number;
  ports: number[];
  children: { name: string; pid: number }[];
  env: Record<string, string>;
}

// One data directory per run; the PostgreSQL server runs as the `postgres` user under root, so it must enter it.
const dataDir = mkdtempSync(join(tmpdir(), 'billops-quickstart-'));
chmodSync(dataDir, 0o755);

/** What a user's second terminal has: a PATH, a HOME, and the data directory npm start was told to use. */
const secondTerminal = {
  PATH: process.env.PATH ?? '',
  HOME: process.env.HOME ?? '',
  BILLOPS_DATA_DIR: dataDir,
};

function billops(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BILLOPS, args, { env: secondTerminal, timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every process below pid, children first found first (detached children keep their parent link). */
function descendants(pid: number): number[] {
  const rows = spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number));
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child] of rows.filter(([, ppid]) => ppid === parent)) {
      found.push(child!);
      walk(child!);
    }
  };
  walk(pid);
  return found;
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

type Ports = Record<
  | 'TEMPORAL_PORT'
  | 'TEMPORAL_UI_PORT'
  | 'INGRESS_PORT'
  | 'BILLOPS_EMBEDDED_PG_PORT'
  | 'BILLOPS_EMBEDDED_SMTP_PORT',
  number
> & { BILLOPS_EMBEDDED_STRIPE_MOCK_PORT: number };

async function freePorts(): Promise<Ports> {
  const [a, b, c, d, e, f] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  return {
    TEMPORAL_PORT: a!,
    TEMPORAL_UI_PORT: b!,
    INGRESS_PORT: c!,
    BILLOPS_EMBEDDED_PG_PORT: d!,
    BILLOPS_EMBEDDED_SMTP_PORT: e!,
    BILLOPS_EMBEDDED_STRIPE_MOCK_PORT: f!,
  };
}

const runtimeFile = join(dataDir, 'runtime.json');

/** `npm start` on its embedded defaults (its ports moved off the defaults, so it never meets another run). */
async function npmStart(ports: Ports): Promise<{ npm: ChildProcess; exited: Promise<number | null> }> {
  const env: Record<string, string> = { ...secondTerminal };
  for (const [name, port] of Object.entries(ports)) env[name] = String(port);
  const npm = spawn('npm', ['start'], { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(npm);
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  await waitForOutput(npm, /Press Ctrl-C to stop everything/, 180_000);
  return { npm, exited };
}

/** A signal to the npm process only, not its group (as systemd, a container runtime or CI send it): all must stop. */
async function stopsEverything(
  run: { npm: ChildProcess; exited: Promise<number | null> },
  runtime: RuntimeFile,
  signal: NodeJS.Signals,
): Promise<void> {
  process.kill(run.npm.pid!, signal);
  const timeout = new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000).unref());
  expect(await Promise.race([run.exited, timeout])).toBe(0);
  const pids = [runtime.pid, ...runtime.children.map((c) => c.pid)];
  expect(await until(() => pids.every((pid) => !alive(pid)), 15_000)).toBe(true);
  const open = async () =>
    (
      await Promise.all(runtime.ports.map(async (p) => ((await isPortOpen('127.0.0.1', p)) ? [p] : [])))
    ).flat();
  expect(await until(async () => (await open()).length === 0, 15_000)).toBe(true);
}

function readRuntime(): RuntimeFile {
  const runtime = JSON.parse(readFileSync(runtimeFile, 'utf8')) as RuntimeFile;
  runtimes.push(runtime);
  return runtime;
}

const started: ChildProcess[] = [];
const runtimes: RuntimeFile[] = [];

describe('npm start, then the CLI in another terminal with nothing set', () => {
  afterAll(() => {
    // Only when a step failed: stop what this test started, by pid.
    const pids = [
      ...started.flatMap((npm) => (npm.pid === undefined ? [] : [npm.pid, ...descendants(npm.pid)])),
      ...runtimes.flatMap((r) => [r.pid, ...r.children.map((c) => c.pid)]),
    ];
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });

  it('answers tenants list, dunning start, status, pause and usage load; SIGTERM to npm alone frees every port', async () => {
    const ports = await freePorts();
    const run = await npmStart(ports);
    const {
      TEMPORAL_PORT: temporalPort,
      TEMPORAL_UI_PORT: uiPort,
      INGRESS_PORT: ingressPort,
      BILLOPS_EMBEDDED_PG_PORT: pgPort,
      BILLOPS_EMBEDDED_SMTP_PORT: smtpPort,
      BILLOPS_EMBEDDED_STRIPE_MOCK_PORT: stripeMockPort,
    } = ports;

    expect(statSync(runtimeFile).mode & 0o777).toBe(0o600);
    const runtime = readRuntime();
    expect(runtime.env).toMatchObject({
      TEMPORAL_ADDRESS: `127.0.0.1:${temporalPort}`,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgPort}/postgres`,
      INGRESS_PORT: String(ingressPort),
    });
    expect(runtime.ports).toEqual(
      expect.arrayContaining([temporalPort, uiPort, ingressPort, pgPort, smtpPort, stripeMockPort]),
    );
    expect(runtime.children.map((c) => c.name)).toEqual(expect.arrayContaining(['postgres']));

    // A second terminal: no TEMPORAL_ADDRESS, no DATABASE_URL, no API key.
    const tenants = await billops('tenants', 'list');
    expect(tenants).toMatchObject({ code: 0 });
    expect(tenants.stdout).toMatch(/^acme\s/m);

    const invoice = `inv_quick_${ingressPort}`;
    const start = await billops(
      'dunning',
      'start',
      '--tenant',
      'acme',
      '--invoice',
      invoice,
      '--amount',
      '4900',
    );
    expect(start).toMatchObject({ code: 0 });
    expect(start.stdout).toContain('dunning-acme');

    const status = await billops('status', 'dunning-acme', '--json');
    expect(status).toMatchObject({ code: 0 });
    expect(JSON.parse(status.stdout)).toMatchObject({ phase: 'retrying', paused: false });

    const pause = await billops('pause', 'dunning-acme', '--operator', 'quickstart@billops.test');
    expect(pause).toMatchObject({ code: 0 });
    const paused = await billops('status', 'dunning-acme', '--json');
    expect(JSON.parse(paused.stdout)).toMatchObject({ paused: true });

    const usageFile = join(dataDir, 'usage.ndjson');
    const hour = new Date(Date.now() - 60 * 60_000).toISOString();
    writeFileSync(
      usageFile,
      [1, 2, 3]
        .map((n) =>
          JSON.stringify({
            tenant_id: 'acme',
            meter: 'api_calls',
            quantity: String(n * 10),
            timestamp: hour,
            idempotency_key: `quick-${ingressPort}-${n}`,
          }),
        )
        .join('\n') + '\n',
    );
    const load = await billops('usage', 'load', usageFile);
    expect(load).toMatchObject({ code: 0 });
    expect(load.stdout).toContain('3 events: 3 accepted, 0 duplicates, 0 rejected');

    await stopsEverything(run, runtime, 'SIGTERM');

    // The file is now stale: the CLI says so and names what to set, instead of timing out.
    const stale = await billops('tenants', 'list');
    expect(stale.code).toBe(2);
    expect(stale.stderr).toContain('npm start is no longer running');
    expect(stale.stderr).toContain('DATABASE_URL');
    expect(stale.stderr).toContain('TEMPORAL_ADDRESS');
  }, 420_000);

  it('keeps the database, the lifecycle and the local secrets across a restart, and stops on SIGINT to npm alone', async () => {
    const before = JSON.parse(readFileSync(runtimeFile, 'utf8')) as RuntimeFile;
    const run = await npmStart(await freePorts());
    const runtime = readRuntime();
    expect(runtime.pid).not.toBe(before.pid);
    for (const name of ['STRIPE_WEBHOOK_SECRET', 'PAYSTACK_WEBHOOK_SECRET', 'ALERTMANAGER_TOKEN']) {
      expect(runtime.env[name]).toBe(before.env[name]);
    }
    const status = await billops('status', 'dunning-acme', '--json');
    expect(status).toMatchObject({ code: 0 });
    expect(JSON.parse(status.stdout)).toMatchObject({ phase: 'retrying', paused: true });
    const again = await billops('usage', 'load', join(dataDir, 'usage.ndjson'));
    expect(again.stdout).toContain('3 events: 0 accepted, 3 duplicates, 0 rejected');

    await stopsEverything(run, runtime, 'SIGINT');
  }, 300_000);
});
