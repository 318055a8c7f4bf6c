// The dunning lifecycle as pure state: the runbook's schedule from the policy snapshot, pauses, grace extensions, recovery.
import type { BillingTier, Policy } from './policy';

export const DUNNING_PHASES = [
  'retrying',
  'grace',
  'warning',
  'soft_limited',
  'hard_limited',
  'suspended',
  'deleted',
  'recovered',
] as const;
export type DunningPhase = (typeof DUNNING_PHASES)[number];

export type PaymentProcessorName = 'stripe' | 'paystack' | 'none';

export interface FailedInvoice {
  invoiceId: string;
  amountMinor: number;
  currency: string;
}

export interface OutstandingInvoice extends FailedInvoice {
  paid: boolean;
}

export interface DunningInput {
  tenantId: string;
  tenantName?: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  invoice: FailedInvoice;
  /** The policy in force when the lifecycle started; later policy changes never reach a running lifecycle. */
  policy: Policy;
  /** Where customers update their payment method, linked from every notice. */
  billingPortalUrl: string;
}

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

export interface TimelineEntry {
  at: string;
  /** For a scheduled step: when it was due (it is performed at `at`, moments later). */
  dueAt?: string;
  event: string;
  detail?: string;
  operator?: string;
  reason?: string;
}

export interface DunningState {
  workflowKey: string;
  tenantId: string;
  tenantName: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  policy: Policy;
  startedAt: number;
  invoices: OutstandingInvoice[];
  phase: DunningPhase;
  paused: boolean;
  pausedSince: number | null;
  pausedTotalMs: number;
  graceExtensionMs: number;
  done: string[];
  hardDeclined: boolean;
  failureNoticeSent: boolean;
  /** Bumped on every change that can move a deadline, so a waiting timer knows to recompute. */
  revision: number;
  timeline: TimelineEntry[];
}

export interface DunningDeadlines {
  graceEndsAt: string;
  warningAt: string;
  softLimitAt: string;
  hardLimitAt: string;
  suspensionAt: string;
  deletionAt: string;
}

export interface DunningStatus {
  tenantId: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  phase: DunningPhase;
  paused: boolean;
  policyVersion: string;
  outstandingInvoices: FailedInvoice[];
  deadlines: DunningDeadlines;
  nextAction: { step: string; kind: StepKind; at: string } | null;
  timeline: TimelineEntry[];
}

/** A request the lifecycle refuses: retrying cannot fix it, so callers treat it as non-retryable. */
export class DunningRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DunningRefusedError';
  }
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const FINAL_PHASES: readonly DunningPhase[] = ['deleted', 'recovered'];

const iso = (ms: number) => new Date(ms).toISOString();

export function newDunningState(input: DunningInput, workflowKey: string, now: number): DunningState {
  const graceDays = input.policy.tiers[input.tier].graceDays;
  if (graceDays === null) {
    throw new DunningRefusedError(
      `tenant ${input.tenantId} is on the ${input.tier} tier, which has no payment processing: there is nothing to dun (upgrade required)`,
    );
  }
  return {
    workflowKey,
    tenantId: input.tenantId,
    tenantName: input.tenantName ?? input.tenantId,
    tier: input.tier,
    processor: input.processor,
    policy: input.policy,
    startedAt: now,
    invoices: [{ ...input.invoice, paid: false }],
    phase: 'retrying',
    paused: false,
    pausedSince: null,
    pausedTotalMs: 0,
    graceExtensionMs: 0,
    done: [],
    hardDeclined: false,
    failureNoticeSent: false,
    revision: 0,
    timeline: [{ at: iso(now), event: 'payment failed', detail: describeInvoice(input.invoice) }],
  };
}

function describeInvoice(invoice: FailedInvoice): string {
  return `invoice ${invoice.invoiceId} (${invoice.amountMinor} ${invoice.currency} minor units)`;
}

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

