// Rebuilding a window's usage rollups from the raw events inside an incident, rerun on the policy's schedule until a
// spot check is clean: the backfill of the usage-metering-failure incident, and of a dispute whose rollups differ.
import { ActivityFailure, condition, proxyActivities } from '@temporalio/workflow';
import type { SpotCheckRequest, UsageIntegrityActivities } from '../../../activities/usage/integrity';
import type { RollupActivities } from '../../../activities/usage/rollups';
import { HOUR_MS, attemptOffsetsHours, chunkWindows, type TimeWindow } from '../../../domain/rollups';
import { attemptOnce, incidentStep } from '../../shared/activityOptions';
import type { Incident } from './';

export interface RollupRebuild {
  window: TimeWindow;
  tenants?: string[];
  /** What "validated" means: this spot check finds no hour differing from the raw events. */
  spotCheck: SpotCheckRequest;
}

export interface RebuildOutcome {
  validated: boolean;
  attempts: number;
  eventsProcessed: number;
}

/**
 * Recomputes the window's rollups from the raw events, then spot-checks them. A failed backfill or a spot check that
 * still differs is rerun every `usageAggregationRetry.everyHours` for `forHours` (seed 000: every 2 hours for 48
 * hours); each attempt is a rollup_runs row of this incident. Stops early when an operator resolves the incident.
 */
export async function rebuildRollupsUntilValid(
  incident: Incident,
  rebuild: RollupRebuild,
): Promise<RebuildOutcome> {
  const { policy } = incident.input;
  const retry = policy.usageAggregationRetry;
  const chunkHours = policy.usageMeteringFailure.backfillChunkHours;
  const chunks = chunkWindows(rebuild.window, chunkHours).length;
  // One try per attempt, bounded by the rerun interval: a failed or overrunning backfill is the runbook's failed
  // job, rerun on the policy's schedule rather than retried underneath it.
  const backfill = proxyActivities<RollupActivities>(attemptOnce(retry.everyHours * HOUR_MS, '1 minute'));
  const rollupRuns = proxyActivities<RollupActivities>(incidentStep(policy));
  const integrity = proxyActivities<UsageIntegrityActivities>(incidentStep(policy));
  const { state } = incident;
  const offsets = attemptOffsetsHours(retry);
  const firstAttemptAt = Date.now();
  let eventsProcessed = 0;
  let attempts = 0;

  for (const [index, offsetHours] of offsets.entries()) {
    const due = firstAttemptAt + offsetHours * HOUR_MS;
    if (due > Date.now()) {
      state.currentStep = `waiting to rerun the backfill at ${new Date(due).toISOString()}`;
      await incident.publish();
      if (await condition(() => state.resolution !== null, due - Date.now())) break;
      state.currentStep = null;
    }
    attempts = index + 1;
    const outcome = await incident.step(
      `backfill rollups from raw events (attempt ${attempts} of ${offsets.length})`,
      async () => {
        const runId = await rollupRuns.startRollupRun({
          ...rebuild.window,
          workflowId: state.workflowId,
          attempt: attempts,
          startedAt: new Date().toISOString(),
        });
        try {
          const done = await backfill.backfillRollups({
            ...rebuild.window,
            ...(rebuild.tenants ? { tenants: rebuild.tenants } : {}),
            chunkHours,
            firstChunk: 0,
            endChunk: chunks,
            eventsProcessed: 0,
            runId,
          });
          const finishedAt = new Date().toISOString();
          await rollupRuns.finishRollupRun({
            runId,
            status: 'succeeded',
            eventsProcessed: done.eventsProcessed,
            finishedAt,
          });
          return { ok: true as const, eventsProcessed: done.eventsProcessed };
        } catch (err) {
          if (!(err instanceof ActivityFailure)) throw err;
          const error = err.cause?.message || err.message;
          await rollupRuns.finishRollupRun({
            runId,
            status: 'failed',
            error,
            finishedAt: new Date().toISOString(),
          });
          return { ok: false as const, error };
        }
      },
      (r) => (r.ok ? `${r.eventsProcessed} raw events rolled up into hourly rollups` : `failed: ${r.error}`),
    );
    if (!outcome.ok) continue;
    eventsProcessed = outcome.eventsProcessed;
    const check = await incident.step(
      'validate: spot check rollups against raw events',
      () => integrity.spotCheckUsageRollups(rebuild.spotCheck),
      (c) =>
        c.mismatches.length === 0
          ? `${c.tenants.length} tenants clean`
          : `${c.mismatches.length} hours still differ from the raw events`,
    );
    if (check.mismatches.length === 0) return { validated: true, attempts, eventsProcessed };
  }
  return { validated: false, attempts, eventsProcessed };
}
