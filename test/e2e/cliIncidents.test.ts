// The incident commands of the operator CLI as a user runs them: bin/billops in its own process against the shared dev
// server, a worker and PostgreSQL. An incident is held open by a manual payment no provider can confirm.
import { randomBytes } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { IncidentStatus } from '../../domain/incident';
import type { WorkerDependencies } from '../../workers/dependencies';
import { incidentStatusQuery } from '../../workflows/definitions';
import { operatorCli, TEST_OPERATOR, type CliRun } from '../support/billopsCli';
import { insertTenant, type TestTenant } from '../support/dunningFixtures';
import { untilIncident } from '../support/incidentFixtures';
import { startTestWorker, type TestWorker } from '../support/testWorker';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('billops incident commands', () => {
  const taskQueue = `cli-incidents-${randomBytes(4).toString('hex')}`;
  const run = randomBytes(4).toString('hex');
  const reference = `manual-cli-${run}`;
  const key = `stuck-${run}`;
  const workflowId = `incident-stuck_transactions-${key}`;
  const quietKey = `quiet-${run}`;
  const quietId = `incident-stuck_transactions-${quietKey}`;
  let testWorker: TestWorker;
  let deps: WorkerDependencies;
  let client: Client;
  let tenant: TestTenant;

  const billops = operatorCli(taskQueue);

  const statusWhen = (id: string, done: (s: IncidentStatus) => boolean) =>
    untilIncident(client.workflow.getHandle(id), done, `status of ${id} matching`);

  /** `billops incidents ... --json` once visibility has caught up with what the test expects. */
  async function listed(
    args: string[],
    expectIn: boolean,
    id = workflowId,
  ): Promise<{ workflowId: string; phase: string }[]> {
    const until = Date.now() + 20_000;
    for (;;) {
      const result = await billops('incidents', ...args, '--json');
      expect(result).toMatchObject({ code: 0 });
      const rows = JSON.parse(result.stdout) as { workflowId: string; phase: string }[];
      if (rows.some((r) => r.workflowId === id) === expectIn || Date.now() > until) return rows;
      await sleep(500);
    }
  }

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    ({ deps, client } = testWorker);
    tenant = await insertTenant(deps.pool, 'pro');
    await deps.pool.query(
      `INSERT INTO payment_transactions (tenant_id, processor, reference, status, amount_minor, currency, created_at)
       VALUES ($1, 'manual', $2, 'pending', 4900, 'USD', now() - interval '2 hours')`,
      [tenant.id, reference],
    );
  });

  afterAll(async () => {
    for (const id of [workflowId, quietId]) {
      await client.workflow
        .getHandle(id)
        .terminate('cli incidents test done')
        .catch(() => undefined);
    }
    await deps?.pool
      .query(`UPDATE payment_transactions SET status = 'failed' WHERE reference = $1`, [reference])
      .catch(() => undefined);
    await testWorker?.stop();
  });

  it('incident start opens incident-<kind>-<key>; a second start reaches the same one', async () => {
    const args = [
      'incident',
      'start',
      'stuck_transactions',
      '--key',
      key,
      '--summary',
      'Manual payment pending since the outage',
      '--tenant',
      tenant.id,
      '--param',
      `references=["${reference}"]`,
    ];
    const first = await billops(...args);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(
      new RegExp(`^started ${workflowId} \\(run [0-9a-f-]+\\): stuck transactions, Manual payment pending`),
    );
    const second = await billops(...args);
    expect(second).toMatchObject({ code: 0, stderr: '' });
    expect(second.stdout).toMatch(new RegExp(`^joined ${workflowId} \\(run [0-9a-f-]+\\)`));
    const runOf = (r: CliRun) => /\(run ([0-9a-f-]+)\)/.exec(r.stdout)?.[1];
    expect(runOf(second)).toBe(runOf(first));

    const status = await statusWhen(workflowId, (s) => s.currentStep === 'waiting for recovery');
    expect(status).toMatchObject({
      kind: 'stuck_transactions',
      key,
      severity: 'P3',
      phase: 'open',
      source: 'operator',
      openedBy: TEST_OPERATOR,
      tenantsAffected: 1,
    });
    // The second start is counted as a repeat; the signal-with-start that opened it is not.
    expect(status.timeline.filter((e) => e.event === 'alert_fired_again')).toHaveLength(1);
  });

  it('status renders the incident for a person (severity, phase, escalation, steps, timeline) and as JSON', async () => {
    const [text, json] = await Promise.all([
      billops('status', workflowId),
      billops('status', workflowId, '--json'),
    ]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    const lines = text.stdout.split('\n');
    expect(lines[0]).toBe(`${workflowId} (running)`);
    expect(lines).toContain('  incident      stuck_transactions, key ' + key);
    expect(lines).toContain('  summary       Manual payment pending since the outage');
    expect(lines).toContain('  severity      P3 (Medium)');
    expect(lines).toContain('  phase         open');
    expect(lines).toContain('  paused        no');
    expect(lines).toContain('  current step  waiting for recovery');
    expect(lines).toContain('  tenants       1 affected');
    expect(text.stdout).toMatch(
      /^ {2}acknowledged {2}no: paging level 0 \(first_responder\), next level \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(in 4 hours\)$/m,
    );
    expect(text.stdout).toMatch(/^ {4}\S+ \S+ {2}find transactions pending over 60 minutes: 1 stuck$/m);
    expect(text.stdout).toMatch(
      new RegExp(`^ {4}\\S+ \\S+ {2}opened {14}Manual payment pending .* {2}by ${TEST_OPERATOR}$`, 'm'),
    );
    expect(text.stdout).toMatch(/^ {4}\S+ \S+ {2}paged {13}/m);

    expect(json.code).toBe(0);
    const status = JSON.parse(json.stdout) as IncidentStatus;
    expect(status).toMatchObject({
      workflowId,
      kind: 'stuck_transactions',
      phase: 'open',
      escalationLevel: 0,
    });
  });

  it('incidents lists by kind, tenant, severity and phase through visibility queries', async () => {
    const byKind = await listed(['--kind', 'stuck_transactions'], true);
    expect(byKind.find((r) => r.workflowId === workflowId)).toMatchObject({ phase: 'open' });
    const byTenant = await listed(['--tenant', tenant.id], true);
    expect(byTenant.map((r) => r.workflowId)).toEqual([workflowId]);
    expect(await listed(['--severity', 'p3', '--phase', 'open'], true)).toContainEqual(
      expect.objectContaining({ workflowId, phase: 'open' }),
    );
    expect(
      (await listed(['--severity', 'P1', '--tenant', tenant.id], false)).map((r) => r.workflowId),
    ).toEqual([]);
    expect(
      (await listed(['--phase', 'acknowledged', '--tenant', tenant.id], false)).map((r) => r.workflowId),
    ).toEqual([]);

    const text = await billops('incidents', '--tenant', tenant.id);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(
      /^WORKFLOW ID +KIND +SEVERITY +PHASE +ACKNOWLEDGED BY +LEVEL +TENANT +OPENED$/,
    );
    expect(text.stdout).toMatch(
      new RegExp(`^${workflowId} +stuck_transactions +P3 +open +- +0 +${tenant.id} +\\S+$`, 'm'),
    );
  });

  it('pause and resume reach the incident through the shared signals', async () => {
    const paused = await billops('pause', workflowId, '--reason', 'checking with the bank');
    expect(paused).toMatchObject({ code: 0, stderr: '' });
    const held = await statusWhen(workflowId, (s) => s.paused);
    expect(held.timeline.at(-1)).toMatchObject({
      event: 'paused',
      detail: 'checking with the bank',
      operator: TEST_OPERATOR,
    });
    expect(held.nextEscalationAt).toBeNull();
    expect((await billops('status', workflowId)).stdout).toContain('  paused        yes');

    expect(await billops('resume', workflowId)).toMatchObject({ code: 0, stderr: '' });
    const resumed = await statusWhen(workflowId, (s) => !s.paused);
    expect(resumed.timeline.at(-1)).toMatchObject({ event: 'resumed', operator: TEST_OPERATOR });

    // The incident refuses a resume when nothing is paused; the CLI reads the refusal back and says so.
    const again = await billops('resume', workflowId);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('billops: refused: incident is not paused');
  });

  it('ack acknowledges once and refuses twice; approve with nothing waiting is refused', async () => {
    const ack = await billops('ack', workflowId, '--operator', 'alice');
    expect(ack).toMatchObject({ code: 0, stderr: '' });
    expect(ack.stdout).toMatch(
      new RegExp(
        `^acknowledged ${workflowId} by alice at \\S+ \\S+Z; escalation stops at level 0 \\(first_responder\\)$`,
        'm',
      ),
    );
    const status = await client.workflow.getHandle(workflowId).query(incidentStatusQuery);
    expect(status).toMatchObject({ phase: 'acknowledged', acknowledgedBy: 'alice', nextEscalationAt: null });
    expect(await listed(['--phase', 'acknowledged', '--tenant', tenant.id], true)).toContainEqual(
      expect.objectContaining({ workflowId, phase: 'acknowledged' }),
    );

    const again = await billops('ack', workflowId);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^billops: refused: incident already acknowledged by alice at /);

    const approve = await billops('approve', workflowId, '--step', 'switch processor');
    expect(approve.code).toBe(1);
    expect(approve.stderr).toContain(
      'billops: refused: no step is waiting for approval (asked to approve "switch processor")',
    );
  });

  it('resolve closes the incident; rca records the root cause and the workflow completes', async () => {
    const missing = await billops('resolve', workflowId);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('billops: --summary TEXT is required');
    expect(missing.stderr).toContain('usage: billops resolve <workflowId> --summary TEXT');

    const resolved = await billops(
      'resolve',
      workflowId,
      '--summary',
      'Bank confirmed the transfer by phone',
    );
    expect(resolved).toMatchObject({ code: 0, stderr: '' });
    expect(resolved.stdout).toMatch(
      new RegExp(`^resolved ${workflowId} by ${TEST_OPERATOR}: Bank confirmed`),
    );
    const closing = await statusWhen(
      workflowId,
      (s) => s.currentStep === 'waiting for the root-cause analysis',
    );
    expect(closing).toMatchObject({ phase: 'resolved', resolution: { by: TEST_OPERATOR } });
    const text = await billops('status', workflowId);
    expect(text.stdout).toContain(`  root cause    not yet (billops rca ${workflowId} --summary ...)`);

    const rca = await billops('rca', workflowId, '--summary', 'Bank batch job delayed settlement files');
    expect(rca).toMatchObject({ code: 0, stderr: '' });
    await client.workflow.getHandle(workflowId).result();
    const { rows } = await deps.pool.query<{ status: string; rca_summary: string; rca_by: string }>(
      'SELECT status, rca_summary, rca_by FROM incidents WHERE workflow_id = $1',
      [workflowId],
    );
    expect(rows[0]).toEqual({
      status: 'closed',
      rca_summary: 'Bank batch job delayed settlement files',
      rca_by: TEST_OPERATOR,
    });
    const closed = await billops('status', workflowId);
    expect(closed.code).toBe(0);
    expect(closed.stdout.split('\n')[0]).toBe(`${workflowId} (completed)`);
    expect(closed.stdout).toContain('  phase         closed');
    expect(closed.stdout).toContain('  root cause    recorded');
    expect(await listed(['--phase', 'closed', '--tenant', tenant.id], true)).toContainEqual(
      expect.objectContaining({ workflowId, phase: 'closed' }),
    );

    const late = await billops('ack', workflowId);
    expect(late.code).toBe(1);
    expect(late.stderr).toBe(`billops: workflow ${workflowId} is completed, not running\n`);
  });

  it('rca after the workflow ended writes the incidents row, once', async () => {
    const started = await billops(
      'incident',
      'start',
      'stuck_transactions',
      '--key',
      quietKey,
      '--summary',
      'Nothing stuck after all',
      '--param',
      'references=[]',
      '--json',
    );
    expect(started.code).toBe(0);
    expect(JSON.parse(started.stdout)).toMatchObject({
      outcome: 'started',
      workflowId: quietId,
      workflowType: 'stuckTransactionsWorkflow',
    });
    await statusWhen(quietId, (s) => s.currentStep === 'waiting for the root-cause analysis');
    await client.workflow.getHandle(quietId).terminate('ended before its root cause was recorded');

    const rca = await billops('rca', quietId, '--summary', 'False alarm: a report query timed out', '--json');
    expect(rca.code).toBe(0);
    expect(JSON.parse(rca.stdout)).toMatchObject({ workflowId: quietId, rcaBy: TEST_OPERATOR });
    const { rows } = await deps.pool.query<{ rca_summary: string; rca_at: Date | null }>(
      'SELECT rca_summary, rca_at FROM incidents WHERE workflow_id = $1',
      [quietId],
    );
    expect(rows[0]?.rca_summary).toBe('False alarm: a report query timed out');
    expect(rows[0]?.rca_at).toBeInstanceOf(Date);

    const again = await billops('rca', quietId, '--summary', 'second thoughts');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(
      new RegExp(`^billops: refused: a root cause was already recorded by ${TEST_OPERATOR} at `),
    );
  });

  it('an unknown workflow is exit 1 with a message; bad arguments are exit 2 with the usage', async () => {
    const unknown = `incident-stuck_transactions-nope-${run}`;
    for (const args of [
      ['status', unknown],
      ['ack', unknown],
      ['resolve', unknown, '--summary', 'x'],
      ['rca', unknown, '--summary', 'x'],
    ]) {
      const result = await billops(...args);
      expect({ args, code: result.code, stderr: result.stderr }).toEqual({
        args,
        code: 1,
        stderr: `billops: no workflow ${unknown} in namespace default\n`,
      });
    }
    const cases: [string[], string][] = [
      [
        ['incident', 'start', 'no_such_kind', '--key', 'k', '--summary', 's'],
        '<kind> must be one of payment_processor_outage',
      ],
      [['incident', 'start', 'refund', '--summary', 's'], '--key K is required'],
      [
        ['incident', 'start', 'refund', '--key', 'k', '--summary', 's', '--param', 'novalue'],
        '--param must be name=value',
      ],
      [
        ['incident', 'start', 'refund', '--key', 'k', '--summary', 's', '--severity', 'P9'],
        '--severity must be one of P1, P2, P3, P4',
      ],
      [['incidents', '--phase', 'sleeping'], '--phase must be one of open, acknowledged, resolved, closed'],
      [['incidents', '--tenant', "x' OR 1=1"], '--tenant must be a tenant id'],
      [['ack'], '<workflowId> is required'],
      [['approve', workflowId], '--step NAME is required'],
      [['ack', workflowId, '--bogus'], "Unknown option '--bogus'"],
    ];
    for (const [args, message] of cases) {
      const result = await billops(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toContain(message);
      expect(result.stderr).toMatch(/\nusage: billops /);
    }
  });
});