const PHASE_AFTER: Partial<Record<StepKind, DunningPhase>> = {
  warning: 'warning',
  softLimit: 'soft_limited',
  hardLimit: 'hard_limited',
  suspension: 'suspended',
  deletion: 'deleted',
};

/** Records a performed step and moves the phase the way the runbook's downgrade process does. */
export function completeStep(state: DunningState, step: LifecycleStep, now: number, detail?: string): void {
  state.done.push(step.id);
  state.timeline.push({ at: iso(now), dueAt: iso(step.at), event: step.id, detail });
  const phase = PHASE_AFTER[step.kind];
  if (phase) state.phase = phase;
  const retriesLeft = lifecycleSteps(state).some(
    (s) => s.kind === 'paymentRetry' && !state.done.includes(s.id),
  );
  if (state.phase === 'retrying' && !retriesLeft) state.phase = 'grace';
  state.revision++;
}

export function recordHardDecline(state: DunningState, now: number, reason: string): void {
  state.hardDeclined = true;
  state.timeline.push({ at: iso(now), event: 'hard decline: no further retries', detail: reason });
  if (state.phase === 'retrying') state.phase = 'grace';
  state.revision++;
}

export function outstanding(state: DunningState): FailedInvoice[] {
  return state.invoices.filter((i) => !i.paid).map(({ paid: _paid, ...invoice }) => invoice);
}

export function isRecovered(state: DunningState): boolean {
  return state.invoices.every((i) => i.paid);
}

/** A further failed invoice joins the running lifecycle; its clock stays the first failure's. */
export function addFailedInvoice(state: DunningState, invoice: FailedInvoice, now: number): void {
  const known = state.invoices.find((i) => i.invoiceId === invoice.invoiceId);
  if (known && !known.paid) return; // a retried webhook, or the signal that started this lifecycle
  if (known) known.paid = false;
  else state.invoices.push({ ...invoice, paid: false });
  state.timeline.push({ at: iso(now), event: 'payment failed', detail: describeInvoice(invoice) });
  state.revision++;
}

/** Marks an invoice paid; returns false for an invoice this lifecycle does not hold. */
export function markInvoicePaid(state: DunningState, invoiceId: string, now: number, how: string): boolean {
  const invoice = state.invoices.find((i) => i.invoiceId === invoiceId);
  if (!invoice || invoice.paid) return false;
  invoice.paid = true;
  state.timeline.push({ at: iso(now), event: 'invoice paid', detail: `${invoiceId} (${how})` });
  state.revision++;
  return true;
}

export function markRecovered(state: DunningState, now: number): void {
  state.phase = 'recovered';
  state.timeline.push({ at: iso(now), event: 'recovered', detail: 'every outstanding invoice is paid' });
  state.revision++;
}

export function pause(state: DunningState, now: number, operator: string, reason?: string): void {
  if (state.paused) return;
  state.paused = true;
  state.pausedSince = now;
  state.timeline.push({ at: iso(now), event: 'paused', operator, reason });
  state.revision++;
}

/** Resuming moves every later deadline by the time spent paused. */
export function resume(state: DunningState, now: number, operator: string): void {
  if (!state.paused || state.pausedSince === null) return;
  const pausedMs = now - state.pausedSince;
  state.pausedTotalMs += pausedMs;
  state.paused = false;
  state.pausedSince = null;
  state.timeline.push({
    at: iso(now),
    event: 'resumed',
    operator,
    detail: `deadlines moved by ${formatDuration(pausedMs)}`,
  });
  state.revision++;
}

export interface GraceExtension {
  days?: number;
  hours?: number;
  reason: string;
  operator: string;
}

