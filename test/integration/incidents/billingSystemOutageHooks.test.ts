// The billing-system-outage hooks run contained (issue 15 item 11): a command hook gets only its documented variables,
// its output is redacted of every configured secret and capped, its whole process group dies on timeout, and the same
// hook for the same incident never runs twice at once, however many workers call it. Real hook scripts, written here.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { createBillingOutageActivities } from '../../../activities/incidents/billingSystemOutage';
import {
  createOutageHookActivities,
  HOOK_INHERITED_VARIABLES,
  HOOK_OUTPUT_LIMIT,
  type OutageHookRequest,
} from '../../../activities/incidents/billingSystemOutage/hooks';
import { parseConfig } from '../../../config/env';
import { createPool } from '../../../db/pool';
import { incidentDependencies } from '../../../workers/dependencies';
import { testEnv } from '../../support/testRuntime';
import { TEST_PORTAL_URL } from '../../support/workerDeps';

jest.setTimeout(120_000);

const STRIPE_KEY = 'sk_test_hookSecret4242424242';
const DB_PASSWORD = 'pg-pass-w0rd-for-hooks';
const DOCUMENTED = [
  'BILLOPS_HOOK_ACTION',
  'BILLOPS_INCIDENT_ID',
  'BILLOPS_INCIDENT_KIND',
  'BILLOPS_INCIDENT_SEVERITY',
  'BILLOPS_IDEMPOTENCY_KEY',
];
// What /bin/sh sets by itself.
const SHELL_OWN = ['PWD', 'OLDPWD', 'SHLVL', '_'];

let pool: Pool;
let dir: string;

beforeAll(() => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  dir = mkdtempSync(join(tmpdir(), 'billops-hook-scripts-'));
});
afterAll(async () => pool?.end());

/** A fresh incident per test: runs are keyed by incident and hook. */
function request(action: 'scale_up' | 'failover', timeoutSeconds = 10): OutageHookRequest {
  const workflowId = `incident-billing_system_outage-hooks-${randomUUID()}`;
  return {
    action,
    idempotencyKey: `${workflowId}/hook/${action}`,
    incident: { workflowId, kind: 'billing_system_outage', severity: 'P1', summary: 'billing API down' },
    timeoutSeconds,
  };
}

/** An executable script in the test's temp dir; the hook is its path. */
function script(name: string, body: string): string {
  const path = join(dir, `${name}-${randomUUID().slice(0, 8)}.sh`);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Processes alive (not zombies) among `pids`, or in process group `pgid`. */
function alive(filter: { pids?: number[]; pgid?: number }): string[] {
  const ps = spawnSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([pid, pgid, stat]) => {
      if (!pid || !stat || stat.startsWith('Z')) return false;
      return filter.pids?.includes(Number(pid)) || Number(pgid) === filter.pgid;
    })
    .map((fields) => fields.join(' '));
}

async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

