// Usage backfill: recompute the rollups of a time range (optionally some tenants) from raw events, chunk by chunk, with progress in percent.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RollupActivities } from '../../activities/usage/rollups';
import {
  DEFAULT_CHUNKS_PER_CALL,
  RollupWindowError,
  chunkWindows,
  describeBackfill,
  newBackfillStatus,
  recordBackfillProgress,
  wholeHours,
  type TimeWindow,
  type UsageBackfillInput,
} from '../../domain/rollups';
import { backfillStatusQuery } from '../definitions';
import { backfill, quick } from '../shared/activityOptions';

export interface BackfillOutcome {
  window: TimeWindow;
  chunks: number;
  eventsProcessed: number;
}

/**
 * How progress travels: the workflow calls `backfillRollups` for `chunksPerCall` chunks at a time and learns the
 * progress from each call's result, so the status query answers in percent. Inside a call the activity heartbeats
 * after every chunk; a retry after a worker crash resumes from that heartbeat, at the last finished chunk.
 */
export async function usageBackfillWorkflow(input: UsageBackfillInput): Promise<BackfillOutcome> {
  const info = workflowInfo();
  let chunks: TimeWindow[];
  try {
    chunks = chunkWindows(wholeHours(input.from, input.to), input.chunkHours);
  } catch (err) {
    if (err instanceof RollupWindowError)
      throw ApplicationFailure.nonRetryable(err.message, 'BackfillRefused');
    throw err;
  }
  const status = newBackfillStatus(input, chunks);
  const rollupRuns = proxyActivities<RollupActivities>(quick(input.policy));
  // A lost worker is noticed within the heartbeat timeout, and its chunks go on elsewhere from the last heartbeat.
  const rollups = proxyActivities<RollupActivities>(backfill(input.policy, ['RollupWindowInvalid']));
  const publish = () => setCurrentDetails(describeBackfill(status));

  // ---- Message handling ----
  setHandler(backfillStatusQuery, () => status);

  // ---- Main procedure ----
  // The backfill is a rollup run too, so "verify aggregation job status" lists it beside the hourly runs.
  const runId =
    status.runId ??
    (await rollupRuns.startRollupRun({
      ...status.window,
      workflowId: info.workflowId,
      attempt: 1,
      startedAt: new Date().toISOString(),
    }));
  status.runId = runId;
  publish();

  const perCall = input.chunksPerCall ?? DEFAULT_CHUNKS_PER_CALL;
  try {
    while (status.chunksDone < status.chunksTotal) {
      const result = await rollups.backfillRollups({
        ...status.window,
        tenants: input.tenants,
        chunkHours: input.chunkHours,
        firstChunk: status.chunksDone,
        endChunk: status.chunksDone + perCall,
        eventsProcessed: status.eventsProcessed,
        runId,
      });
      if (result.resumedAt !== null)
        status.resumes.push({ chunk: result.resumedAt, attempt: result.attempt });
      recordBackfillProgress(status, chunks, result);
      publish();
      if (workflowInfo().continueAsNewSuggested && status.chunksDone < status.chunksTotal) {
        await condition(allHandlersFinished);
        const carried = { ...progressOf(status), runId, resumes: status.resumes };
        return await continueAsNew<typeof usageBackfillWorkflow>({ ...input, carried });
      }
    }
  } catch (err) {
    if (!(err instanceof ActivityFailure) && !CancellationScope.current().consideredCancelled) throw err;
    const error = failureMessage(err);
    Object.assign(status, { state: 'failed', error });
    publish();
    await CancellationScope.nonCancellable(() =>
      rollupRuns.finishRollupRun({
        runId,
        status: 'failed',
        error,
        finishedAt: new Date().toISOString(),
      }),
    );
    throw err;
  }

  await rollupRuns.finishRollupRun({
    runId,
    status: 'succeeded',
    eventsProcessed: status.eventsProcessed,
    finishedAt: new Date().toISOString(),
  });
  status.state = 'succeeded';
  publish();
  await condition(allHandlersFinished);
  return { window: status.window, chunks: status.chunksTotal, eventsProcessed: status.eventsProcessed };
}

function progressOf(status: { chunksDone: number; eventsProcessed: number }) {
  return { chunksDone: status.chunksDone, eventsProcessed: status.eventsProcessed };
}

/** The activity's own error where there is one, not the wrapper's "Activity task failed". */
function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
