// Severity and escalation read like the runbooks' tables: seed 000's matrix per incident, seed 004's chains per severity.
import {
  currentEscalation,
  escalationPlan,
  nextEscalation,
  responseDeadline,
  severityOf,
  type EscalationLevel,
} from '../../domain/escalation';
import { defaultPolicy, parsePolicy, type IncidentKind } from '../../domain/policy';

const OPENED = '2026-11-21T10:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(OPENED) + minutes * 60_000).toISOString();
const row = (kind: IncidentKind) => {
  const plan = escalationPlan(defaultPolicy, kind, OPENED);
  return {
    severity: severityOf(defaultPolicy, kind).severity,
    deadline: responseDeadline(defaultPolicy, kind, OPENED),
    plan,
  };
};

describe('seed 000 escalation matrix: incident → severity, response time, escalation', () => {
  it('payment processor down: P1, 15 min, Finance + Engineering', () => {
    const { severity, deadline, plan } = row('payment_processor_outage');
    expect(severity).toBe('P1');
    expect(deadline).toBe(at(15));
    expect(plan[1]).toEqual({
      level: 1,
      name: 'escalation',
      contacts: ['Engineering Lead', 'Product', 'Finance', 'Engineering'],
      at: at(15),
    });
  });

  it('usage data corruption: P1, 30 min, Engineering + Legal', () => {
    const { severity, deadline, plan } = row('usage_data_corruption');
    expect(severity).toBe('P1');
    expect(deadline).toBe(at(30));
    expect(plan[1]?.contacts).toEqual(expect.arrayContaining(['Engineering', 'Legal']));
    expect(plan[1]?.at).toBe(at(30));
  });

  it('single tenant overbilled: P2, 1 hour, Customer Success', () => {
    const { severity, deadline, plan } = row('overbilling_dispute');
    expect(severity).toBe('P2');
    expect(deadline).toBe(at(60));
    expect(plan[1]?.contacts).toEqual(['Engineering Lead', 'Customer Success']);
  });

  it('billing dashboard down: P3, 4 hours, Engineering', () => {
    const { severity, deadline, plan } = row('billing_dashboard_down');
    expect(severity).toBe('P3');
    expect(deadline).toBe(at(240));
    expect(plan[1]?.contacts).toEqual(['Engineering Team', 'Engineering']);
  });

  it('names the severity level as seed 004 does, with the incident kind response time', () => {
    expect(severityOf(defaultPolicy, 'payment_processor_outage')).toEqual({
      severity: 'P1',
      name: 'Critical',
      responseMinutes: 15,
    });
    // 000 is silent on webhook failures: the kind takes P2's response time from seed 004.
    expect(severityOf(defaultPolicy, 'webhook_failure')).toEqual({
      severity: 'P2',
      name: 'High',
      responseMinutes: 60,
    });
  });
});

