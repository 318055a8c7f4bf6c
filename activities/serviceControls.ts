// Service control activities: the runbook's soft limit, hard limit, suspension and "Restore Service", each on the
// calling source's own hold; the enforced controls are the most restrictive active hold (domain/serviceControls.ts).
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import {
  changeServiceControlHold,
  liftServiceControlHold,
  readServiceControls,
  tenantDeletedAt,
  type EnforcedServiceControls,
} from '../db/serviceControls';
import {
  isServiceControlSource,
  SERVICE_CONTROL_SOURCES,
  sourceOf,
  type ServiceControlSource,
} from '../domain/serviceControls';
import { syncDunningNotices } from '../db/access';
import { describeQueued, queueWhileReadOnly, type QueueableActivity } from './readOnlyGuard';

export type { ServiceControlSource } from '../domain/serviceControls';

/** What the API gateway enforces for a tenant right now (the service_controls row), with the holds behind it. */
export interface ServiceControls extends EnforcedServiceControls {
  /** Set when billing was read-only (a billing system outage): the change is queued, these are the controls as they are. */
  queuedOperation?: { id: number; status: string; detail: string };
}

/** Who changes the controls and why; recorded in service_control_hold_changes. */
export interface ServiceControlChangeContext {
  tenantId: string;
  workflowId: string;
  operator: string;
  reason: string;
  /**
   * Whose hold this changes: `dunning`, `overage`, `incident`, `operator` or `maintenance`. A request without one (recorded
   * before sources existed) is read from its workflow id prefix `dunning-`/`overage-`/`incident-`, else `operator`.
   */
  source?: ServiceControlSource;
}

/** The fields of the source's hold to set; a field left out keeps its current value. */
export interface ServiceControlFields {
  rateLimitPercent?: number;
  apiBlocked?: boolean;
  suspended?: boolean;
  readOnly?: boolean;
  /** ISO-8601: the hold stops counting then (taken into account at the tenant's next change); null: open-ended. */
  until?: string | null;
}

export type ApplyServiceControlsRequest = ServiceControlChangeContext & ServiceControlFields;

/**
 * Sets the given fields on the source's hold and re-derives the enforced controls, inside the caller's transaction
 * when given a client. Returns undefined when the tenant does not exist. A retried call changes and records nothing.
 */
export async function writeServiceControls(
  db: Pool | PoolClient,
  change: ApplyServiceControlsRequest,
): Promise<ServiceControls | undefined> {
  validate(change);
  const { rateLimitPercent, apiBlocked, suspended, readOnly, until } = change;
  return changeServiceControlHold(db, {
    tenantId: change.tenantId,
    source: sourceOf(change),
    workflowId: change.workflowId,
    operator: change.operator,
    reason: change.reason,
    fields: definedOnly({ rateLimitPercent, apiBlocked, suspended, readOnly }),
    until,
  });
}

export function createServiceControlActivities(deps: { pool: Pool }) {
  async function apply(change: ApplyServiceControlsRequest): Promise<ServiceControls> {
    const controls = (await writeServiceControls(deps.pool, change)) ?? tenantUnknown(change.tenantId);
    // The runbook's limit and suspension notices follow dunning's hold, for the product's dashboard banner.
    if (sourceOf(change) === 'dunning') await syncDunningNotices(deps.pool, controls);
    return controls;
  }

  /** Seed 000 "Queue critical operations": while billing is read-only the change waits in queued_operations. */
  async function queuedWhileReadOnly(
    activity: QueueableActivity,
    req: ApplyServiceControlsRequest,
  ): Promise<ServiceControls | null> {
    const queued = await queueWhileReadOnly(deps.pool, {
      kind: req.suspended ? 'suspension' : 'service_control',
      tenantId: req.tenantId,
      activity,
      // The source is written out, so the replay changes the same source's hold.
      request: { ...req, source: sourceOf(req) },
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
    return (await readServiceControls(deps.pool, tenantId)) ?? tenantUnknown(tenantId);
  }

  return {
    /**
     * Soft limit (rateLimitPercent 10), hard limit (apiBlocked), suspension, read-only mode on the source's own hold:
     * only the given fields change; setting them all back to normal lifts that source's hold, never another's.
     */
    async applyServiceControls(req: ApplyServiceControlsRequest): Promise<ServiceControls> {
      validate(req);
      return (await queuedWhileReadOnly('applyServiceControls', req)) ?? apply(req);
    },

    /**
     * Recovery action "Restore Service" for the source: its hold is lifted; what other sources hold (an overage block,
     * an operator's suspension) stays enforced, and the answer shows it.
     */
    async restoreService(req: ServiceControlChangeContext): Promise<ServiceControls> {
      validate(req);
      const deletedAt = await tenantDeletedAt(deps.pool, req.tenantId);
      if (deletedAt === undefined) tenantUnknown(req.tenantId);
      // Deletion after the 90-day retention is permanent: there is no service left to restore.
      if (deletedAt) {
        throw ApplicationFailure.nonRetryable(
          `tenant ${req.tenantId} was deleted on ${deletedAt.toISOString()}; its service cannot be restored`,
          'TenantDeleted',
        );
      }
      // Queued behind a queued suspension, so the replay ends with the source's hold lifted.
      const queued = await queuedWhileReadOnly('restoreService', req);
      if (queued) return queued;
      const lifted = await liftServiceControlHold(deps.pool, { ...req, source: sourceOf(req) });
      if (lifted && sourceOf(req) === 'dunning') await syncDunningNotices(deps.pool, lifted);
      return lifted ?? tenantUnknown(req.tenantId);
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
  if (change.source !== undefined && !isServiceControlSource(change.source)) {
    problems.push(
      `source must be one of ${SERVICE_CONTROL_SOURCES.join(', ')}, got ${String(change.source)}`,
    );
  }
  if (change.until != null && !(Date.parse(change.until) > Date.now())) {
    problems.push(`until must be an ISO-8601 time in the future, got ${change.until}`);
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

function definedOnly<T extends object>(fields: T): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type ServiceControlActivities = ReturnType<typeof createServiceControlActivities>;
