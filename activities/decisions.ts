// Decision activities: the DECISIONS.log line that ends every incident, kept as a decisions row and written to the log once.
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import {
  DecisionLineError,
  formatDecisionLine,
  parseDecisionLine,
  type DecisionEntry,
  type ParsedDecisionEntry,
} from '../domain/decisions';
import { MoneyError } from '../domain/money';

export interface RecordDecisionRequest {
  /** Workflow id + step (or run id): the same key always means the same decision, written once. */
  idempotencyKey: string;
  workflowId: string;
  /** The timestamp as an ISO-8601 string: activity arguments travel as JSON. */
  entry: DecisionEntry & { timestamp: string };
}

export interface RecordedDecision {
  /** The line as stored and logged, without its newline; for a key seen before, the line first recorded. */
  line: string;
  /** False when the key was already recorded: nothing was written this time. */
  appended: boolean;
}

export function createDecisionActivities(deps: { pool: Pool; decisionsLogPath: string }) {
  return {
    async recordDecision(req: RecordDecisionRequest): Promise<RecordedDecision> {
      if (!req.idempotencyKey?.trim()) invalid('idempotencyKey must not be empty');
      const { line, fields } = decisionLine(req.entry);
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN');
        // A concurrent attempt with the same key waits here on the unique index until this one commits or rolls back.
        const inserted = await client.query(
          `INSERT INTO decisions (at, operator, incident_type, tenants_count, impact, resolution, credits_minor,
                                  credits_currency, executor, line, workflow_id, idempotency_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT (idempotency_key) DO NOTHING`,
          [
            fields.timestamp,
            fields.operator,
            fields.incidentType,
            fields.tenants,
            fields.impact,
            fields.resolution,
            fields.credits?.amountMinor ?? 0,
            fields.credits?.currency ?? null,
            fields.executor,
            line,
            req.workflowId,
            req.idempotencyKey,
          ],
        );
        if (inserted.rowCount === 0) {
          const { rows } = await client.query<{ line: string }>(
            'SELECT line FROM decisions WHERE idempotency_key = $1',
            [req.idempotencyKey],
          );
          await client.query('COMMIT');
          return { line: rows[0]?.line ?? line, appended: false };
        }
        // Written before COMMIT: a failed write rolls the row back, so the retry writes the line again.
        await appendLineOnce(deps.decisionsLogPath, line);
        await client.query('COMMIT');
        return { line, appended: true };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

/** The runbook line and the values it holds after sanitising, so the row's columns say exactly what the line says. */
function decisionLine(entry: DecisionEntry): { line: string; fields: ParsedDecisionEntry } {
  try {
    const line = formatDecisionLine(entry);
    const fields = parseDecisionLine(line);
    if (fields.credits && fields.credits.amountMinor < 0) invalid(`CREDITS must not be negative: ${line}`);
    return { line, fields };
  } catch (err) {
    if (err instanceof DecisionLineError || err instanceof MoneyError) invalid(err.message);
    throw err;
  }
}

async function appendLineOnce(path: string, line: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  // Crash window (appended, then COMMIT lost): the retry finds its exact line anywhere in the log and skips it; a twin line would be the same decision to the millisecond.
  if (existing.split('\n').includes(line)) return;
  // A torn last line from a crashed writer must not swallow this one.
  const separator = existing !== '' && !existing.endsWith('\n') ? '\n' : '';
  const handle = await open(path, 'a');
  try {
    await handle.appendFile(`${separator}${line}\n`, 'utf8');
    // On disk before the row commits, so a machine crash cannot leave a committed row without its line.
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidDecision');
}
export type DecisionActivities = ReturnType<typeof createDecisionActivities>;
