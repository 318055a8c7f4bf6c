// Dunning record activities: open, move through the runbook's phases and close the one record a lifecycle keeps.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import { recordOutboundEvent } from '../db/outboundWebhooks';
import { activeOutageDunningHold, type OutageDunningHold } from '../db/outageHolds';
import { inTransaction } from '../db/pool';
import { DUNNING_PHASES, type DunningPhase } from '../domain/dunning';

export const DUNNING_OUTCOMES = ['recovered', 'deleted', 'canceled', 'written_off'] as const;
export type DunningOutcome = (typeof DUNNING_OUTCOMES)[number];

/** The dunning_records row, timestamps as ISO-8601 UTC. */
export interface DunningRecord {
  id: string;
  tenantId: string;
  workflowId: string;
  phase: DunningPhase;
  invoiceIds: string[];
  startedAt: string;
  graceEndsAt: string | null;
  closedAt: string | null;
  outcome: DunningOutcome | null;
}

export interface OpenDunningRecordRequest {
  tenantId: string;
  workflowId: string;
  invoiceIds: string[];
  /** ISO-8601: when the first payment failed. */
  startedAt: string;
  /** ISO-8601, or null for a tier without grace (Free). */
  graceEndsAt: string | null;
}

export interface UpdateDunningRecordRequest {
  tenantId: string;
  workflowId: string;
  phase: DunningPhase;
  /** The full list of the lifecycle's outstanding invoices; left out, the list stays as it is. */
  invoiceIds?: string[];
  /** ISO-8601 or null (no grace); left out, the grace end stays as it is. */
  graceEndsAt?: string | null;
}

export interface CloseDunningRecordRequest {
  tenantId: string;
  workflowId: string;
  outcome: DunningOutcome;
  phase: DunningPhase;
}

interface DunningRecordRow {
  id: string;
  tenant_id: string;
  workflow_id: string;
  phase: DunningPhase;
  invoice_ids: string[];
  started_at: Date;
  grace_ends_at: Date | null;
  closed_at: Date | null;
  outcome: DunningOutcome | null;
}

const COLUMNS =
  'id, tenant_id, workflow_id, phase, invoice_ids, started_at, grace_ends_at, closed_at, outcome';

/** Phase always; invoice ids when given ($4); grace end when given ($5), null included. */
const UPDATE_OPEN_RECORD = `
  WITH prev AS (
    SELECT id AS prev_id, phase AS previous_phase FROM dunning_records
    WHERE tenant_id = $1 AND workflow_id = $2 AND closed_at IS NULL FOR UPDATE)
  UPDATE dunning_records
  SET phase = $3,
      invoice_ids = COALESCE($4::text[], invoice_ids),
      grace_ends_at = CASE WHEN $5::boolean THEN $6::timestamptz ELSE grace_ends_at END
  FROM prev WHERE id = prev.prev_id
  RETURNING ${COLUMNS}, prev.previous_phase`;

