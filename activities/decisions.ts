// Decision activities: the DECISIONS.log line that ends every incident, recorded once as a decisions row (the record,
// `billops decisions export` writes the whole log from it) and appended once to one worker host's log.
import { mkdir, open, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { claimDecisionLogWriter, insertDecision, releaseDecisionLogWriter } from '../db/decisions';
import { inTransaction } from '../db/pool';
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
  /**
   * True when this call recorded the decision, or wrote its line, in this worker's log. False when the key was
   * already recorded and logged, or when another worker host's log holds the line (the table has it either way).
   */
  appended: boolean;
}

export function createDecisionActivities(deps: {
  pool: Pool;
  decisionsLogPath: string;
  /** Names this worker's log among the hosts sharing the database; by default `<hostname>:<absolute log path>`. */
  logWriter?: string;
}) {
  const writer = deps.logWriter ?? `${hostname()}:${resolve(deps.decisionsLogPath)}`;
  return {
    async recordDecision(req: RecordDecisionRequest): Promise<RecordedDecision> {
      if (!req.idempotencyKey?.trim()) invalid('idempotencyKey must not be empty');
      const { line, fields } = decisionLine(req.entry);
      // Committed before anything is appended: a retry on another host, even after this attempt's COMMIT is lost,
      // sees that this log holds (or will hold) the line and records the row without appending it again.
      const logWriter = await claimDecisionLogWriter(deps.pool, req.idempotencyKey, writer);
      let appendFailed = false;
      try {
        return await inTransaction(deps.pool, async (client) => {
          const recorded = await insertDecision(client, {
            line,
            fields,
            workflowId: req.workflowId,
            idempotencyKey: req.idempotencyKey,
          });
          if (logWriter !== writer) return { line: recorded.line, appended: false };
          // Written before COMMIT: a failed write rolls a new row back, so the retry writes the line again.
          const wrote = await appendLineOnce(deps.decisionsLogPath, recorded.line).catch((err: unknown) => {
            appendFailed = true;
            throw err;
          });
          return { line: recorded.line, appended: recorded.inserted || wrote };
        });
      } catch (err) {
        // Nothing was appended: let the next attempt, on whichever host, claim the line.
        if (appendFailed) await releaseDecisionLogWriter(deps.pool, req.idempotencyKey, writer);
        throw err;
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

/** Appends `line` unless the log holds it already; answers whether it wrote. */
async function appendLineOnce(path: string, line: string): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  // Crash window (appended, then COMMIT lost): the retry finds its exact line anywhere in the log and skips it; a twin line would be the same decision to the millisecond.
  if (existing.split('\n').includes(line)) return false;
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
  return true;
}

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidDecision');
}
export type DecisionActivities = ReturnType<typeof createDecisionActivities>;
