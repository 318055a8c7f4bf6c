// Billing read-only mode as the critical activities see it (seed 000 "Queue critical operations (payments,
// suspensions)"): while the `billing_read_only` override is active they queue their change instead of writing it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { inTransaction } from '../db/pool';

/** The operational override a billing system outage sets while billing writes are failing. */
export const BILLING_READ_ONLY = 'billing_read_only';

/**
 * Held shared by every guard between "is billing read-only?" and queueing, and exclusively by the replay when it
 * clears the switch: nothing can be queued behind a replay that already finished, so the queue keeps its order.
 */
export const READ_ONLY_LOCK_KEY = 7_201_122_006;

export type QueuedOperationKind = 'payment' | 'suspension' | 'service_control';

/** The activities whose calls are queued; the replay runs the same activity with the same request. */
export type QueueableActivity = 'retryInvoicePayment' | 'applyServiceControls' | 'restoreService';

export interface QueuedOperationPayload {
  activity: QueueableActivity;
  request: unknown;
  /** The workflow that asked for it (a dunning lifecycle), when it came from one. */
  requestedBy: string | null;
}

export interface QueuedOperation {
  id: number;
  status: 'queued' | 'replayed' | 'failed';
  /** The incident that put billing in read-only mode. */
  incidentWorkflowId: string | null;
  /** What the replay answered (the activity's own result), once replayed. */
  result: unknown;
  error: string | null;
}

const replaying = new AsyncLocalStorage<number>();

/** Runs a queued operation's activity past the guard (the replay itself must not queue it again). */
export function replayingOperation<T>(operationId: number, run: () => Promise<T>): Promise<T> {
  return replaying.run(operationId, run);
}

/**
 * Queues the operation when billing is read-only and answers with its queue row; answers null when billing is
 * writable and the caller should go ahead. A call queued before (same key) answers with that row whatever the mode,
 * so a retried activity never queues twice nor runs what the replay already ran.
 */
export async function queueWhileReadOnly(
  pool: Pool,
  op: {
    kind: QueuedOperationKind;
    tenantId: string;
    activity: QueueableActivity;
    request: unknown;
    /** The caller's own idempotency key; otherwise the activity invocation's (workflow, run, activity id). */
    idempotencyKey?: string;
  },
): Promise<QueuedOperation | null> {
  if (replaying.getStore() !== undefined) return null;
  const key = `queued/${op.activity}/${op.idempotencyKey ?? invocationKey()}`;
  // The common case costs one indexed read: not read-only, never queued.
  const { rows: mode } = await pool.query<{ relevant: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM operational_overrides WHERE name = $1 AND cleared_at IS NULL)
         OR EXISTS (SELECT 1 FROM queued_operations WHERE idempotency_key = $2) AS relevant`,
    [BILLING_READ_ONLY, key],
  );
  if (!mode[0]?.relevant) return null;

  const row = await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock_shared($1)', [READ_ONLY_LOCK_KEY]);
    const existing = await client.query<QueuedRow>(`${SELECT_QUEUED} WHERE idempotency_key = $1`, [key]);
    if (existing.rows[0]) return existing.rows[0];
    const payload: QueuedOperationPayload = {
      activity: op.activity,
      request: op.request,
      requestedBy: requestingWorkflow(),
    };
    const inserted = await client.query<QueuedRow>(
      `INSERT INTO queued_operations (kind, tenant_id, payload, idempotency_key, workflow_id)
         SELECT $1, $2, $3::jsonb, $4, o.workflow_id FROM operational_overrides o
         WHERE o.name = $5 AND o.cleared_at IS NULL
         RETURNING id, status, workflow_id, result, error`,
      [op.kind, op.tenantId, JSON.stringify(payload), key, BILLING_READ_ONLY],
    );
    return inserted.rows[0];
  });
  return row ? toQueuedOperation(row) : null;
}

/** One line for a caller's answer: "queued as operation 12 while billing is read-only (incident-...)". */
export function describeQueued(op: QueuedOperation): string {
  const where = op.incidentWorkflowId ? ` (${op.incidentWorkflowId})` : '';
  if (op.status === 'queued') {
    return `billing is read-only${where}: queued as operation ${op.id}, replayed when billing recovers`;
  }
  return `queued as operation ${op.id} while billing was read-only${where}; ${op.status}${op.error ? `: ${op.error}` : ''}`;
}

export interface QueuedRow {
  id: number;
  status: QueuedOperation['status'];
  workflow_id: string | null;
  result: unknown;
  error: string | null;
}

export const SELECT_QUEUED = 'SELECT id, status, workflow_id, result, error FROM queued_operations';

export function toQueuedOperation(row: QueuedRow): QueuedOperation {
  return {
    id: row.id,
    status: row.status,
    incidentWorkflowId: row.workflow_id,
    result: row.result ?? null,
    error: row.error,
  };
}

/** Stable across retries of one activity call, distinct between calls; outside an activity, unique per call. */
function invocationKey(): string {
  const info = activityInfo();
  const run = info?.workflowExecution;
  return info && run ? `${run.workflowId}/${run.runId}/${info.activityId}` : `direct/${randomUUID()}`;
}

function requestingWorkflow(): string | null {
  return activityInfo()?.workflowExecution?.workflowId ?? null;
}

function activityInfo(): Context['info'] | undefined {
  try {
    return Context.current().info;
  } catch {
    return undefined;
  }
}
