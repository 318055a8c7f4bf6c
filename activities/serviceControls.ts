// Service control activities: the runbook's soft limit, hard limit, suspension and "Restore Service" as idempotent upserts.
import { ApplicationFailure } from '@temporalio/activity';
import type { ClientBase, Pool } from 'pg';
import { describeQueued, queueWhileReadOnly, type QueueableActivity } from './readOnlyGuard';

/** What the API gateway enforces for a tenant right now (the service_controls row). */
export interface ServiceControls {
  tenantId: string;
  /** 100 is normal capacity; the soft limit is 10. */
  rateLimitPercent: number;
  apiBlocked: boolean;
  suspended: boolean;
  readOnly: boolean;
  reason: string | null;
  workflowId: string | null;
  updatedBy: string;
  /** ISO-8601 UTC. */
  updatedAt: string;
  /** Set when billing was read-only (a billing system outage): the change is queued, these are the controls as they are. */
  queuedOperation?: { id: number; status: string; detail: string };
}

/** Who changes the controls and why; copied into the service_control_changes history by trigger. */
export interface ServiceControlChangeContext {
  tenantId: string;
  workflowId: string;
  operator: string;
  reason: string;
}

/** The fields to set; a field left out keeps its current value. */
export interface ServiceControlFields {
  rateLimitPercent?: number;
  apiBlocked?: boolean;
  suspended?: boolean;
  readOnly?: boolean;
}

export type ApplyServiceControlsRequest = ServiceControlChangeContext & ServiceControlFields;

interface ServiceControlsRow {
  tenant_id: string;
  rate_limit_percent: number;
  api_blocked: boolean;
  suspended: boolean;
  read_only: boolean;
  reason: string | null;
  workflow_id: string | null;
  updated_by: string;
  updated_at: Date;
}

/** Runbook "Restore Service: remove suspension flags, clear rate limits". */
const RESTORED: Required<ServiceControlFields> = {
  rateLimitPercent: 100,
  apiBlocked: false,
  suspended: false,
  readOnly: false,
};

/**
 * Sets the given fields (and always reason, workflow_id, updated_by) on the tenant's controls, inside the caller's
 * transaction when given one. Returns undefined when the tenant does not exist. The history trigger adds a row
 * only when the enforced state changes, so a retried call leaves the history as it was.
 */
export async function writeServiceControls(
  db: Pick<ClientBase, 'query'>,
  change: ApplyServiceControlsRequest,
): Promise<ServiceControls | undefined> {
  validate(change);
  // Upsert from tenants: an unknown tenant inserts nothing, and a tenant missing its controls row gets one.
  const { rows } = await db.query<ServiceControlsRow>(
    `INSERT INTO service_controls AS sc
       (tenant_id, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, updated_by)
     SELECT t.id, COALESCE($2::smallint, 100), COALESCE($3::boolean, false), COALESCE($4::boolean, false),
            COALESCE($5::boolean, false), $6, $7, $8
     FROM tenants t WHERE t.id = $1
     ON CONFLICT (tenant_id) DO UPDATE SET
       rate_limit_percent = COALESCE($2::smallint, sc.rate_limit_percent),
       api_blocked = COALESCE($3::boolean, sc.api_blocked),
       suspended = COALESCE($4::boolean, sc.suspended),
       read_only = COALESCE($5::boolean, sc.read_only),
       reason = EXCLUDED.reason,
       workflow_id = EXCLUDED.workflow_id,
       updated_by = EXCLUDED.updated_by
     RETURNING sc.*`,
    [
      change.tenantId,
      change.rateLimitPercent ?? null,
      change.apiBlocked ?? null,
      change.suspended ?? null,
      change.readOnly ?? null,
      change.reason,
      change.workflowId,
      change.operator,
    ],
  );
  const row = rows[0];
  return row ? toServiceControls(row) : undefined;
}

