// Severity and escalation of an incident: seed 000's matrix per incident kind laid over seed 004's chains per severity.
import { incidentResponseMinutes, type IncidentKind, type Policy, type Severity } from './policy';
import { MINUTE_MS } from './vocabulary';

/** An incident kind's severity in the runbooks' words: P1 "Critical", answered within 15 minutes. */
export interface IncidentSeverity {
  severity: Severity;
  name: string;
  /** The incident kind's own response time (seed 000), else its severity level's (seed 004). */
  responseMinutes: number;
}

export const ESCALATION_LEVEL_NAMES = ['first_responder', 'escalation', 'final_escalation'] as const;
export type EscalationLevelName = (typeof ESCALATION_LEVEL_NAMES)[number];

/** One column of seed 004's escalation matrix, with the moment it is due if nobody has acknowledged. */
export interface EscalationLevel {
  level: 0 | 1 | 2;
  name: EscalationLevelName;
  contacts: string[];
  /** ISO-8601 instant. */
  at: string;
}

export function severityOf(policy: Policy, kind: IncidentKind): IncidentSeverity {
  const { severity } = policy.incidents[kind];
  return {
    severity,
    name: policy.severityLevels[severity].name,
    responseMinutes: incidentResponseMinutes(policy, kind),
  };
}

/** When the incident must have been acknowledged: opened + its response time. */
export function responseDeadline(policy: Policy, kind: IncidentKind, openedAt: Date | string): string {
  return addMinutes(openedAt, incidentResponseMinutes(policy, kind));
}

/**
 * The levels in order, each due at its `at` unless someone acknowledged before.
 *
 * Rule: the response time is the acknowledgement timer. Level 1 is due when the incident's response time has passed
 * unacknowledged (seed 000's per-kind time, else seed 004's per severity: 15 min, 1 h, 4 h, 24 h), and pages the
 * chain's escalation contacts plus the teams seed 000 names for the incident kind. Level 2 follows after the gap
 * seed 004's chain keeps between its escalation and final steps (`finalEscalation.afterMinutes -
 * escalation.afterMinutes`, 30 min by default), and is absent when the chain ends at the escalation step (P4's "-").
 */
export function escalationPlan(
  policy: Policy,
  kind: IncidentKind,
  openedAt: Date | string,
): EscalationLevel[] {
  const incident = policy.incidents[kind];
  const chain = policy.escalation[incident.severity];
  const escalateAfter = incidentResponseMinutes(policy, kind);

  const plan: EscalationLevel[] = [
    { level: 0, name: 'first_responder', contacts: [...chain.firstResponder], at: addMinutes(openedAt, 0) },
    {
      level: 1,
      name: 'escalation',
      contacts: unique([...chain.escalation.contacts, ...incident.escalateTo]),
      at: addMinutes(openedAt, escalateAfter),
    },
  ];
  if (chain.finalEscalation !== null) {
    const gap = chain.finalEscalation.afterMinutes - chain.escalation.afterMinutes;
    plan.push({
      level: 2,
      name: 'final_escalation',
      contacts: [...chain.finalEscalation.contacts],
      at: addMinutes(openedAt, escalateAfter + gap),
    });
  }
  return plan;
}

/** The deepest level already due at `now` (level 0 from the moment the incident opens). */
export function currentEscalation(
  plan: readonly EscalationLevel[],
  now: Date | string,
): EscalationLevel | null {
  const t = toMillis(now);
  return plan.filter((l) => Date.parse(l.at) <= t).at(-1) ?? null;
}

/** The level to wait for next: none once acknowledged or once the chain is exhausted; a level due exactly at `now` is current, not next. */
export function nextEscalation(
  plan: readonly EscalationLevel[],
  acknowledged: boolean,
  now: Date | string,
): EscalationLevel | null {
  if (acknowledged) return null;
  const t = toMillis(now);
  return plan.find((l) => Date.parse(l.at) > t) ?? null;
}

function addMinutes(from: Date | string, minutes: number): string {
  return new Date(toMillis(from) + minutes * MINUTE_MS).toISOString();
}

function toMillis(at: Date | string): number {
  const ms = typeof at === 'string' ? Date.parse(at) : at.getTime();
  if (Number.isNaN(ms)) throw new RangeError(`not a valid instant: ${String(at)}`);
  return ms;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
