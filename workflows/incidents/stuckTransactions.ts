// Stuck transactions (seed 004, "For stuck transactions"): pending over an hour → verified with the provider →
// status updated only when the provider confirms; what the provider still calls pending is checked again with backoff
// until it settles or an operator resolves the incident.
import { proxyActivities } from '@temporalio/workflow';
import type { StuckTransactionActivities } from '../../activities/incidents/stuckTransactions';
import type { IncidentInput } from '../../domain/incident';
import { incidentStep } from '../shared/activityOptions';
import { openIncident, type IncidentOutcome } from './frame';

export interface StuckTransactionsParams {
  processor?: 'stripe' | 'paystack';
  /** Only these references (an operator's list); all stuck rows when absent. */
  references?: string[];
}

export async function stuckTransactionsWorkflow(
  input: IncidentInput<StuckTransactionsParams>,
): Promise<IncidentOutcome> {
  const incident = await openIncident(input);
  const { step } = incident;
  const transactions = proxyActivities<StuckTransactionActivities>(incidentStep(input.policy));
  const params = input.params ?? {};
  const timing = input.policy.stuckTransactions;

  // 1. Find what has been pending for over an hour.
  const stuck = await step(
    `find transactions pending over ${timing.pendingOverMinutes} minutes`,
    () =>
      transactions.findStuckTransactions({
        olderThanMinutes: timing.pendingOverMinutes,
        processor: params.processor,
        references: params.references,
      }),
    (rows) => `${rows.length} stuck`,
  );
  incident.affects(stuck.map((t) => t.tenantId));

  // 2. Verify each with its provider; 3. update only what the provider confirms.
  let unsettled = stuck;
  const settled: string[] = [];
  const verifyAll = async (round: number) => {
    const still: typeof stuck = [];
    for (const tx of unsettled) {
      const result = await transactions.verifyStuckTransaction(tx);
      if (result.status === 'pending') still.push(tx);
      else settled.push(`${tx.reference} → ${result.status}${result.updated ? '' : ' (already settled)'}`);
    }
    unsettled = still;
    return { round, settled: stuck.length - still.length, pending: still.length };
  };
  await step(
    'verify with the provider and update what it confirms',
    () => verifyAll(1),
    (r) => `${r.settled} settled, ${r.pending} still pending at the provider`,
  );

  // 4. Re-verify what the provider still reports as in flight, backing off, until settled or resolved by a person.
  let round = 1;
  while (unsettled.length > 0 && !incident.state.resolution) {
    const outcome = await incident.waitForRecovery({
      probe: async () => (await verifyAll(++round)).pending === 0,
      firstProbeAfterMinutes: timing.firstRecheckMinutes,
      maxProbeIntervalMinutes: timing.maxRecheckIntervalMinutes,
      maxMinutes: timing.recheckForHours * 60,
    });
    if (outcome === 'timed_out') {
      const hours = timing.recheckForHours;
      incident.skip('re-verify', `${unsettled.length} transactions still pending after ${hours} hours`);
      await incident.waitForResolution();
    }
    if (outcome === 'alert_resolved') break;
  }

  incident.resolveAsBillops(
    stuck.length === 0
      ? 'no transaction pending for over an hour'
      : `${settled.length} of ${stuck.length} stuck transactions settled on the provider's word: ${settled.join('; ')}`,
  );
  return incident.close({
    impact: `${stuck.length} payments pending over an hour`,
    executor: 'billops',
  });
}
