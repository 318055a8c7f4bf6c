// An incident's pure state: who may steer it, what is refused and why, the DECISIONS.log entry and the report.
import { parseDecisionLine, formatDecisionLine } from '../../domain/decisions';
import {
  acknowledge,
  acknowledgeProblem,
  approvalProblem,
  decisionEntry,
  newIncidentState,
  nextLevelDue,
  pause,
  phaseOf,
  resolve,
  resolveProblem,
  resume,
  statusOf,
  type IncidentInput,
} from '../../domain/incident';
import { incidentReport } from '../../domain/incidentReport';
import { defaultPolicy, parsePolicy } from '../../domain/policy';

const OPENED = Date.parse('2026-11-22T10:00:00.000Z');
const MIN = 60_000;

function input(overrides: Partial<IncidentInput> = {}): IncidentInput {
  return {
    kind: 'payment_processor_outage',
    key: 'fp-1',
    summary: 'Stripe API down',
    source: 'alertmanager',
    openedBy: 'alertmanager',
    tenantIds: ['t1', 't2'],
    params: {},
    policy: defaultPolicy,
    ...overrides,
  };
}

describe('a new incident', () => {
  it('takes its severity and response time from the policy, and waits 15 minutes for level 1', () => {
    const state = newIncidentState(input(), 'incident-payment_processor_outage-fp-1', OPENED);
    expect(state.severity).toBe('P1');
    expect(state.severityName).toBe('Critical');
    expect(nextLevelDue(state)?.at).toBe(OPENED + 15 * MIN);
    expect(phaseOf(state)).toBe('open');
  });

  it('an overridden severity takes that level response time: P3 escalates after 4 hours', () => {
    const state = newIncidentState(input({ severity: 'P3' }), 'w', OPENED);
    expect(state.responseMinutes).toBe(240);
    expect(nextLevelDue(state)?.at).toBe(OPENED + 240 * MIN);
    expect(state.plan[0]?.contacts).toEqual(['Support Engineer']);
  });

  it('a pause moves the next level by the time spent paused', () => {
    const state = newIncidentState(input(), 'w', OPENED);
    pause(state, 'ada', 'vendor call', OPENED + 5 * MIN);
    resume(state, 'ada', OPENED + 35 * MIN);
    expect(nextLevelDue(state)?.at).toBe(OPENED + 45 * MIN);
  });
});

describe('operator messages are refused with a reason', () => {
  it('an empty operator, a second acknowledgement, a resolve without summary, a resolve after resolution', () => {
    const state = newIncidentState(input(), 'w', OPENED);
    expect(acknowledgeProblem(state, '  ')).toBe('an operator name is required');
    acknowledge(state, 'ada', OPENED + MIN);
    expect(acknowledgeProblem(state, 'bob')).toBe(
      `incident already acknowledged by ada at ${new Date(OPENED + MIN).toISOString()}`,
    );
    expect(nextLevelDue(state)).toBeNull();
    expect(resolveProblem(state, 'ada', ' ')).toBe('a resolution summary is required');
    resolve(state, 'ada', 'Stripe recovered', OPENED + 90 * MIN);
    expect(resolveProblem(state, 'bob', 'again')).toMatch(/^incident already resolved by ada/);
    expect(phaseOf(state)).toBe('resolved');
  });

  it('only the configured responders may steer, when the policy names them', () => {
    const policy = parsePolicy({ incidentResponders: ['ada', 'bob'] });
    const state = newIncidentState(input({ policy }), 'w', OPENED);
    expect(acknowledgeProblem(state, 'mallory')).toBe(
      'unknown operator "mallory": not one of the incident responders (ada, bob)',
    );
    expect(acknowledgeProblem(state, 'bob')).toBeNull();
  });

  it('an approval for a step that is not waiting', () => {
    const state = newIncidentState(input(), 'w', OPENED);
    expect(approvalProblem(state, { step: 'failover', approved: true, operator: 'ada' })).toBe(
      'no step is waiting for approval (asked to approve "failover")',
    );
    state.pendingApproval = { step: 'release invoice delivery', question: '?', since: '' };
    expect(approvalProblem(state, { step: 'failover', approved: true, operator: 'ada' })).toBe(
      'step "failover" is not waiting for approval; "release invoice delivery" is',
    );
    expect(
      approvalProblem(state, { step: 'release invoice delivery', approved: true, operator: 'ada' }),
    ).toBeNull();
  });
});

describe('the ending', () => {
  it('the DECISIONS.log entry in seed 000 format, with tenants and credits', () => {
    const state = newIncidentState(input(), 'w', OPENED);
    state.credits = { amountMinor: 1250, currency: 'USD' };
    resolve(state, 'ada', 'Stripe recovered; failed payments retried', OPENED + 3 * 60 * MIN);
    const line = formatDecisionLine(
      decisionEntry(
        state,
        { impact: 'payments failing 3 h', executor: 'Finance + Engineering' },
        OPENED + 181 * MIN,
      ),
    );
    expect(line).toBe(
      '2026-11-22T13:01:00.000Z | OPERATOR=ada | ACTION=billing_incident | TYPE=payment_processor_outage | ' +
        'TENANTS=2 | IMPACT=payments failing 3 h | RESOLUTION=Stripe recovered; failed payments retried | ' +
        'CREDITS=USD 12.50 | EXECUTOR=Finance + Engineering',
    );
    expect(parseDecisionLine(line).credits).toEqual({ amountMinor: 1250, currency: 'USD' });
  });

  it("the report follows seed 004's template from the timeline", () => {
    const state = newIncidentState(input(), 'incident-payment_processor_outage-fp-1', OPENED);
    acknowledge(state, 'ada', OPENED + 12 * MIN);
    state.stepsDone.push({
      name: 'switch new payments to paystack',
      at: new Date(OPENED + 20 * MIN).toISOString(),
    });
    state.revenueImpact = { amountMinor: 150_000_00, currency: 'NGN' };
    resolve(state, 'ada', 'Stripe recovered', OPENED + (2 * 60 + 5) * MIN);
    const report = incidentReport(state, OPENED + 130 * MIN);
    expect(report).toContain('## Incident Report: Stripe API down');
    expect(report).toContain('**Date:** 2026-11-22');
    expect(report).toContain('**Severity:** P1');
    expect(report).toContain('**Duration:** 2 hours 5 minutes');
    expect(report).toContain('**Impact:** 2 customers affected, NGN 150000.00 potential revenue impact');
    expect(report).toContain('- 10:00 - Incident detected by alertmanager');
    expect(report).toContain('- 10:12 - Acknowledged by ada');
    expect(report).toContain('- [x] switch new payments to paystack');
    expect(report).toMatch(/### Root Cause\n.*48 hours/);
    expect(statusOf(state).phase).toBe('resolved');
  });
});
