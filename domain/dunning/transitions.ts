// The dunning lifecycle's transitions: performed steps, invoices failing and paid, pauses, grace extensions, recovery.
import { graceEndsAt, lifecycleSteps, PHASE_AFTER, type LifecycleStep } from './schedule';
import {
  describeInvoice,
  DunningRefusedError,
  formatDuration,
  HOUR_MS,
  iso,
  type DunningPhase,
  type DunningState,
  type FailedInvoice,
} from './state';

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

/** A reported payment that neither the database nor the provider confirms: on the timeline, the invoice still owed. */
export function notePaymentUnconfirmed(
  state: DunningState,
  invoiceId: string,
  now: number,
  reason: string,
): void {
  state.timeline.push({ at: iso(now), event: 'payment not confirmed', detail: `${invoiceId}: ${reason}` });
  state.revision++;
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

/** Why an approval of the deletion is refused, or null: it is only asked for when the policy requires it. */
export function deletionApprovalProblem(
  state: DunningState,
  request: { operator: string; reason: string },
): string | null {
  if (!state.policy.downgrade.deletionRequiresApproval)
    return 'this lifecycle deletes without approval (policy downgrade.deletionRequiresApproval is false)';
  if (state.deletionApproval)
    return `the deletion was already approved by ${state.deletionApproval.operator}`;
  if (state.phase !== 'suspended')
    return `the tenant is ${state.phase}: only a suspended tenant's deletion is approved`;
  if (!request.operator?.trim()) return 'operator is required';
  if (!request.reason?.trim())
    return 'a reason is required: it is kept in the timeline and the decisions record';
  return null;
}

export function approveDeletion(state: DunningState, operator: string, reason: string): void {
  state.deletionApproval = { operator, reason, at: iso(Date.now()) };
  state.timeline.push({ at: iso(Date.now()), event: 'deletion approved', operator, reason });
}