/** Why an extension is refused, or undefined when it is acceptable. */
export function graceExtensionProblem(state: DunningState, extension: GraceExtension): string | undefined {
  const hours = (extension.days ?? 0) * 24 + (extension.hours ?? 0);
  const maxDays = state.policy.extendGrace.maxDays;
  if (!Number.isFinite(hours) || hours <= 0) return 'the extension must be positive (days > 0)';
  if (hours > maxDays * 24) return `the extension may be at most ${maxDays} days`;
  if (extension.days !== undefined && !Number.isInteger(extension.days)) return 'days must be a whole number';
  if (!extension.reason.trim()) return 'a reason is required';
  if (!extension.operator.trim()) return 'the operator is required';
  if (state.phase === 'deleted')
    return `tenant ${state.tenantId} is already deleted; there is no grace to extend`;
  if (state.phase === 'recovered')
    return `tenant ${state.tenantId} has recovered; there is no grace to extend`;
  return undefined;
}

/**
 * Moves grace's end (and every step measured from it) later. Downgrade steps that now lie in the future are undone,
 * and the answer says whether service must be restored because a limit in force no longer applies.
 */
export function extendGrace(
  state: DunningState,
  extension: GraceExtension,
  now: number,
): { restoreService: boolean } {
  const problem = graceExtensionProblem(state, extension);
  if (problem) throw new DunningRefusedError(problem);
  const hours = (extension.days ?? 0) * 24 + (extension.hours ?? 0);
  state.graceExtensionMs += hours * HOUR_MS;
  const limited = ['soft_limited', 'hard_limited', 'suspended'].includes(state.phase);
  const future = new Set(
    lifecycleSteps(state)
      .filter((s) => s.at > now && PHASE_AFTER[s.kind])
      .map((s) => s.id),
  );
  state.done = state.done.filter((id) => !future.has(id));
  const lastDone = lifecycleSteps(state)
    .filter((s) => state.done.includes(s.id) && PHASE_AFTER[s.kind])
    .pop();
  const retriesLeft = lifecycleSteps(state).some(
    (s) => s.kind === 'paymentRetry' && !state.done.includes(s.id),
  );
  state.phase = lastDone ? (PHASE_AFTER[lastDone.kind] as DunningPhase) : retriesLeft ? 'retrying' : 'grace';
  state.timeline.push({
    at: iso(now),
    event: 'grace extended',
    detail: `by ${formatDuration(hours * HOUR_MS)}; grace now ends ${iso(graceEndsAt(state))}`,
    operator: extension.operator,
    reason: extension.reason,
  });
  state.revision++;
  return { restoreService: limited && !['soft_limited', 'hard_limited', 'suspended'].includes(state.phase) };
}

export function statusOf(state: DunningState): DunningStatus {
  const next = nextStep(state);
  return {
    tenantId: state.tenantId,
    tier: state.tier,
    processor: state.processor,
    phase: state.phase,
    paused: state.paused,
    policyVersion: state.policy.version,
    outstandingInvoices: outstanding(state),
    deadlines: deadlines(state),
    nextAction: next && !state.paused ? { step: next.id, kind: next.kind, at: iso(next.at) } : null,
    timeline: state.timeline,
  };
}

const TIER_NAMES: Record<BillingTier, string> = { free: 'Free', pro: 'Pro', enterprise: 'Enterprise' };

/** The one-line story of the lifecycle shown in the Web UI, e.g. "Dunning · acme (Pro) · soft limited until 2026-12-03". */
export function describeLifecycle(state: DunningState): string {
  const head = `Dunning · ${state.tenantName} (${TIER_NAMES[state.tier]})`;
  const day = (ms: number) => iso(ms).slice(0, 10);
  const next = nextStep(state);
  const phase = state.phase.replace('_', ' ');
  if (state.paused) return `${head} · ${phase}, paused`;
  if (!next) return `${head} · ${phase}`;
  return `${head} · ${phase} until ${day(next.at)}`;
}

export function formatDuration(ms: number): string {
  const hours = Math.round(ms / HOUR_MS);
  if (hours >= 24 && hours % 24 === 0) return `${hours / 24} days`;
  if (hours >= 1) return `${hours} hours`;
  return `${Math.round(ms / 60_000)} minutes`;
}
