// `billops decisions export` as an operator runs it: DECISIONS.log written from the decisions table, in time order.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { createDecisionActivities, type RecordDecisionRequest } from '../../activities/decisions';
import { createPool } from '../../db/pool';
import { formatDecisionLine } from '../../domain/decisions';
import { operatorEnv, runBillops } from '../support/billopsCli';
import { privateDatabase, type PrivateDatabase } from '../support/privateDatabase';

describe('billops decisions export', () => {
  let database: PrivateDatabase;
  let pool: Pool;
  let tempDir: string;
  const billops = (...args: string[]) =>
    runBillops(args, operatorEnv('cli-decisions', { DATABASE_URL: database.url }));

  function request(key: string, timestamp: string, resolution: string): RecordDecisionRequest {
    return {
      idempotencyKey: key,
      workflowId: `incident-payment_processor_outage-${key}`,
      entry: {
        timestamp,
        operator: 'alice',
        incidentType: 'payment_processor_outage',
        tenants: 3,
        impact: 'revenue',
        resolution,
        credits: key === 'dec-2' ? { amountMinor: 1250, currency: 'USD' } : null,
        executor: 'Finance+Engineering',
      },
    };
  }

  // Recorded by two hosts, out of time order: the export orders by the decisions' own time.
  const decisions = [
    request('dec-3', '2026-12-03T08:00:00.000Z', 'third'),
    request('dec-1', '2026-11-30T23:59:59.999Z', 'first'),
    request('dec-2', '2026-12-02T00:00:00.000Z', 'second'),
  ];
  const line = (key: string) => formatDecisionLine(decisions.find((d) => d.idempotencyKey === key)!.entry);

  beforeAll(async () => {
    database = await privateDatabase('clidec');
    pool = createPool(database.url, { max: 2 });
    tempDir = mkdtempSync(join(tmpdir(), 'billops-cli-decisions-'));
    const hosts = ['a', 'b'].map((host) =>
      createDecisionActivities({ pool, decisionsLogPath: join(tempDir, host, 'DECISIONS.log') }),
    );
    for (const [i, decision] of decisions.entries()) await hosts[i % 2]!.recordDecision(decision);
  });

  afterAll(async () => {
    await pool?.end();
    await database?.drop();
    rmSync(tempDir, { recursive: true, force: true });
  });

  it('writes every decision to stdout in the DECISIONS.log format, ordered by time', async () => {
    const run = await billops('decisions', 'export');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(`${line('dec-1')}\n${line('dec-2')}\n${line('dec-3')}\n`);
    expect(run.stdout).toContain(
      '2026-12-02T00:00:00.000Z | OPERATOR=alice | ACTION=billing_incident | TYPE=payment_processor_outage | ' +
        'TENANTS=3 | IMPACT=revenue | RESOLUTION=second | CREDITS=USD 12.50 | EXECUTOR=Finance+Engineering\n',
    );
  });

  it('--since keeps the decisions from that UTC day on', async () => {
    const run = await billops('decisions', 'export', '--since', '2026-12-02');
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toBe(`${line('dec-2')}\n${line('dec-3')}\n`);

    const none = await billops('decisions', 'export', '--since', '2026-12-04');
    expect(none).toMatchObject({ code: 0, stdout: '' });
  });

  it('--out writes the file and says how many lines it holds', async () => {
    const out = join(tempDir, 'export', 'DECISIONS.log');
    const run = await billops('decisions', 'export', '--out', out);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`wrote 3 decisions to ${out}\n`);
    expect(readFileSync(out, 'utf8')).toBe(`${line('dec-1')}\n${line('dec-2')}\n${line('dec-3')}\n`);
  });

  it('refuses a bad --since date with exit 2 and says what a date looks like', async () => {
    for (const bad of ['2026-13-01', '2026-02-30', 'yesterday', '2026-12-02T00:00:00Z']) {
      const run = await billops('decisions', 'export', '--since', bad);
      expect(run.code).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(`--since must be a date YYYY-MM-DD (got "${bad}")`);
    }
    const extra = await billops('decisions', 'export', 'now');
    expect(extra.code).toBe(2);
    expect(extra.stderr).toContain('unexpected argument: now');
  });
});