export function createServiceControlActivities(deps: { pool: Pool }) {
  async function apply(change: ApplyServiceControlsRequest): Promise<ServiceControls> {
    return (await writeServiceControls(deps.pool, change)) ?? tenantUnknown(change.tenantId);
  }

  /** Seed 000 "Queue critical operations": while billing is read-only the change waits in queued_operations. */
  async function queuedWhileReadOnly(
    activity: QueueableActivity,
    req: ServiceControlChangeContext & ServiceControlFields,
  ): Promise<ServiceControls | null> {
    const queued = await queueWhileReadOnly(deps.pool, {
      kind: req.suspended ? 'suspension' : 'service_control',
      tenantId: req.tenantId,
      activity,
      request: req,
    });
    if (!queued) return null;
    if (queued.status === 'replayed' && queued.result) return queued.result as ServiceControls;
    const controls = await current(req.tenantId);
    return {
      ...controls,
      queuedOperation: { id: queued.id, status: queued.status, detail: describeQueued(queued) },
    };
  }

  async function current(tenantId: string): Promise<ServiceControls> {
    const { rows } = await deps.pool.query<ServiceControlsRow>(
      `SELECT t.id AS tenant_id, COALESCE(sc.rate_limit_percent, 100) AS rate_limit_percent,
              COALESCE(sc.api_blocked, false) AS api_blocked, COALESCE(sc.suspended, false) AS suspended,
              COALESCE(sc.read_only, false) AS read_only, sc.reason, sc.workflow_id,
              COALESCE(sc.updated_by, 'system') AS updated_by, COALESCE(sc.updated_at, t.created_at) AS updated_at
       FROM tenants t LEFT JOIN service_controls sc ON sc.tenant_id = t.id
       WHERE t.id = $1`,
      [tenantId],
    );
    const row = rows[0] ?? tenantUnknown(tenantId);
    return toServiceControls(row);
  }

  return {
    /** Soft limit (rateLimitPercent 10), hard limit (apiBlocked), suspension, read-only mode: only the given fields change. */
    async applyServiceControls(req: ApplyServiceControlsRequest): Promise<ServiceControls> {
      validate(req);
      return (await queuedWhileReadOnly('applyServiceControls', req)) ?? apply(req);
    },

    /** Recovery action "Restore Service": 100% capacity, not blocked, not suspended, not read-only. */
    async restoreService(req: ServiceControlChangeContext): Promise<ServiceControls> {
      const { rows } = await deps.pool.query<{ deleted_at: Date | null }>(
        'SELECT deleted_at FROM tenants WHERE id = $1',
        [req.tenantId],
      );
      const tenant = rows[0] ?? tenantUnknown(req.tenantId);
      // Deletion after the 90-day retention is permanent: there is no service left to restore.
      if (tenant.deleted_at) {
        throw ApplicationFailure.nonRetryable(
          `tenant ${req.tenantId} was deleted on ${tenant.deleted_at.toISOString()}; its service cannot be restored`,
          'TenantDeleted',
        );
      }
      // Queued behind a queued suspension, so the replay ends with the service restored.
      return (await queuedWhileReadOnly('restoreService', req)) ?? apply({ ...req, ...RESTORED });
    },

    async getServiceControls(tenantId: string): Promise<ServiceControls> {
      return current(tenantId);
    },
  };
}

function validate(change: ApplyServiceControlsRequest): void {
  const problems: string[] = [];
  const percent = change.rateLimitPercent;
  if (percent !== undefined && (!Number.isInteger(percent) || percent < 0 || percent > 100)) {
    problems.push(`rateLimitPercent must be a whole number from 0 to 100, got ${percent}`);
  }
  if (!change.operator?.trim()) problems.push('operator must not be empty');
  if (!change.reason?.trim()) problems.push('reason must not be empty');
  if (!change.workflowId?.trim()) problems.push('workflowId must not be empty');
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `invalid service controls for tenant ${change.tenantId}: ${problems.join('; ')}`,
      'InvalidServiceControls',
    );
  }
}

function tenantUnknown(tenantId: string): never {
  throw ApplicationFailure.nonRetryable(`tenant ${tenantId} is not in the tenants table`, 'TenantUnknown');
}

function toServiceControls(row: ServiceControlsRow): ServiceControls {
  return {
    tenantId: row.tenant_id,
    rateLimitPercent: row.rate_limit_percent,
    apiBlocked: row.api_blocked,
    suspended: row.suspended,
    readOnly: row.read_only,
    reason: row.reason,
    workflowId: row.workflow_id,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at.toISOString(),
  };
}
export type ServiceControlActivities = ReturnType<typeof createServiceControlActivities>;
