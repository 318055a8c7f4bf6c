// One incident's state, pure: severity and escalation, acknowledgement, steps done, approvals, pause, resolution, RCA.
import type { AttentionWait } from './attention';
import type { DecisionEntry } from './decisions';
import { escalationPlan, severityOf, type EscalationLevel } from './escalation';
import type { Money } from './money';
import type { IncidentKind, Policy, Severity } from './policy';

/** Where an incident came from: an Alertmanager alert, a payment webhook, an operator, or another workflow. */
export type IncidentSource = 'alertmanager' | 'webhook' | 'operator' | 'workflow';

/** What every incident workflow is started with; `params` are the kind's own (tenant, invoice, processor, ...). */
export interface IncidentInput<P = Record<string, unknown>> {
  kind: IncidentKind;
  /** The alert fingerprint, or the tenant/invoice concerned: the workflow id is `incident-<kind>-<key>`. */
  key: string;
  summary: string;
  source: IncidentSource;
  /** Who opened it: the operator, `alertmanager`, `billops`. */
  openedBy: string;
  /** A severity other than the policy's for this kind (an alert's `severity` label, an operator's choice). */
  severity?: Severity;
  tenantIds?: string[];
  alert?: { name: string; fingerprint: string; labels: Record<string, string> };
  params: P;
  /** The policy in force when it opened, snapshotted like the dunning lifecycle's. */
  policy: Policy;
}

export type IncidentPhase = 'open' | 'acknowledged' | 'resolved' | 'closed';

export interface TimelineEntry {
  at: string;
  event: string;
  detail?: string;
  operator?: string;
}

export interface IncidentStep {
  name: string;
  at: string;
  detail?: string;
}

/** A runbook step where a person decides: the workflow waits for `approveStep` until the timeout, then escalates. */
export interface PendingApproval {
  step: string;
  question: string;
  since: string;
}

export interface Approval {
  step: string;
  approved: boolean;
  operator: string;
  reason?: string;
}

export interface IncidentState {
  workflowId: string;
  kind: IncidentKind;
  key: string;
  summary: string;
  source: IncidentSource;
  severity: Severity;
  severityName: string;
  responseMinutes: number;
  openedAt: number;
  openedBy: string;
  plan: EscalationLevel[];
  escalationLevel: 0 | 1 | 2;
  acknowledged: { by: string; at: string } | null;
  paused: { since: number; by: string; reason?: string } | null;
  pausedMs: number;
  alertResolvedAt: string | null;
  resolution: { by: string; at: string; summary: string } | null;
  closedAt: string | null;
  rca: { by: string; at: string; summary: string } | null;
  currentStep: string | null;
  stepsDone: IncidentStep[];
  pendingApproval: PendingApproval | null;
  approvals: Approval[];
  /** A step only a person can fix (a status page or pager answering 4xx), and why; null while all runs. */
  attention: AttentionWait | null;
  tenantsAffected: Set<string>;
  credits: Money | null;
  /** Revenue at risk or refunded, in minor units, for the report's "revenue impact". */
  revenueImpact: Money | null;
  /** Operators allowed to steer; empty: anyone who names themselves. */
  responders: string[];
  timeline: TimelineEntry[];
}

