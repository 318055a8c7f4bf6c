// Billing read-only mode from the incident's side (seed 000 §3): switched on when writes fail, and switched off by
// replaying the critical operations queued meanwhile, in order and once each, before billing takes writes again.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { inTransaction } from '../../../db/pool';
import { databaseUnavailable } from '../../../db/errors';
import { createPaymentActivities, type PaymentActivityDependencies } from '../../payments';
import {
  BILLING_READ_ONLY,
  READ_ONLY_LOCK_KEY,
  replayingOperation,
  type QueuedOperationKind,
  type QueuedOperationPayload,
} from '../../readOnlyGuard';
import { createServiceControlActivities } from '../../serviceControls';
import { signalPaymentSucceeded } from '../../../temporal/dunning';

export type EnterReadOnlyResult =
  | { readOnly: true; setBy: string | null; alreadySet: boolean }
  | { readOnly: false; reason: string };

export interface ReplayedOperation {
  id: number;
  kind: QueuedOperationKind;
  tenantId: string | null;
  activity: string;
  status: 'replayed' | 'failed';
  /** One line: the payment's outcome, the controls written, or why it failed. */
  detail: string;
  queuedAt: string;
}

export interface LeaveReadOnlyResult {
  replayed: number;
  failed: number;
  operations: ReplayedOperation[];
  tenantIds: string[];
  /** False when another incident holds the switch: it replays and clears it. */
  cleared: boolean;
}

interface PendingRow {
  id: number;
  kind: QueuedOperationKind;
  tenant_id: string | null;
  payload: QueuedOperationPayload;
  queued_at: Date;
}

const BATCH = 100;

export interface OperationQueueDependencies extends PaymentActivityDependencies {
  /** Tells the tenant's dunning lifecycle of a payment the replay collected; absent: the invoice row says it alone. */
  temporalClient?: Client;
}

