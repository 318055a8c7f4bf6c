// `billops preview`: the steps a dunning lifecycle will run, computed by the schedule and transitions the workflow runs.
import { stepNotice, type DunningNotice } from '../dunningNotices';
import type { BillingTier, Policy } from '../policy';
import {
  deadlines,
  graceEndsAt,
  lifecycleSteps,
  nextStep,
  type LifecycleStep,
  type StepKind,
} from './schedule';
import {
  addFailedInvoice,
  completeStep,
  extendGrace,
  markInvoicePaid,
  markRecovered,
  pause,
  recordHardDecline,
  resume,
} from './transitions';
import {
  HOUR_MS,
  iso,
  newDunningState,
  type DunningInput,
  type DunningPhase,
  type DunningState,
  type TimelineEntry,
} from './state';
import type { DunningStatus } from './status';

/** What a step does to the tenant's service, as the workflow's service-control activities apply it. */
export type ServiceControlChange =
  | { kind: 'rateLimit'; rateLimitPercent: number }
  | { kind: 'apiBlocked' }
  | { kind: 'suspended' }
  | { kind: 'dataDeleted'; approvalRequired: boolean };

export interface PreviewStep {
  id: string;
  kind: StepKind;
  /** When the step falls due (ISO-8601). */
  at: string;
  /** Milliseconds from the first failure, pauses included. */
  afterFirstFailureMs: number;
  /** The phase the lifecycle is in once the step is done. */
  phase: DunningPhase;
  /** The email the step sends, and to whom; null when it sends none. */
  notice: { template: DunningNotice['template']; to: 'billing contact' | 'account manager' } | null;
  /** The in-app (dashboard) notification the warning posts. */
  dashboardNotification: boolean;
  control: ServiceControlChange | null;
}

export interface PreviewPause {
  from: string;
  to: string | null;
  operator?: string;
  reason?: string;
}

export interface PreviewExtension {
  at: string;
  detail?: string;
  operator?: string;
  reason?: string;
}

export interface LifecyclePreview {
  /** Null for a tier's preview, which names no tenant. */
  tenantId: string | null;
  tier: BillingTier;
  policyVersion: string;
  firstFailureAt: string;
  graceEndsAt: string;
  phase: DunningPhase;
  /** While paused nothing is due: the dates below are those a resume at `datesAssumeResumeAt` gives. */
  paused: { since: string; datesAssumeResumeAt: string } | null;
  pauses: PreviewPause[];
  extensions: PreviewExtension[];
  /** Steps already performed (a running lifecycle), in the order done. */
  done: TimelineEntry[];
  /** What comes next, in order, until deletion. */
  steps: PreviewStep[];
}

export interface NewLifecyclePreviewInput {
  tier: BillingTier;
  policy: Policy;
  tenantId?: string;
}

/** A lifecycle's schedule for a payment failing at `now`; a tier with no payment processing is refused (DunningRefusedError). */
export function previewLifecycle(input: NewLifecyclePreviewInput, now: number): LifecyclePreview {
  const state = newDunningState(
    {
      tenantId: input.tenantId ?? `(a ${input.tier} tenant)`,
      tier: input.tier,
      processor: 'none',
      invoice: { invoiceId: '(the failed invoice)', amountMinor: 0, currency: 'USD' },
      policy: input.policy,
      billingPortalUrl: '',
    },
    'preview',
    now,
  );
  return { ...previewOfState(state, now), tenantId: input.tenantId ?? null };
}

/**
 * A running lifecycle's preview: its start input (the policy snapshot it runs under) and its status answer, the
 * timeline replayed through the same transitions the workflow applied, then the steps still to come.
 */
export function previewRunningLifecycle(
  input: DunningInput,
  status: DunningStatus,
  now: number,
): LifecyclePreview {
  return previewOfState(stateFromStatus(input, status), now);
}

/** Rebuilds a lifecycle's state from its start input and status: what the workflow holds, as far as a schedule needs. */
export function stateFromStatus(input: DunningInput, status: DunningStatus): DunningState {
  const first = status.timeline[0];
  const startedAt = first ? Date.parse(first.at) : Date.now();
  const state = newDunningState({ ...input, tier: status.tier }, 'preview', startedAt);
  for (const entry of status.timeline.slice(state.timeline.length)) replay(state, entry);
  state.timeline = status.timeline;
  state.phase = status.phase;
  state.attention = status.attention ?? null;
  return state;
}

/** One recorded timeline entry applied as the workflow applied it when it happened. */
function replay(state: DunningState, entry: TimelineEntry): void {
  const at = Date.parse(entry.at);
  const step = entry.dueAt ? lifecycleSteps(state).find((s) => s.id === entry.event) : undefined;
  if (step) return completeStep(state, step, at, entry.detail);
  switch (entry.event) {
    case 'paused':
      return pause(state, at, entry.operator ?? '', entry.reason);
    case 'resumed':
      return resume(state, at, entry.operator ?? '');
    case 'grace extended': {
      // "by 3 days; grace now ends <ISO>": the exact new end, so pauses and rounding cannot drift.
      const endsAt = Date.parse(/grace now ends (\S+)$/.exec(entry.detail ?? '')?.[1] ?? '');
      const by = endsAt - graceEndsAt(state);
      if (!Number.isFinite(by) || by <= 0) return;
      const before = state.graceExtensionMs;
      const extension = {
        hours: by / HOUR_MS,
        reason: entry.reason || 'recorded',
        operator: entry.operator || 'recorded',
      };
      extendGrace(state, extension, at);
      state.graceExtensionMs = before + by;
      return;
    }
    case 'hard decline: no further retries':
      return recordHardDecline(state, at, entry.detail ?? '');
    case 'invoice paid':
      markInvoicePaid(state, (entry.detail ?? '').split(' ')[0] ?? '', at, entry.detail ?? '');
      return;
    case 'payment failed': {
      const match = /^invoice (\S+) \((\d+) (\S+) minor units\)$/.exec(entry.detail ?? '');
      if (match)
        addFailedInvoice(
          state,
          { invoiceId: match[1]!, amountMinor: Number(match[2]), currency: match[3]! },
          at,
        );
      return;
    }
    case 'deletion approved':
      state.deletionApproval = { operator: entry.operator ?? '', reason: entry.reason ?? '', at: entry.at };
      return;
    case 'recovered':
      return markRecovered(state, at);
  }
}

