// The dunning lifecycle's schedule: every runbook step and deadline, computed from the policy snapshot and the state.
import { DAY_MS, HOUR_MS, iso, type DunningPhase, type DunningState } from './state';

export type StepKind =
  | 'paymentRetry'
  | 'pastDueContact'
  | 'warning'
  | 'softLimit'
  | 'hardLimit'
  | 'suspension'
  | 'deletion';

export interface LifecycleStep {
  id: string;
  kind: StepKind;
  /** Epoch milliseconds at which the step is due, after pauses and grace extensions. */
  at: number;
  attempt?: number;
  daysPastDue?: number;
  contact?: 'paymentReminder' | 'accountManagerContact';
}

export interface DunningDeadlines {
  graceEndsAt: string;
  warningAt: string;
  softLimitAt: string;
  hardLimitAt: string;
  suspensionAt: string;
  deletionAt: string;
}

const FINAL_PHASES: readonly DunningPhase[] = ['deleted', 'recovered'];

function graceDaysOf(state: DunningState): number {
  return state.policy.tiers[state.tier].graceDays ?? 0;
}

/** Grace ends graceDays after the first failure, moved by extensions and by time spent paused. */
export function graceEndsAt(state: DunningState): number {
  return state.startedAt + graceDaysOf(state) * DAY_MS + state.graceExtensionMs + state.pausedTotalMs;
}

/** Every step of the runbook for this tier, in the order they fall due. */
export function lifecycleSteps(state: DunningState): LifecycleStep[] {
  const { policy } = state;
  const fromFailure = (ms: number) => state.startedAt + ms + state.pausedTotalMs;
  const fromGrace = (ms: number) => graceEndsAt(state) + ms;
  const steps: LifecycleStep[] = [];

  policy.paymentRetryHours.forEach((hours, index) => {
    if (state.hardDeclined && !state.done.includes(`retry-${index + 1}`)) return;
    steps.push({
      id: `retry-${index + 1}`,
      kind: 'paymentRetry',
      attempt: index + 1,
      at: fromFailure(hours * HOUR_MS),
    });
  });
  const contacts = policy.tiers[state.tier].pastDueContacts;
  for (const day of contacts.atDays) {
    steps.push({
      id: `past-due-${day}d`,
      kind: 'pastDueContact',
      daysPastDue: day,
      contact: contacts.contact,
      at: fromFailure(day * DAY_MS),
    });
  }
  const d = policy.downgrade;
  steps.push({ id: 'warning', kind: 'warning', at: fromGrace(-d.warningDaysBeforeGraceEnd * DAY_MS) });
  steps.push({ id: 'soft-limit', kind: 'softLimit', at: fromGrace(0) });
  steps.push({ id: 'hard-limit', kind: 'hardLimit', at: fromGrace(d.hardLimitDaysAfterGrace * DAY_MS) });
  steps.push({ id: 'suspension', kind: 'suspension', at: fromGrace(d.suspensionDaysAfterGrace * DAY_MS) });
  steps.push({
    id: 'deletion',
    kind: 'deletion',
    at: fromGrace((d.suspensionDaysAfterGrace + d.deletionDaysAfterSuspension) * DAY_MS),
  });
  // Stable sort: at equal times the runbook's order holds (a retry before the warning that shares its instant).
  return steps
    .map((step, order) => ({ step, order }))
    .sort((a, b) => a.step.at - b.step.at || a.order - b.order)
    .map((s) => s.step);
}

/**
 * What makes one performance of a step unique (its notices' idempotency keys): the step and when it was due. A grace
 * extension that makes a performed step due again gives it a new time, so its notice goes out again with the new
 * dates instead of being answered "already sent".
 */
export function stepOccurrence(step: LifecycleStep): string {
  return `${step.id}@${iso(step.at)}`;
}

export function nextStep(state: DunningState): LifecycleStep | undefined {
  if (FINAL_PHASES.includes(state.phase)) return undefined;
  return lifecycleSteps(state).find((step) => !state.done.includes(step.id));
}

export function deadlines(state: DunningState): DunningDeadlines {
  const byId = new Map(lifecycleSteps(state).map((s) => [s.id, s.at]));
  const at = (id: string) => iso(byId.get(id) ?? graceEndsAt(state));
  return {
    graceEndsAt: iso(graceEndsAt(state)),
    warningAt: at('warning'),
    softLimitAt: at('soft-limit'),
    hardLimitAt: at('hard-limit'),
    suspensionAt: at('suspension'),
    deletionAt: at('deletion'),
  };
}

/** The phase each downgrade step puts the lifecycle in (retries and contacts leave it as it is). */
export const PHASE_AFTER: Partial<Record<StepKind, DunningPhase>> = {
  warning: 'warning',
  softLimit: 'soft_limited',
  hardLimit: 'hard_limited',
  suspension: 'suspended',
  deletion: 'deleted',
};
