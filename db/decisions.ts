// The decisions table (the record behind DECISIONS.log) and the claim that names the one worker log appending a line.
import type { Pool, PoolClient } from 'pg';
import type { ParsedDecisionEntry } from '../domain/decisions';

export interface DecisionRow {
  /** The line as the runbook writes it, without its newline; the fields are what the line says. */
  line: string;
  fields: ParsedDecisionEntry;
  workflowId: string;
  idempotencyKey: string;
}

/** Inserts the decision unless its key is recorded; either way answers the line on record and whether it was new. */
export async function insertDecision(
  client: PoolClient,
  row: DecisionRow,
): Promise<{ line: string; inserted: boolean }> {
  const { fields } = row;
  // A concurrent insert with the same key waits here on the unique index until the other commits or rolls back.
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
      row.line,
      row.workflowId,
      row.idempotencyKey,
    ],
  );
  if (inserted.rowCount === 1) return { line: row.line, inserted: true };
  const { rows } = await client.query<{ line: string }>(
    'SELECT line FROM decisions WHERE idempotency_key = $1',
    [row.idempotencyKey],
  );
  return { line: rows[0]?.line ?? row.line, inserted: false };
}

/**
 * Claims the appending of a decision's line for `writer` (committed at once), or answers the writer that holds it:
 * the first claim wins, whichever worker host makes it.
 */
export async function claimDecisionLogWriter(
  pool: Pool,
  idempotencyKey: string,
  writer: string,
): Promise<string> {
  // A claim can be released between the two statements (its writer failed to append): then claim again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const claimed = await pool.query<{ writer: string }>(
      `INSERT INTO decision_log_writers (idempotency_key, writer) VALUES ($1, $2)
       ON CONFLICT (idempotency_key) DO NOTHING RETURNING writer`,
      [idempotencyKey, writer],
    );
    if (claimed.rows[0]) return claimed.rows[0].writer;
    const held = await pool.query<{ writer: string }>(
      'SELECT writer FROM decision_log_writers WHERE idempotency_key = $1',
      [idempotencyKey],
    );
    if (held.rows[0]) return held.rows[0].writer;
  }
  throw new Error(`the DECISIONS.log claim for ${idempotencyKey} kept changing hands; retry`);
}

/** Gives the claim up after `writer` failed to append the line, so the next attempt on any host may claim it. */
export async function releaseDecisionLogWriter(
  pool: Pool,
  idempotencyKey: string,
  writer: string,
): Promise<void> {
  await pool.query('DELETE FROM decision_log_writers WHERE idempotency_key = $1 AND writer = $2', [
    idempotencyKey,
    writer,
  ]);
}

/** Every recorded line at or after `since` (all when undefined), in the decisions' time order. */
export async function listDecisionLines(pool: Pool, opts: { since?: Date } = {}): Promise<string[]> {
  const { rows } = await pool.query<{ line: string }>(
    'SELECT line FROM decisions WHERE $1::timestamptz IS NULL OR at >= $1 ORDER BY at, id',
    [opts.since?.toISOString() ?? null],
  );
  return rows.map((r) => r.line);
}
