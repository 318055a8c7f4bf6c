// Overage enforcement for one tenant and billing period: compare usage with caps as rollups arrive, limit or open a review, lift at reset.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DecisionActivities } from '../../activities/decisions';
import type { ServiceControlActivities } from '../../activities/serviceControls';
import type { OverageActivities } from '../../activities/usage/overage';
import { assessOverage, controlsFor, type OverageLevel } from '../../domain/overage';
import type { BillingTier, Policy } from '../../domain/policy';
import { TenantId } from '../../domain/searchAttributes';
import {
  overageDecisionSignal,
  overageStatusQuery,
  usageUpdatedSignal,
  type OverageDecision,
  type OverageStatus,
} from '../definitions';
import { quick } from '../shared/activityOptions';
import { SYSTEM_OPERATOR } from '../../domain/vocabulary';

export interface OverageInput {
  tenantId: string;
  tier: BillingTier;
  periodStart: string;
  periodEnd: string;
  policy: Policy;
  /** How often usage is measured when no rollup signal arrives, in minutes. */
  measureEveryMinutes: number;
  /** Carried across continue-as-new. */
  carried?: Pick<OverageStatus, 'enforced' | 'review' | 'timeline'>;
}

export async function overageWorkflow(input: OverageInput): Promise<OverageStatus> {
  const info = workflowInfo();
  const periodEnd = Date.parse(input.periodEnd);
  const status: OverageStatus = {
    tenantId: input.tenantId,
    tier: input.tier,
    periodEnd: input.periodEnd,
    assessed: 'within_cap',
    enforced: input.carried?.enforced ?? 'within_cap',
    review: input.carried?.review ?? null,
    usage: [],
    timeline: input.carried?.timeline ?? [],
  };
  let usageChanged = false;
  const usage = proxyActivities<OverageActivities>(quick(input.policy));
  const serviceControls = proxyActivities<ServiceControlActivities>(quick(input.policy));
  const decisions = proxyActivities<DecisionActivities>(quick(input.policy));
  const note = (event: string, detail?: string, operator?: string) =>
    status.timeline.push({ at: new Date().toISOString(), event, detail, operator });

  // ---- Message handling ----
  setHandler(overageStatusQuery, () => status);
  // Sent by the rollup job when new hours land, so enforcement does not wait for the next measurement.
  setHandler(usageUpdatedSignal, () => void (usageChanged = true));
  // Enterprise has no automatic limit: a person decides, and the decision is applied as given.
  setHandler(overageDecisionSignal, (decision: OverageDecision) => {
    if (!status.review || status.review.decidedBy) return;
    status.review = {
      ...status.review,
      decision: decision.decision,
      decidedBy: decision.operator,
      reason: decision.reason,
    };
    note('manual review decided', `${decision.decision}: ${decision.reason}`, decision.operator);
    usageChanged = true;
  });
  upsertSearchAttributes([{ key: TenantId, value: input.tenantId }]);

  const enforce = async (level: OverageLevel, why: string, operator = SYSTEM_OPERATOR) => {
    if (level === status.enforced) return;
    const controls = controlsFor(input.policy, level === 'manual_review' ? 'within_cap' : level);
    await serviceControls.applyServiceControls({
      tenantId: input.tenantId,
      workflowId: info.workflowId,
      operator,
      reason: why,
      source: 'overage',
      ...controls,
    });
    await decisions.recordDecision({
      idempotencyKey: `${info.workflowId}/${info.firstExecutionRunId}/${status.timeline.length}/${level}`,
      workflowId: info.workflowId,
      entry: {
        timestamp: new Date().toISOString(),
        operator,
        incidentType: 'usage_overage',
        tenants: 1,
        impact: 'service',
        resolution: `${input.tenantId}: ${status.enforced} -> ${level} (${why})`,
        credits: null,
        executor: SYSTEM_OPERATOR,
      },
    });
    note(`controls: ${level}`, why, operator);
    status.enforced = level;
  };

  // ---- Main loop: measure, decide, enforce, until the period resets ----
  while (Date.now() < periodEnd) {
    status.usage = await usage.measurePeriodUsage({
      tenantId: input.tenantId,
      periodStart: input.periodStart,
      periodEnd: input.periodEnd,
    });
    const assessment = assessOverage(input.policy, input.tier, status.usage);
    status.assessed = assessment.level;
    const worst = assessment.worstMeter
      ? `${assessment.worstMeter.meter} at ${assessment.worstMeter.percentOfCap}% of cap`
      : 'all meters within cap';

    if (assessment.level === 'manual_review') {
      if (!status.review) {
        status.review = { openedAt: new Date().toISOString(), reason: worst };
        note('manual review opened', worst);
      } else if (status.review.decision && status.review.decidedBy) {
        const decided: OverageLevel =
          status.review.decision === 'no_action' ? 'within_cap' : status.review.decision;
        await enforce(decided, `manual review: ${status.review.reason ?? worst}`, status.review.decidedBy);
      }
    } else {
      // Automatic tiers, or usage back under the cap (period data corrected, cap raised): limits follow the assessment.
      await enforce(assessment.level, worst);
    }

    usageChanged = false;
    const nextMeasure = Math.min(periodEnd - Date.now(), input.measureEveryMinutes * 60_000);
    if (nextMeasure > 0) await condition(() => usageChanged, nextMeasure);
    if (info.continueAsNewSuggested || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof overageWorkflow>({ ...input, carried: status });
    }
  }

  // The period reset: whatever was limited is lifted.
  await enforce('within_cap', 'billing period ended');
  note('period ended');
  await condition(allHandlersFinished);
  return status;
}