describe('seed 004 escalation matrix: First Responder / Escalation / Final Escalation, timed by the response time', () => {
  const levels = (plan: EscalationLevel[]) => plan.map((l) => [l.level, l.name, l.contacts[0], l.at]);

  it('P1 processor outage: On-call Engineer now, escalation when 15 min pass unacknowledged, CTO + CEO 30 min later', () => {
    const plan = escalationPlan(defaultPolicy, 'payment_processor_outage', OPENED);
    expect(levels(plan)).toEqual([
      [0, 'first_responder', 'On-call Engineer', at(0)],
      [1, 'escalation', 'Engineering Lead', at(15)],
      [2, 'final_escalation', 'CTO', at(45)],
    ]);
    expect(plan[2]?.contacts).toEqual(['CTO', 'CEO']);
  });

  it('P2: escalation after the 1-hour response time, Product Manager 30 min later', () => {
    expect(levels(escalationPlan(defaultPolicy, 'overbilling_dispute', OPENED))).toEqual([
      [0, 'first_responder', 'On-call Engineer', at(0)],
      [1, 'escalation', 'Engineering Lead', at(60)],
      [2, 'final_escalation', 'Product Manager', at(90)],
    ]);
  });

  it('P3: Support Engineer, Engineering Team after 4 hours, Engineering Lead 30 min later', () => {
    expect(levels(escalationPlan(defaultPolicy, 'billing_dashboard_down', OPENED))).toEqual([
      [0, 'first_responder', 'Support Engineer', at(0)],
      [1, 'escalation', 'Engineering Team', at(240)],
      [2, 'final_escalation', 'Engineering Lead', at(270)],
    ]);
  });

  it('P4: escalation after 24 hours, and the chain ends there ("-")', () => {
    const policy = parsePolicy({ incidents: { stuck_transactions: { severity: 'P4' } } });
    const plan = escalationPlan(policy, 'stuck_transactions', OPENED);
    expect(plan.map((l) => l.name)).toEqual(['first_responder', 'escalation']);
    expect(plan[1]).toEqual({
      level: 1,
      name: 'escalation',
      contacts: ['Engineering Team', 'Engineering'],
      at: at(24 * 60),
    });
    expect(responseDeadline(policy, 'stuck_transactions', OPENED)).toBe(at(24 * 60));
  });

  it('a 004-style override: a single customer payment issue is P3, with a 45-minute gap before the final step', () => {
    const policy = parsePolicy({
      incidents: { overbilling_dispute: { severity: 'P3', responseMinutes: null } },
      escalation: { P3: { escalation: { afterMinutes: 45 }, finalEscalation: { afterMinutes: 90 } } },
    });
    expect(severityOf(policy, 'overbilling_dispute')).toEqual({
      severity: 'P3',
      name: 'Medium',
      responseMinutes: 240,
    });
    expect(responseDeadline(policy, 'overbilling_dispute', OPENED)).toBe(at(240));
    expect(levels(escalationPlan(policy, 'overbilling_dispute', OPENED))).toEqual([
      [0, 'first_responder', 'Support Engineer', at(0)],
      [1, 'escalation', 'Engineering Team', at(240)],
      [2, 'final_escalation', 'Engineering Lead', at(285)],
    ]);
  });

  it('an override of the response time moves the escalation with it', () => {
    const policy = parsePolicy({ incidents: { webhook_failure: { responseMinutes: 10 } } });
    expect(escalationPlan(policy, 'webhook_failure', OPENED)[1]?.at).toBe(at(10));
  });

  it('accepts the opening instant as a Date', () => {
    expect(escalationPlan(defaultPolicy, 'refund', new Date(OPENED))[0]?.at).toBe(OPENED);
  });
});

describe('waiting for the next level', () => {
  const plan = escalationPlan(defaultPolicy, 'payment_processor_outage', OPENED);

  it('waits for level 1 while nobody has acknowledged, then level 2, then nothing', () => {
    expect(nextEscalation(plan, false, at(0))?.level).toBe(1);
    expect(nextEscalation(plan, false, at(14))?.level).toBe(1);
    expect(nextEscalation(plan, false, at(15))?.level).toBe(2);
    expect(nextEscalation(plan, false, at(45))).toBeNull();
  });

  it('an acknowledgement stops the escalation', () => {
    expect(nextEscalation(plan, true, at(0))).toBeNull();
    expect(nextEscalation(plan, true, at(20))).toBeNull();
  });

  it('the current level is the deepest one due', () => {
    expect(currentEscalation(plan, at(0))?.name).toBe('first_responder');
    expect(currentEscalation(plan, at(15))?.name).toBe('escalation');
    expect(currentEscalation(plan, at(600))?.name).toBe('final_escalation');
    expect(currentEscalation(plan, at(-1))).toBeNull();
  });

  it('rejects an instant that is not one', () => {
    expect(() => nextEscalation(plan, false, 'yesterday')).toThrow(RangeError);
  });
});