/** The preview of any state: its history as recorded, then each remaining step performed in turn on a copy. */
export function previewOfState(state: DunningState, now: number): LifecyclePreview {
  const future = structuredClone(state);
  // Paused, nothing is due; a resume now would move every deadline by the time spent paused so far.
  if (future.paused) resume(future, now, 'preview');
  // The Payment Failure Notice goes out with the first retry performed while an invoice is open.
  future.failureNoticeSent ||= state.done.some((id) => id.startsWith('retry-'));
  const steps: PreviewStep[] = [];
  for (let step = nextStep(future); step; step = nextStep(future)) {
    const notice = noticeOf(step, future);
    if (step.kind === 'paymentRetry' && notice) future.failureNoticeSent = true;
    completeStep(future, step, step.at);
    steps.push({
      id: step.id,
      kind: step.kind,
      at: iso(step.at),
      afterFirstFailureMs: step.at - state.startedAt,
      phase: future.phase,
      notice,
      dashboardNotification: step.kind === 'warning',
      control: controlOf(step, future.policy),
    });
  }
  return {
    tenantId: state.tenantId,
    tier: state.tier,
    policyVersion: state.policy.version,
    firstFailureAt: iso(state.startedAt),
    graceEndsAt: iso(graceEndsAt(state.paused ? resumedCopy(state, now) : state)),
    phase: state.phase,
    paused:
      state.paused && state.pausedSince !== null
        ? { since: iso(state.pausedSince), datesAssumeResumeAt: iso(now) }
        : null,
    pauses: pausesOf(state.timeline),
    extensions: state.timeline
      .filter((e) => e.event === 'grace extended')
      .map(({ at, detail, operator, reason }) => ({ at, detail, operator, reason })),
    done: state.timeline.filter((e) => e.dueAt !== undefined),
    steps,
  };
}

function resumedCopy(state: DunningState, now: number): DunningState {
  const copy = structuredClone(state);
  resume(copy, now, 'preview');
  return copy;
}

/** The template the workflow's stepNotice picks for this step (a retry sends one only with the failure notice). */
function noticeOf(step: LifecycleStep, state: DunningState): PreviewStep['notice'] {
  const sendsFailureNotice = step.kind === 'paymentRetry' && !state.failureNoticeSent;
  const contact = { billingEmail: 'billing contact', accountManagerEmail: 'account manager' };
  const context = {
    deadlines: deadlines(state),
    billingPortalUrl: '',
    ...(sendsFailureNotice ? { paymentLink: { invoiceId: '', url: '', sentAt: step.at } } : {}),
  };
  const notice = stepNotice(step, state, contact, context);
  if (!notice) return null;
  return {
    template: notice.template,
    to: notice.to === 'account manager' ? 'account manager' : 'billing contact',
  };
}

/** The service-control change each downgrade step applies (workflows/dunning perform()). */
function controlOf(step: LifecycleStep, policy: Policy): ServiceControlChange | null {
  switch (step.kind) {
    case 'softLimit':
      return { kind: 'rateLimit', rateLimitPercent: policy.downgrade.softLimitRatePercent };
    case 'hardLimit':
      return { kind: 'apiBlocked' };
    case 'suspension':
      return { kind: 'suspended' };
    case 'deletion':
      return { kind: 'dataDeleted', approvalRequired: policy.downgrade.deletionRequiresApproval };
    default:
      return null;
  }
}

function pausesOf(timeline: TimelineEntry[]): PreviewPause[] {
  const pauses: PreviewPause[] = [];
  for (const entry of timeline) {
    if (entry.event === 'paused')
      pauses.push({ from: entry.at, to: null, operator: entry.operator, reason: entry.reason });
    const open = pauses[pauses.length - 1];
    if (entry.event === 'resumed' && open && open.to === null) open.to = entry.at;
  }
  return pauses;
}

/** Where the rebuilt state disagrees with the workflow's own answer (its deadlines, its next action); empty when none. */
export function previewMismatches(state: DunningState, status: DunningStatus): string[] {
  const problems: string[] = [];
  const ours = deadlines(state);
  for (const [name, at] of Object.entries(status.deadlines) as [keyof typeof ours, string][]) {
    if (ours[name] !== at) problems.push(`${name}: the workflow says ${at}, the preview ${ours[name]}`);
  }
  const next = state.paused ? undefined : nextStep(state);
  const theirs = status.nextAction?.step;
  if (status.nextAction !== null && theirs !== next?.id)
    problems.push(`next step: the workflow says ${theirs}, the preview ${next?.id ?? 'none'}`);
  return problems;
}