export function createDunningRecordActivities(deps: { pool: Pool }) {
  return {
    /**
     * The dunning hold of a processor outage open now (its grace hours, whether suspensions are stopped), for a
     * lifecycle starting on that processor; null when none holds it. A tenant without a processor has none.
     */
    async activeOutageHold(req: { tenantId: string; processor: string }): Promise<OutageDunningHold | null> {
      if (req.processor !== 'stripe' && req.processor !== 'paystack') return null;
      return activeOutageDunningHold(deps.pool, req.processor, req.tenantId);
    },

    /**
     * Opens the tenant's dunning record and returns its id. A retry, or a second failed invoice joining the same
     * lifecycle, finds the open record of this workflow and adds the invoice ids it does not hold yet.
     */
    async openDunningRecord(req: OpenDunningRecordRequest): Promise<string> {
      const startedAt = isoDate('startedAt', req.startedAt);
      const graceEndsAt = req.graceEndsAt === null ? null : isoDate('graceEndsAt', req.graceEndsAt);
      if (graceEndsAt && graceEndsAt < startedAt) {
        invalid(`graceEndsAt ${req.graceEndsAt} is before startedAt ${req.startedAt}`);
      }
      const invoiceIds = [...new Set(req.invoiceIds)];
      // The partial unique index is the one-open-per-tenant rule; the WHERE lets only this lifecycle's record join.
      const { rows } = await deps.pool.query<{ id: string }>(
        `INSERT INTO dunning_records AS d (tenant_id, workflow_id, phase, invoice_ids, started_at, grace_ends_at)
         SELECT t.id, $2, 'retrying', $3::text[], $4, $5 FROM tenants t WHERE t.id = $1
         ON CONFLICT (tenant_id) WHERE closed_at IS NULL DO UPDATE
           SET invoice_ids = d.invoice_ids || ARRAY(SELECT i FROM unnest(EXCLUDED.invoice_ids) i WHERE i <> ALL (d.invoice_ids))
           WHERE d.workflow_id = EXCLUDED.workflow_id
         RETURNING d.id`,
        [req.tenantId, req.workflowId, invoiceIds, startedAt, graceEndsAt],
      );
      const opened = rows[0];
      if (opened) return opened.id;

      const open = await deps.pool.query<{ workflow_id: string }>(
        'SELECT workflow_id FROM dunning_records WHERE tenant_id = $1 AND closed_at IS NULL',
        [req.tenantId],
      );
      const other = open.rows[0];
      if (other) {
        throw ApplicationFailure.nonRetryable(
          `tenant ${req.tenantId} already has an open dunning record, kept by ${other.workflow_id}`,
          'DunningRecordConflict',
        );
      }
      const tenant = await deps.pool.query('SELECT 1 FROM tenants WHERE id = $1', [req.tenantId]);
      if (tenant.rowCount === 0) return tenantUnknown(req.tenantId);
      // The other lifecycle closed between the two statements: a retry opens this one.
      throw ApplicationFailure.retryable(
        `tenant ${req.tenantId}'s open dunning record closed while ${req.workflowId} was opening one`,
        'DunningRecordRace',
      );
    },

    /** Records the lifecycle's new phase, and its invoices or grace end when they changed (extendGrace). */
    async updateDunningRecord(req: UpdateDunningRecordRequest): Promise<DunningRecord> {
      knownPhase(req.phase);
      const graceEndsAt =
        req.graceEndsAt === undefined || req.graceEndsAt === null
          ? null
          : isoDate('graceEndsAt', req.graceEndsAt);
      // The phase change reaches the product's endpoints through the outbox, in the same transaction.
      const row = await inTransaction(deps.pool, async (client) => {
        const { rows } = await client
          .query<
            DunningRecordRow & { previous_phase: DunningPhase }
          >(UPDATE_OPEN_RECORD, [req.tenantId, req.workflowId, req.phase, req.invoiceIds ? [...new Set(req.invoiceIds)] : null, req.graceEndsAt !== undefined, graceEndsAt])
          .catch(rethrowCheckViolation);
        const updated = rows[0];
        if (updated && updated.previous_phase !== updated.phase) {
          await recordPhaseChange(client, updated, updated.previous_phase);
        }
        return updated;
      });
      if (!row) {
        throw ApplicationFailure.nonRetryable(
          `tenant ${req.tenantId} has no open dunning record kept by ${req.workflowId}`,
          'DunningRecordNotOpen',
        );
      }
      return toDunningRecord(row);
    },

    /** Closes this lifecycle's record; closing it again returns the record as first closed. */
    async closeDunningRecord(req: CloseDunningRecordRequest): Promise<DunningRecord> {
      knownPhase(req.phase);
      if (!DUNNING_OUTCOMES.includes(req.outcome)) {
        invalid(`outcome must be one of ${DUNNING_OUTCOMES.join(', ')}, got ${String(req.outcome)}`);
      }
      const row = await inTransaction(deps.pool, async (client) => {
        const closed = await client.query<DunningRecordRow & { previous_phase: DunningPhase }>(
          `WITH prev AS (
             SELECT id AS prev_id, phase AS previous_phase FROM dunning_records
             WHERE tenant_id = $1 AND workflow_id = $2 AND closed_at IS NULL FOR UPDATE)
           UPDATE dunning_records SET phase = $3, outcome = $4, closed_at = now()
           FROM prev WHERE id = prev.prev_id
           RETURNING ${COLUMNS}, prev.previous_phase`,
          [req.tenantId, req.workflowId, req.phase, req.outcome],
        );
        const done = closed.rows[0];
        if (done) await recordClose(client, done, done.previous_phase);
        return done;
      });
      if (row) return toDunningRecord(row);

      // A retry after the close committed: the workflow id is reused only once this lifecycle has ended.
      const previous = await deps.pool.query<DunningRecordRow>(
        `SELECT ${COLUMNS} FROM dunning_records WHERE tenant_id = $1 AND workflow_id = $2
         ORDER BY closed_at DESC LIMIT 1`,
        [req.tenantId, req.workflowId],
      );
      const last = previous.rows[0];
      if (last) return toDunningRecord(last);
      throw ApplicationFailure.nonRetryable(
        `tenant ${req.tenantId} has no dunning record kept by ${req.workflowId}`,
        'DunningRecordNotFound',
      );
    },
  };
}

