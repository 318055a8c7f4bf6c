// Hourly usage rollup job: roll up a window from raw events; a failed run is rerun every 2 hours for 48 hours, each attempt in rollup_runs.
import {
  defineSearchAttributeKey,
  SearchAttributeType,
  WorkflowExecutionAlreadyStartedError,
} from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  ParentClosePolicy,
  getExternalWorkflowHandle,
  proxyActivities,
  setCurrentDetails,
  startChild,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { OverageActivities } from '../../activities/usage/overage';
import type { RollupActivities } from '../../activities/usage/rollups';
import {
  HOUR_MS,
  attemptOffsetsHours,
  describeRollup,
  newRollupStatus,
  previousHours,
  type RollupAttempt,
  type TimeWindow,
  type UsageRollupInput,
} from '../../domain/rollups';
import { rollupStatusQuery, usageUpdatedSignal } from '../definitions';
import { attemptOnce, quick } from '../shared/activityOptions';
import { overageWorkflow } from './overage';

/** Set by the server on every workflow a schedule starts: the time the run was due, even when it is caught up late. */
const ScheduledStartTime = defineSearchAttributeKey(
  'TemporalScheduledStartTime',
  SearchAttributeType.DATETIME,
);

export interface RollupOutcome {
  window: TimeWindow;
  attempts: number;
  eventsProcessed: number;
}

export async function usageRollupWorkflow(input: UsageRollupInput): Promise<RollupOutcome> {
  const info = workflowInfo();
  const scheduledAt = info.typedSearchAttributes.get(ScheduledStartTime) ?? info.runStartTime;
  const window = input.window ?? previousHours(scheduledAt.getTime(), input.lookbackHours);
  const status = newRollupStatus(input, window);
  // Bookkeeping retries until PostgreSQL answers: without it there is nothing to record an attempt in.
  const rollupRuns = proxyActivities<RollupActivities>(quick(input.policy));
  const usage = proxyActivities<OverageActivities>(quick(input.policy));
  // One try per attempt: a failed rollup is the runbook's failed job, rerun on the policy's schedule below.
  const rollups = proxyActivities<RollupActivities>(attemptOnce('5 minutes'));

  const publish = () => setCurrentDetails(describeRollup(status));

  // ---- Message handling ----
  setHandler(rollupStatusQuery, () => status);

  // ---- Main procedure: run, and on failure rerun every `everyHours` for `forHours` ----
  const firstAttemptAt = Date.now();
  const offsets = attemptOffsetsHours(input.policy.usageAggregationRetry);
  for (const [index, offsetHours] of offsets.entries()) {
    const due = firstAttemptAt + offsetHours * HOUR_MS;
    if (due > Date.now()) {
      status.state = 'waiting_to_rerun';
      status.nextRerunAt = new Date(due).toISOString();
      publish();
      await sleep(due - Date.now());
    }
    status.state = 'running';
    status.nextRerunAt = null;

    const startedAt = new Date().toISOString();
    const runId = await rollupRuns.startRollupRun({
      ...window,
      workflowId: info.workflowId,
      attempt: index + 1,
      startedAt,
    });
    const attempt: RollupAttempt = { attempt: index + 1, runId, startedAt, status: 'running' };
    status.attempts.push(attempt);
    publish();

    let outcome: { eventsProcessed: number } | { error: string };
    try {
      outcome = await rollups.rollupWindow({ ...window, tenants: input.tenants, runId });
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      outcome = { error: err.cause?.message || err.message };
    }
    const finishedAt = new Date().toISOString();
    if ('error' in outcome) {
      await rollupRuns.finishRollupRun({ runId, status: 'failed', error: outcome.error, finishedAt });
      Object.assign(attempt, { status: 'failed', error: outcome.error });
      publish();
      continue;
    }
    await rollupRuns.finishRollupRun({
      runId,
      status: 'succeeded',
      eventsProcessed: outcome.eventsProcessed,
      finishedAt,
    });
    Object.assign(attempt, { status: 'succeeded', eventsProcessed: outcome.eventsProcessed });
    if (input.overage) await handOverToOverage(window, input.overage, usage);
    status.state = 'succeeded';
    publish();
    await condition(allHandlersFinished);
    return { window, attempts: attempt.attempt, eventsProcessed: outcome.eventsProcessed };
  }

  // Every rerun failed: the job fails for the operators (Usage Metering Failure), with each attempt in rollup_runs.
  status.state = 'failed';
  publish();
  await condition(allHandlersFinished);
  const { everyHours, forHours } = input.policy.usageAggregationRetry;
  throw ApplicationFailure.nonRetryable(
    `usage rollup of ${window.from}..${window.to} failed ${offsets.length} attempts, rerun every ${everyHours} hours for ${forHours} hours: ${status.attempts.at(-1)?.error ?? ''}`,
    'RollupRerunsExhausted',
  );
}

/**
 * New rollups reach each capped tenant's overage enforcement for the calendar month (UTC): started if it is not
 * running yet, else told that usage changed. The enforcement outlives this run.
 */
async function handOverToOverage(
  window: TimeWindow,
  overage: NonNullable<UsageRollupInput['overage']>,
  usage: Pick<OverageActivities, 'cappedTenantsWithUsage'>,
): Promise<void> {
  const from = new Date(window.from);
  const periodStart = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), 1));
  const periodEnd = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
  for (const { tenantId, tier } of await usage.cappedTenantsWithUsage(window)) {
    const workflowId = `overage-${tenantId}-${periodStart.toISOString().slice(0, 7)}`;
    try {
      await startChild(overageWorkflow, {
        workflowId,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [
          {
            tenantId,
            tier,
            periodStart: periodStart.toISOString(),
            periodEnd: periodEnd.toISOString(),
            policy: overage.policy,
            measureEveryMinutes: overage.measureEveryMinutes,
          },
        ],
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      await getExternalWorkflowHandle(workflowId).signal(usageUpdatedSignal);
    }
  }
}