describe('outage hooks run contained', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  });

  it("gets only its documented variables and what a process needs, none of the worker's secrets", async () => {
    process.env.STRIPE_SECRET_KEY = STRIPE_KEY;
    process.env.DATABASE_URL = `postgres://billops:${DB_PASSWORD}@db:5432/billops`;
    process.env.SOME_OTHER_TOKEN = 'not-for-hooks';
    const envFile = join(dir, `env-${randomUUID()}.txt`);
    const hooks = createOutageHookActivities({
      pool,
      scaleUpHook: script('print-env', `env > '${envFile}'`),
    });
    const req = request('scale_up');
    const result = await hooks.runOutageHook(req);
    expect(result).toMatchObject({ via: 'command', ok: true, exitCode: 0 });

    const env = new Map(
      readFileSync(envFile, 'utf8')
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    const allowed = new Set<string>([...DOCUMENTED, ...HOOK_INHERITED_VARIABLES, ...SHELL_OWN]);
    expect([...env.keys()].filter((name) => !allowed.has(name))).toEqual([]);
    expect(env.get('BILLOPS_INCIDENT_ID')).toBe(req.incident.workflowId);
    expect(env.get('BILLOPS_IDEMPOTENCY_KEY')).toBe(req.idempotencyKey);
    expect(env.get('PATH')).toBe(process.env.PATH);
    const text = readFileSync(envFile, 'utf8');
    for (const leaked of [STRIPE_KEY, DB_PASSWORD, 'not-for-hooks']) expect(text).not.toContain(leaked);
  });

  it('its output is redacted of every configured secret, wired from the configuration by the worker', async () => {
    const parsed = parseConfig({
      STRIPE_SECRET_KEY: STRIPE_KEY,
      DATABASE_URL: `postgres://billops:${DB_PASSWORD}@db:5432/billops`,
      ALERTMANAGER_TOKEN: 'am-token-for-hooks',
      BILLOPS_FAILOVER_HOOK: script(
        'echo-secrets',
        [
          `echo "stripe key is ${STRIPE_KEY}"`,
          `echo "db password: ${DB_PASSWORD}" >&2`,
          `echo "am token am-token-for-hooks"`,
        ].join('\n'),
      ),
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const activities = createBillingOutageActivities({
      pool,
      incidents: incidentDependencies(parsed.config),
      gateways: {},
      billingPortalUrl: TEST_PORTAL_URL,
    });
    const result = await activities.runOutageHook(request('failover'));
    expect(result.ok).toBe(true);
    expect(result.output).toContain('stripe key is [redacted]');
    expect(result.output).toContain('db password: [redacted]');
    expect(result.output).toContain('am token [redacted]');
    const shown = JSON.stringify(result);
    for (const secret of [STRIPE_KEY, DB_PASSWORD, 'am-token-for-hooks']) expect(shown).not.toContain(secret);
  });

  it('its output is capped, saying it was cut, and a hook that prints megabytes still runs to its end', async () => {
    const hooks = createOutageHookActivities({
      pool,
      secrets: [STRIPE_KEY],
      // Over 100 KiB of lines that are the secret, then a last line.
      scaleUpHook: script(
        'print-100k',
        `i=0; while [ $i -lt 3600 ]; do echo "${STRIPE_KEY}"; i=$((i+1)); done; echo done`,
      ),
      failoverHook: script('print-2m', 'head -c 2097152 /dev/zero | tr "\\0" x; echo; echo finished'),
    });
    const big = await hooks.runOutageHook(request('scale_up'));
    expect(big).toMatchObject({ ok: true, exitCode: 0 });
    const output = big.output ?? '';
    expect(output).toMatch(/^\[output cut: the command printed \d+ characters; the last \d+ follow\]\n/);
    expect(output.length).toBeLessThanOrEqual(HOOK_OUTPUT_LIMIT + 100);
    expect(output.endsWith('done')).toBe(true);
    expect(output).not.toContain(STRIPE_KEY);
    // No piece of the secret where the cut fell either: only whole "[redacted]" markers between newlines.
    const body = output.split('\n').slice(1, -1);
    expect(body.length).toBeGreaterThan(100);
    expect(body.filter((line) => line !== '[redacted]' && line !== '')).toEqual([]);

    const huge = await hooks.runOutageHook(request('failover'));
    expect(huge).toMatchObject({ ok: true, exitCode: 0, detail: 'command exited 0' });
    expect(huge.output?.endsWith('finished')).toBe(true);
    expect(huge.output!.length).toBeLessThanOrEqual(HOOK_OUTPUT_LIMIT + 100);
  });

  it('on timeout its whole process group is killed, a background child included', async () => {
    const pgidFile = join(dir, `pgid-${randomUUID()}`);
    const childFile = join(dir, `child-${randomUUID()}`);
    const selfFile = join(dir, `self-${randomUUID()}`);
    const hooks = createOutageHookActivities({
      pool,
      failoverHook: script(
        'spawn-and-hang',
        [
          `echo $$ > '${selfFile}'`,
          `ps -o pgid= -p $$ | tr -d ' ' > '${pgidFile}'`,
          'sleep 300 &',
          `echo $! > '${childFile}'`,
          'sleep 60',
        ].join('\n'),
      ),
    });
    const started = Date.now();
    const result = await hooks.runOutageHook(request('failover', 1));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(result).toMatchObject({ ok: false, detail: 'command timed out after 1 s and was killed' });

    const pgid = Number(readFileSync(pgidFile, 'utf8'));
    const pids = [Number(readFileSync(selfFile, 'utf8')), Number(readFileSync(childFile, 'utf8'))];
    // A group of its own, not the worker's, so killing it touches nothing else.
    const ownGroup = spawnSync('ps', ['-o', 'pgid=', '-p', String(process.pid)], { encoding: 'utf8' });
    expect(pgid).not.toBe(Number(ownGroup.stdout.trim()));
    const gone = await eventually(() => alive({ pids, pgid }).length === 0, 3_000);
    expect(alive({ pids, pgid })).toEqual([]);
    expect(gone).toBe(true);
  });

  it('two workers calling the same hook for the same incident at once run it once; both get its outcome', async () => {
    const ranFile = join(dir, `ran-${randomUUID()}.txt`);
    const hook = script(
      'append-once',
      `echo "$BILLOPS_IDEMPOTENCY_KEY" >> '${ranFile}'; sleep 1; echo scaled`,
    );
    const otherPool = createPool(testEnv('databaseUrl'), { max: 2 });
    try {
      const workerA = createOutageHookActivities({ pool, scaleUpHook: hook });
      const workerB = createOutageHookActivities({ pool: otherPool, scaleUpHook: hook });

      // The same step delivered twice (an activity retried while the first attempt still runs).
      const req = request('scale_up');
      const [a, b] = await Promise.all([workerA.runOutageHook(req), workerB.runOutageHook(req)]);
      expect(readFileSync(ranFile, 'utf8').trim().split('\n')).toEqual([req.idempotencyKey]);
      expect(a).toEqual(b);
      expect(a).toMatchObject({ ok: true, output: 'scaled' });

      // Another step of the same incident asking for the same hook while it runs: answered with that run's outcome.
      const later = request('scale_up');
      const second = { ...later, idempotencyKey: `${later.idempotencyKey}/again` };
      const [c, d] = await Promise.all([workerA.runOutageHook(later), workerB.runOutageHook(second)]);
      const lines = readFileSync(ranFile, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(2);
      expect([later.idempotencyKey, second.idempotencyKey]).toContain(lines[1]);
      expect(c).toEqual(d);

      // Once finished, a repeat of the same step is answered from its record: the failover does not run again.
      expect(await workerB.runOutageHook(req)).toEqual(a);
      expect(readFileSync(ranFile, 'utf8').trim().split('\n')).toHaveLength(2);
    } finally {
      await otherPool.end();
    }
  });

  it('a run whose worker went away (its lease passed) does not hold the hook: the step runs', async () => {
    const ranFile = join(dir, `ran-${randomUUID()}.txt`);
    const hooks = createOutageHookActivities({
      pool,
      failoverHook: script('append-after-crash', `echo ran >> '${ranFile}'`),
    });
    const req = request('failover');
    for (const key of [req.idempotencyKey, `${req.idempotencyKey}/earlier`]) {
      await pool.query(`DELETE FROM outage_hook_runs WHERE workflow_id = $1`, [req.incident.workflowId]);
      await pool.query(
        `INSERT INTO outage_hook_runs (idempotency_key, workflow_id, action, claim_id, lease_until)
         VALUES ($1, $2, 'failover', $3, now() - interval '1 second')`,
        [key, req.incident.workflowId, randomUUID()],
      );
      expect(await hooks.runOutageHook(req)).toMatchObject({ ok: true, exitCode: 0 });
    }
    expect(readFileSync(ranFile, 'utf8').trim().split('\n')).toEqual(['ran', 'ran']);
  });

  it('a different incident runs the same hook on its own', async () => {
    const ranFile = join(dir, `ran-${randomUUID()}.txt`);
    const hooks = createOutageHookActivities({
      pool,
      scaleUpHook: script('append', `echo "$BILLOPS_INCIDENT_ID" >> '${ranFile}'; sleep 1`),
    });
    const [one, two] = [request('scale_up'), request('scale_up')];
    await Promise.all([hooks.runOutageHook(one), hooks.runOutageHook(two)]);
    expect(readFileSync(ranFile, 'utf8').trim().split('\n').sort()).toEqual(
      [one.incident.workflowId, two.incident.workflowId].sort(),
    );
  });
});