/** `dunning.phase_changed` in the outbox, in the caller's transaction. */
async function recordPhaseChange(
  db: PoolClient,
  row: DunningRecordRow,
  previous: DunningPhase,
): Promise<void> {
  await recordOutboundEvent(db, {
    type: 'dunning.phase_changed',
    tenantId: row.tenant_id,
    data: {
      tenantId: row.tenant_id,
      workflowId: row.workflow_id,
      phase: row.phase,
      previousPhase: previous,
      invoiceIds: row.invoice_ids,
      graceEndsAt: row.grace_ends_at?.toISOString() ?? null,
      outcome: row.outcome,
    },
  });
}

/** The close: its phase change if any, and `invoice.recovered` for each of the lifecycle's invoices when recovered. */
async function recordClose(db: PoolClient, row: DunningRecordRow, previous: DunningPhase): Promise<void> {
  if (previous !== row.phase) await recordPhaseChange(db, row, previous);
  if (row.outcome !== 'recovered') return;
  for (const invoiceId of row.invoice_ids) {
    await recordOutboundEvent(db, {
      type: 'invoice.recovered',
      tenantId: row.tenant_id,
      data: {
        tenantId: row.tenant_id,
        invoiceId,
        workflowId: row.workflow_id,
        recoveredAt: row.closed_at?.toISOString(),
      },
    });
  }
}

function isoDate(field: string, value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) invalid(`${field} must be an ISO-8601 timestamp, got "${value}"`);
  return date;
}

function knownPhase(phase: string): void {
  if (!(DUNNING_PHASES as readonly string[]).includes(phase)) {
    invalid(`phase must be one of ${DUNNING_PHASES.join(', ')}, got ${phase}`);
  }
}

/** A CHECK the table enforces (grace ends before the start) fails every retry alike: stop retrying. */
function rethrowCheckViolation(err: unknown): never {
  if (typeof err === 'object' && err !== null && 'code' in err && err.code === '23514') {
    invalid(err instanceof Error ? err.message : String(err));
  }
  throw err;
}

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'InvalidDunningRecord');
}

function tenantUnknown(tenantId: string): never {
  throw ApplicationFailure.nonRetryable(`tenant ${tenantId} is not in the tenants table`, 'TenantUnknown');
}

function toDunningRecord(row: DunningRecordRow): DunningRecord {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    workflowId: row.workflow_id,
    phase: row.phase,
    invoiceIds: row.invoice_ids,
    startedAt: row.started_at.toISOString(),
    graceEndsAt: row.grace_ends_at?.toISOString() ?? null,
    closedAt: row.closed_at?.toISOString() ?? null,
    outcome: row.outcome,
  };
}
export type DunningRecordActivities = ReturnType<typeof createDunningRecordActivities>;
