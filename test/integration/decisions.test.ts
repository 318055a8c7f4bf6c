// Two worker hosts over one database, each with its own DECISIONS.log: the decisions table holds each decision once,
// and each line is appended to one host's log once, also when an attempt's COMMIT is lost and another host retries.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { createDecisionActivities, type RecordDecisionRequest } from '../../activities/decisions';
import { createPool } from '../../db/pool';
import { formatDecisionLine } from '../../domain/decisions';

const databaseUrl = process.env.BILLOPS_TEST_DATABASE_URL;
if (!databaseUrl) {
  throw new Error(
    'BILLOPS_TEST_DATABASE_URL is not set: these tests need a real, migrated PostgreSQL database. ' +
      'Run them with `npm test` or `npx jest` (the globalSetup starts one) or set the variable yourself.',
  );
}

const suffix = () => randomBytes(4).toString('hex');

let pool: Pool;
let tempDir: string;

beforeAll(() => {
  pool = createPool(databaseUrl, { max: 6 });
  tempDir = mkdtempSync(join(tmpdir(), 'billops-decisions-'));
});

afterAll(async () => {
  await pool.end();
  rmSync(tempDir, { recursive: true, force: true });
});

function request(key: string, resolution: string): RecordDecisionRequest {
  return {
    idempotencyKey: key,
    workflowId: `incident-payment_processor_outage-${key}`,
    entry: {
      timestamp: '2026-12-07T10:15:00.000Z',
      operator: 'alice',
      incidentType: 'payment_processor_outage',
      tenants: 7,
      impact: 'revenue',
      resolution,
      credits: { amountMinor: 350, currency: 'USD' },
      executor: 'Finance+Engineering',
    },
  };
}

/** A worker host: its own DECISIONS.log, the shared database (through `db`, the pool by default). */
function worker(name: string, db: Pool = pool) {
  const decisionsLogPath = join(tempDir, suffix(), name, 'DECISIONS.log');
  return { decisionsLogPath, ...createDecisionActivities({ pool: db, decisionsLogPath }) };
}

function logLines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

/** How often `line` was appended across the hosts' logs. */
function appendedTimes(line: string, paths: string[]): number {
  return paths.flatMap(logLines).filter((l) => l === line).length;
}

async function rowsFor(key: string): Promise<string[]> {
  const { rows } = await pool.query<{ line: string }>(
    'SELECT line FROM decisions WHERE idempotency_key = $1',
    [key],
  );
  return rows.map((r) => r.line);
}

/** The shared pool, except that the first transaction's COMMIT is lost, as when the connection drops under it. */
function losingFirstCommit(target: Pool): Pool {
  let lost = false;
  const lossy = (client: PoolClient): PoolClient => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    return new Proxy(client, {
      get(c, prop) {
        if (prop !== 'query') return Reflect.get(c, prop) as unknown;
        return (...args: unknown[]) => {
          if (args[0] === 'COMMIT' && !lost) {
            lost = true;
            return Promise.reject(new Error('Connection terminated unexpectedly'));
          }
          return query(...args);
        };
      },
    });
  };
  return new Proxy(target, {
    get(p, prop) {
      if (prop === 'connect') return async () => lossy(await p.connect());
      const value = Reflect.get(p, prop) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(p) : value;
    },
  });
}

describe('DECISIONS.log with two worker hosts', () => {
  it('records one decision under one key and two different decisions: each row once, each line appended once', async () => {
    const [hostA, hostB] = [worker('a'), worker('b')];
    const [shared, onA, onB] = [`decision-${suffix()}`, `decision-${suffix()}`, `decision-${suffix()}`];
    const requests = {
      [shared]: request(shared, 'Stripe recovered; failed charges retried'),
      [onA]: request(onA, 'routed to Paystack'),
      [onB]: request(onB, 'status page updated'),
    };

    await Promise.all([
      hostA.recordDecision(requests[shared]!),
      hostB.recordDecision(requests[shared]!),
      hostA.recordDecision(requests[onA]!),
      hostB.recordDecision(requests[onB]!),
    ]);
    // Temporal retries the shared decision on both hosts once more.
    await Promise.all([hostA.recordDecision(requests[shared]!), hostB.recordDecision(requests[shared]!)]);

    const logs = [hostA.decisionsLogPath, hostB.decisionsLogPath];
    for (const key of [shared, onA, onB]) {
      const line = formatDecisionLine(requests[key]!.entry);
      expect(await rowsFor(key)).toEqual([line]);
      expect(appendedTimes(line, logs)).toBe(1);
    }
  });

  it('does not append the line again on the other host when the first attempt appended it and lost its COMMIT', async () => {
    const hostA = worker('a', losingFirstCommit(pool));
    const hostB = worker('b');
    const key = `decision-${suffix()}`;
    const decision = request(key, 'Paystack recovered; read-only mode lifted');
    const line = formatDecisionLine(decision.entry);
    const logs = [hostA.decisionsLogPath, hostB.decisionsLogPath];

    // Host A appends its line, then the COMMIT is lost: no row, and the activity fails.
    await expect(hostA.recordDecision(decision)).rejects.toThrow('Connection terminated unexpectedly');
    expect(await rowsFor(key)).toEqual([]);
    expect(logLines(hostA.decisionsLogPath)).toEqual([line]);

    // Temporal retries the activity on host B, then once more on host A.
    expect((await hostB.recordDecision(decision)).line).toBe(line);
    expect((await hostA.recordDecision(decision)).line).toBe(line);

    expect(await rowsFor(key)).toEqual([line]);
    expect(appendedTimes(line, logs)).toBe(1);
  });
});
