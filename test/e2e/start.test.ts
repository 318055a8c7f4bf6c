// `npm start` as a user runs it, pointed at existing servers: it starts none of its own, serves /healthz, and stops cleanly.
import { waitForOutput } from '../support/childOutput';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, isPortOpen } from '../../runtime/processes';
import { projectRoot } from '../../runtime/tools';
import { testEnv } from '../support/testRuntime';

// As `npm start` runs it: node with tsx as a loader (no tsx parent process between the signal and billops).
const node = process.execPath;
const withTsx = ['--import', 'tsx'];
const startScript = join(projectRoot, 'runtime', 'start.ts');

/** The environment of a user with nothing billops-specific set. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return { ...env, ...extra };
}

/** Command names of every process below pid. */
function descendants(pid: number): string[] {
  const rows = spawnSync('ps', ['-eo', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .map(([p, pp, ...comm]) => ({ pid: Number(p), ppid: Number(pp), comm: comm.join(' ') }));
  const found: string[] = [];
  const walk = (parent: number) => {
    for (const row of rows.filter((r) => r.ppid === parent)) {
      found.push(row.comm);
      walk(row.pid);
    }
  };
  walk(pid);
  return found;
}

describe('npm start against configured servers', () => {
  it('uses TEMPORAL_ADDRESS, DATABASE_URL, SMTP_URL and Stripe settings, starts no servers of its own, and stops on SIGINT', async () => {
    const ingressPort = await freePort();
    // Its own data directory: the runtime file it writes must not point the repository's CLI at this test's servers.
    const dataDir = mkdtempSync(join(tmpdir(), 'billops-start-'));
    const child = spawn(node, [...withTsx, startScript], {
      env: cleanEnv({
        BILLOPS_DATA_DIR: dataDir,
        TEMPORAL_ADDRESS: testEnv('temporalAddress'),
        DATABASE_URL: testEnv('databaseUrl'),
        SMTP_URL: testEnv('smtpUrl'),
        STRIPE_SECRET_KEY: 'sk_test_start',
        STRIPE_API_BASE: testEnv('stripeApiBase'),
        INGRESS_PORT: String(ingressPort),
        BILLOPS_TASK_QUEUE: `start-test-${ingressPort}`,
      }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const output = await waitForOutput(child, /Press Ctrl-C to stop everything/, 60_000);
      expect(output).not.toMatch(/starting the Temporal dev server/);
      expect(output).toContain(`Temporal          ${testEnv('temporalAddress')}`);
      expect(output).toMatch(/Stripe\s+configured \(STRIPE_SECRET_KEY\)/);
      expect(output).not.toContain('sk_test_start');
      const health = await fetch(`http://127.0.0.1:${ingressPort}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok', database: 'ok', temporal: 'ok' });
      // No server of its own anywhere below this process: no temporal, postgres or stripe-mock.
      // (tsx may run an esbuild service below it, or none when its cache is warm: only servers are looked for.)
      const names = descendants(child.pid!);
      expect(names.filter((n) => /temporal|postgres|stripe/.test(n))).toEqual([]);
      // The runtime file passes on what it was given, and lists no children and only the ingress port as its own.
      const runtime = JSON.parse(readFileSync(join(dataDir, 'runtime.json'), 'utf8')) as {
        env: Record<string, string>;
        ports: number[];
        children: unknown[];
      };
      expect(runtime.env).toMatchObject({
        TEMPORAL_ADDRESS: testEnv('temporalAddress'),
        DATABASE_URL: testEnv('databaseUrl'),
        SMTP_URL: testEnv('smtpUrl'),
      });
      expect(runtime).toMatchObject({ ports: [ingressPort], children: [] });
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    }
    expect(await isPortOpen('127.0.0.1', ingressPort)).toBe(false);
  });

  it('stops with exit code 2 and one message listing every wrong variable, secrets never printed', () => {
    const result = spawnSync(node, [...withTsx, startScript], {
      env: cleanEnv({
        INGRESS_PORT: 'eighty',
        STRIPE_SECRET_KEY: 'pk_live_secret_value',
        DATABASE_URL: 'mysql://db',
      }),
      encoding: 'utf8',
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('configuration is invalid (3 problems)');
    expect(result.stderr).toContain('INGRESS_PORT');
    expect(result.stderr).toContain('STRIPE_SECRET_KEY');
    expect(result.stderr).toContain('DATABASE_URL');
    expect(result.stderr + result.stdout).not.toContain('pk_live_secret_value');
  });

  it('names the address it tried when Temporal is unreachable, and leaves nothing running', async () => {
    const port = await freePort();
    const result = spawnSync(node, [...withTsx, startScript], {
      env: cleanEnv({
        TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
        DATABASE_URL: testEnv('databaseUrl'),
        SMTP_URL: testEnv('smtpUrl'),
      }),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`cannot reach Temporal at 127.0.0.1:${port}`);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
