// Starting usage rollups from outside: the hourly rollup schedule, and backfills of a time range from raw events.
import { createHash } from 'node:crypto';
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { defaultPolicy, type Policy } from '../domain/policy';
import {
  backfillRequestSchema,
  rollupPolicyOf,
  wholeHours,
  type BackfillRequest,
  type UsageBackfillInput,
  type UsageRollupInput,
} from '../domain/rollups';
import type { usageBackfillWorkflow } from '../workflows/usage/backfill';

export const ROLLUP_SCHEDULE_ID = 'usage-rollup-hourly';
/** The schedule names each run `usage-rollup-<scheduled time>`. */
export const ROLLUP_WORKFLOW_ID_PREFIX = 'usage-rollup';
/** The previous hour and the one before it: a late event of the hour before is still counted by the next run. */
export const DEFAULT_LOOKBACK_HOURS = 2;

export interface RollupScheduleOptions {
  policy?: Policy;
  lookbackHours?: number;
}

/**
 * Creates the hourly rollup schedule, or brings an existing one up to date (spec, action, policy snapshot).
 * Runs start five minutes past each hour so the hour's last events have landed; every run keeps its own window,
 * so runs may overlap while a failed one waits for its reruns.
 */
export async function ensureRollupSchedule(
  client: Client,
  taskQueue: string,
  opts: RollupScheduleOptions = {},
): Promise<ScheduleHandle> {
  const input: UsageRollupInput = {
    lookbackHours: opts.lookbackHours ?? DEFAULT_LOOKBACK_HOURS,
    policy: rollupPolicyOf(opts.policy ?? defaultPolicy),
    overage: { policy: opts.policy ?? defaultPolicy, measureEveryMinutes: 60 },
  };
  const spec = { intervals: [{ every: '1 hour' as const, offset: '5 minutes' as const }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'usageRollupWorkflow',
    workflowId: ROLLUP_WORKFLOW_ID_PREFIX,
    taskQueue,
    args: [input],
  };
  const policies = { overlap: ScheduleOverlapPolicy.ALLOW_ALL, catchupWindow: '1 day' as const };
  const state = { note: `hourly usage rollup, policy ${input.policy.version}` };
  try {
    return await client.schedule.create({ scheduleId: ROLLUP_SCHEDULE_ID, spec, action, policies, state });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    const handle = client.schedule.getHandle(ROLLUP_SCHEDULE_ID);
    await handle.update((previous) => ({ spec, action, policies, state: { ...previous.state, ...state } }));
    return handle;
  }
}

export class BackfillRequestError extends Error {
  override name = 'BackfillRequestError';
}

/** `usage-backfill-<from>-<to>-<all | tenants' digest>`: asking twice for the same backfill reaches the same one. */
export function backfillWorkflowId(req: { from: string; to: string; tenants?: string[] }): string {
  const { from, to } = wholeHours(req.from, req.to);
  const compact = (at: string) => at.replace(/[-:]|\.000/g, '');
  const scope = req.tenants
    ? createHash('sha256')
        .update([...new Set(req.tenants)].sort().join('\n'))
        .digest('hex')
        .slice(0, 12)
    : 'all';
  return `usage-backfill-${compact(from)}-${compact(to)}-${scope}`;
}

/**
 * Starts a backfill of the whole hours covering [from, to), or returns the one already running for the same range
 * and tenants. Throws BackfillRequestError when the request is malformed.
 */
export async function startBackfill(
  client: Client,
  taskQueue: string,
  request: BackfillRequest,
  opts: { policy?: Policy } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof usageBackfillWorkflow>> {
  const parsed = backfillRequestSchema.safeParse(request);
  if (!parsed.success) {
    const reasons = parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`);
    throw new BackfillRequestError(`backfill request is invalid: ${reasons.join('; ')}`);
  }
  const input: UsageBackfillInput = { ...parsed.data, policy: rollupPolicyOf(opts.policy ?? defaultPolicy) };
  return client.workflow.start<typeof usageBackfillWorkflow>('usageBackfillWorkflow', {
    workflowId: backfillWorkflowId(input),
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    staticSummary: `Usage backfill ${input.from} .. ${input.to} · ${input.tenants?.length ?? 'all'} tenants`,
  });
}