export function createOperationQueueActivities(deps: OperationQueueDependencies) {
  const { pool } = deps;
  const payments = createPaymentActivities(deps);
  const controls = createServiceControlActivities({ pool });

  async function run(payload: QueuedOperationPayload): Promise<{ result: unknown; detail: string }> {
    switch (payload.activity) {
      case 'retryInvoicePayment': {
        const request = payload.request as Parameters<typeof payments.retryInvoicePayment>[0];
        const result = await payments.retryInvoicePayment(request);
        if (result.outcome === 'succeeded' && deps.temporalClient) {
          // The lifecycle waiting on this invoice hears of the payment, as it would of a webhook's.
          await signalPaymentSucceeded(deps.temporalClient, request.tenantId, {
            invoiceId: request.invoiceId,
            reference: result.reference,
          }).catch((error: unknown) => {
            if (!(error instanceof WorkflowNotFoundError)) throw error;
          });
        }
        const reason = 'reason' in result ? ` (${result.reason})` : '';
        const reference = result.reference ? ` ${result.reference}` : '';
        return { result, detail: `payment ${result.outcome}${reference}${reason}` };
      }
      case 'applyServiceControls': {
        const result = await controls.applyServiceControls(
          payload.request as Parameters<typeof controls.applyServiceControls>[0],
        );
        return { result, detail: describeControls(result) };
      }
      case 'restoreService': {
        const result = await controls.restoreService(
          payload.request as Parameters<typeof controls.restoreService>[0],
        );
        return { result, detail: `service restored: ${describeControls(result)}` };
      }
    }
  }

  async function nextBatch(workflowId: string): Promise<PendingRow[]> {
    const { rows } = await pool.query<PendingRow>(
      `SELECT id, kind, tenant_id, payload, queued_at FROM queued_operations
       WHERE workflow_id = $1 AND status = 'queued' ORDER BY id LIMIT $2`,
      [workflowId, BATCH],
    );
    return rows;
  }

  /** Clears the switch when nothing is left queued, under the lock every guard takes shared. */
  async function clearIfDrained(
    workflowId: string,
    operator: string,
  ): Promise<'cleared' | 'more' | 'not_ours'> {
    return inTransaction(pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [READ_ONLY_LOCK_KEY]);
      const left = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM queued_operations WHERE workflow_id = $1 AND status = 'queued'`,
        [workflowId],
      );
      if ((left.rows[0]?.n ?? 0) > 0) return 'more';
      const cleared = await client.query(
        `UPDATE operational_overrides SET cleared_at = now(), cleared_by = $3
         WHERE name = $1 AND workflow_id = $2 AND cleared_at IS NULL`,
        [BILLING_READ_ONLY, workflowId, operator],
      );
      return (cleared.rowCount ?? 0) > 0 ? 'cleared' : 'not_ours';
    });
  }

  return {
    /**
     * Seed 000 "Enable read-only mode if writes are failing": sets the `billing_read_only` override (documented like
     * every manual override). A database that refuses every write (a standby) cannot record it: answered, not thrown.
     */
    async enterReadOnlyMode(req: {
      idempotencyKey: string;
      workflowId: string;
      reason: string;
      operator: string;
    }): Promise<EnterReadOnlyResult> {
      try {
        const inserted = await pool.query(
          `INSERT INTO operational_overrides (name, value, reason, workflow_id, idempotency_key, set_by)
           VALUES ($1, $2::jsonb, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
          [
            BILLING_READ_ONLY,
            JSON.stringify({ queue: ['payment', 'suspension', 'service_control'] }),
            req.reason,
            req.workflowId,
            req.idempotencyKey,
            req.operator,
          ],
        );
        const { rows } = await pool.query<{ workflow_id: string | null; idempotency_key: string }>(
          `SELECT workflow_id, idempotency_key FROM operational_overrides WHERE name = $1 AND cleared_at IS NULL`,
          [BILLING_READ_ONLY],
        );
        const active = rows[0];
        if (!active) throw new Error('the read-only override was cleared while it was being set; retrying');
        return {
          readOnly: true,
          setBy: active.workflow_id,
          alreadySet: inserted.rowCount === 0 && active.idempotency_key !== req.idempotencyKey,
        };
      } catch (err) {
        const why = databaseUnavailable(err);
        if (!why) throw err;
        return {
          readOnly: false,
          reason: `the database cannot record the switch (${why}); billing writes fail on their own and their activities retry until it takes writes again`,
        };
      }
    },

    /**
     * Replays this incident's queued operations oldest first, each through its own activity with its original
     * request (so its idempotency key holds: a replay that is itself retried charges nothing twice), marks each
     * replayed or failed with what it answered, and clears read-only mode once nothing is left queued.
     */
    async leaveReadOnlyMode(req: { workflowId: string; operator: string }): Promise<LeaveReadOnlyResult> {
      const operations: ReplayedOperation[] = [];
      for (;;) {
        const batch = await nextBatch(req.workflowId);
        if (batch.length === 0) {
          const state = await clearIfDrained(req.workflowId, req.operator);
          if (state === 'more') continue;
          const tenantIds = [...new Set(operations.map((o) => o.tenantId).filter((t): t is string => !!t))];
          return {
            replayed: operations.filter((o) => o.status === 'replayed').length,
            failed: operations.filter((o) => o.status === 'failed').length,
            operations,
            tenantIds,
            cleared: state === 'cleared',
          };
        }
        for (const row of batch) {
          heartbeat(row.id);
          let outcome: { status: 'replayed' | 'failed'; result: unknown; detail: string };
          try {
            const done = await replayingOperation(row.id, () => run(row.payload));
            outcome = { status: 'replayed', ...done };
          } catch (err) {
            // What a retry cannot fix is recorded and passed over; anything else stops here, in order, to retry.
            if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
            outcome = { status: 'failed', result: null, detail: `${err.type ?? 'failed'}: ${err.message}` };
          }
          const marked = await pool.query(
            `UPDATE queued_operations SET status = $2, replayed_at = now(), result = $3::jsonb, error = $4
             WHERE id = $1 AND status = 'queued'`,
            [
              row.id,
              outcome.status,
              JSON.stringify(outcome.result),
              outcome.status === 'failed' ? outcome.detail : null,
            ],
          );
          if ((marked.rowCount ?? 0) === 0) continue;
          operations.push({
            id: row.id,
            kind: row.kind,
            tenantId: row.tenant_id,
            activity: row.payload.activity,
            status: outcome.status,
            detail: outcome.detail,
            queuedAt: row.queued_at.toISOString(),
          });
        }
      }
    },
  };
}

function describeControls(c: { rateLimitPercent: number; apiBlocked: boolean; suspended: boolean }): string {
  return `rate ${c.rateLimitPercent}%, API ${c.apiBlocked ? 'blocked' : 'open'}, ${c.suspended ? 'suspended' : 'active'}`;
}

function heartbeat(operationId: number): void {
  try {
    Context.current().heartbeat({ operationId });
  } catch {
    // Called outside an activity (a test or a script): nothing to heartbeat to.
  }
}
export type OperationQueueActivities = ReturnType<typeof createOperationQueueActivities>;