export interface IncidentStatus {
  workflowId: string;
  kind: IncidentKind;
  key: string;
  summary: string;
  severity: Severity;
  severityName: string;
  phase: IncidentPhase;
  openedAt: string;
  openedBy: string;
  source: IncidentSource;
  currentStep: string | null;
  stepsDone: IncidentStep[];
  escalationLevel: 0 | 1 | 2;
  escalationLevelName: string;
  /** When the next level is paged if nobody acknowledges; null once acknowledged or at the end of the chain. */
  nextEscalationAt: string | null;
  acknowledgedBy: string | null;
  acknowledgedAt: string | null;
  paused: boolean;
  waitingForApproval: PendingApproval | null;
  approvals: Approval[];
  attention: AttentionWait | null;
  alertResolvedAt: string | null;
  resolution: { by: string; at: string; summary: string } | null;
  rcaRecorded: boolean;
  tenantsAffected: number;
  credits: Money | null;
  timeline: TimelineEntry[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export function incidentWorkflowId(kind: IncidentKind, key: string): string {
  return `incident-${kind}-${key}`;
}

export function newIncidentState(
  input: IncidentInput<unknown>,
  workflowId: string,
  now: number,
): IncidentState {
  const policySeverity = severityOf(input.policy, input.kind);
  const severity = input.severity ?? policySeverity.severity;
  // An overridden severity takes that level's response time and chain.
  const policy: Policy =
    severity === policySeverity.severity
      ? input.policy
      : {
          ...input.policy,
          incidents: {
            ...input.policy.incidents,
            [input.kind]: { ...input.policy.incidents[input.kind], severity, responseMinutes: null },
          },
        };
  const effective = severityOf(policy, input.kind);
  return {
    workflowId,
    kind: input.kind,
    key: input.key,
    summary: input.summary,
    source: input.source,
    severity,
    severityName: effective.name,
    responseMinutes: effective.responseMinutes,
    openedAt: now,
    openedBy: input.openedBy,
    plan: escalationPlan(policy, input.kind, iso(now)),
    escalationLevel: 0,
    acknowledged: null,
    paused: null,
    pausedMs: 0,
    alertResolvedAt: null,
    resolution: null,
    closedAt: null,
    rca: null,
    currentStep: null,
    stepsDone: [],
    pendingApproval: null,
    attention: null,
    approvals: [],
    tenantsAffected: new Set(input.tenantIds ?? []),
    credits: null,
    revenueImpact: null,
    responders: input.policy.incidentResponders,
    timeline: [{ at: iso(now), event: 'opened', detail: input.summary, operator: input.openedBy }],
  };
}

export function phaseOf(state: IncidentState): IncidentPhase {
  if (state.closedAt) return 'closed';
  if (state.resolution) return 'resolved';
  if (state.acknowledged) return 'acknowledged';
  return 'open';
}

export function note(
  state: IncidentState,
  now: number,
  event: string,
  detail?: string,
  operator?: string,
): void {
  state.timeline.push({
    at: iso(now),
    event,
    ...(detail ? { detail } : {}),
    ...(operator ? { operator } : {}),
  });
}

// ---- Escalation, shifted by the time spent paused ----

/** The next level to page and when (epoch ms), or null: acknowledged, resolved, or the chain is exhausted. */
export function nextLevelDue(state: IncidentState): { level: EscalationLevel; at: number } | null {
  if (state.acknowledged || state.resolution) return null;
  const next = state.plan.find((l) => l.level > state.escalationLevel);
  if (!next) return null;
  return { level: next, at: Date.parse(next.at) + state.pausedMs };
}

export function escalate(state: IncidentState, level: EscalationLevel, now: number): void {
  state.escalationLevel = level.level;
  note(state, now, 'escalated', `level ${level.level} (${level.name}): ${level.contacts.join(', ')}`);
}

// ---- Operator messages: each returns the reason it is refused, or null and applies it ----

export function operatorProblem(state: IncidentState, operator: unknown): string | null {
  if (typeof operator !== 'string' || operator.trim() === '') return 'an operator name is required';
  if (state.responders.length > 0 && !state.responders.includes(operator.trim())) {
    return `unknown operator "${operator}": not one of the incident responders (${state.responders.join(', ')})`;
  }
  return null;
}

export function acknowledgeProblem(state: IncidentState, operator: unknown): string | null {
  const who = operatorProblem(state, operator);
  if (who) return who;
  if (state.resolution)
    return `incident already resolved by ${state.resolution.by} at ${state.resolution.at}`;
  if (state.acknowledged) {
    return `incident already acknowledged by ${state.acknowledged.by} at ${state.acknowledged.at}`;
  }
  return null;
}

export function acknowledge(state: IncidentState, operator: string, now: number): void {
  state.acknowledged = { by: operator.trim(), at: iso(now) };
  note(state, now, 'acknowledged', undefined, operator.trim());
}

export function resolveProblem(state: IncidentState, operator: unknown, summary: unknown): string | null {
  const who = operatorProblem(state, operator);
  if (who) return who;
  if (typeof summary !== 'string' || summary.trim() === '') return 'a resolution summary is required';
  if (state.resolution)
    return `incident already resolved by ${state.resolution.by} at ${state.resolution.at}`;
  return null;
}

export function resolve(state: IncidentState, operator: string, summary: string, now: number): void {
  state.resolution = { by: operator.trim(), at: iso(now), summary: summary.trim() };
  note(state, now, 'resolved', summary.trim(), operator.trim());
}

export function approvalProblem(state: IncidentState, approval: Partial<Approval>): string | null {
  const who = operatorProblem(state, approval.operator);
  if (who) return who;
  if (!state.pendingApproval) return `no step is waiting for approval (asked to approve "${approval.step}")`;
  if (approval.step !== state.pendingApproval.step) {
    return `step "${approval.step}" is not waiting for approval; "${state.pendingApproval.step}" is`;
  }
  if (typeof approval.approved !== 'boolean') return 'approved must be true or false';
  return null;
}

export function pauseProblem(state: IncidentState, operator: unknown): string | null {
  const who = operatorProblem(state, operator);
  if (who) return who;
  if (state.closedAt) return 'incident is closed';
  if (state.paused) return `already paused by ${state.paused.by}`;
  return null;
}

export function pause(state: IncidentState, operator: string, reason: string | undefined, now: number): void {
  state.paused = { since: now, by: operator, ...(reason ? { reason } : {}) };
  note(state, now, 'paused', reason, operator);
}

export function resumeProblem(state: IncidentState, operator: unknown): string | null {
  return operatorProblem(state, operator) ?? (state.paused ? null : 'incident is not paused');
}

export function resume(state: IncidentState, operator: string, now: number): void {
  if (!state.paused) return;
  state.pausedMs += now - state.paused.since;
  state.paused = null;
  note(state, now, 'resumed', undefined, operator);
}

// ---- What the operator and the Web UI see ----

export function statusOf(state: IncidentState): IncidentStatus {
  const next = nextLevelDue(state);
  const level = state.plan.find((l) => l.level === state.escalationLevel);
  return {
    workflowId: state.workflowId,
    kind: state.kind,
    key: state.key,
    summary: state.summary,
    severity: state.severity,
    severityName: state.severityName,
    phase: phaseOf(state),
    openedAt: iso(state.openedAt),
    openedBy: state.openedBy,
    source: state.source,
    currentStep: state.currentStep,
    stepsDone: [...state.stepsDone],
    escalationLevel: state.escalationLevel,
    escalationLevelName: level?.name ?? 'first_responder',
    nextEscalationAt: next && !state.paused ? iso(next.at) : null,
    acknowledgedBy: state.acknowledged?.by ?? null,
    acknowledgedAt: state.acknowledged?.at ?? null,
    paused: state.paused !== null,
    waitingForApproval: state.pendingApproval,
    approvals: [...state.approvals],
    attention: state.attention,
    alertResolvedAt: state.alertResolvedAt,
    resolution: state.resolution,
    rcaRecorded: state.rca !== null,
    tenantsAffected: state.tenantsAffected.size,
    credits: state.credits,
    timeline: [...state.timeline],
  };
}

/** The Web UI's current-details line. */
export function describeIncident(state: IncidentState): string {
  const who = state.acknowledged
    ? `acknowledged by ${state.acknowledged.by}`
    : `unacknowledged, level ${state.escalationLevel}`;
  const step = state.pendingApproval
    ? `waiting for approval: ${state.pendingApproval.step}`
    : state.attention
      ? `waiting for attention: ${state.attention.step}`
      : (state.currentStep ?? phaseOf(state));
  return `${state.severity} ${state.kind} · ${who} · ${state.paused ? 'paused · ' : ''}${step}`;
}

// ---- The end of an incident ----

export interface ClosingFacts {
  /** IMPACT: revenue/service impact in words. */
  impact: string;
  /** EXECUTOR: the team that carried out the resolution. */
  executor: string;
}

/** The DECISIONS.log entry (seed 000) for a resolved incident. */
export function decisionEntry(
  state: IncidentState,
  facts: ClosingFacts,
  now: number,
): DecisionEntry & { timestamp: string } {
  const resolution = state.resolution;
  if (!resolution) throw new Error('an incident is recorded in DECISIONS.log only once resolved');
  return {
    timestamp: iso(now),
    operator: resolution.by,
    incidentType: state.kind,
    tenants: state.tenantsAffected.size,
    impact: facts.impact,
    resolution: resolution.summary,
    credits: state.credits,
    executor: facts.executor,
  };
}

export function durationText(fromMs: number, toMs: number): string {
  const minutes = Math.max(0, Math.round((toMs - fromMs) / 60_000));
  return `${Math.floor(minutes / 60)} hours ${minutes % 60} minutes`;
}
