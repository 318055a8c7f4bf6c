// The policy defaults read like the runbooks' tables; overrides merge over them and bad ones are rejected with a path.
import {
  defaultPolicy,
  incidentResponseMinutes,
  INCIDENT_KINDS,
  parsePolicy,
  PolicyError,
  policySchema,
  type PolicyOverride,
} from '../../domain/policy';

describe('defaults (seed 000, DESIGN.md "Policy")', () => {
  const { tiers } = defaultPolicy;

  it('grace after a payment failure: Free none, Pro 7 days, Enterprise 14 days', () => {
    expect([tiers.free.graceDays, tiers.pro.graceDays, tiers.enterprise.graceDays]).toEqual([null, 7, 14]);
  });

  it('usage overage: Free blocks at 100%, Pro throttles at 120% and blocks at 150%, Enterprise is reviewed by hand', () => {
    expect(tiers.free.overage).toEqual({ throttleAtPercent: null, blockAtPercent: 100, manualReview: false });
    expect(tiers.pro.overage).toEqual({ throttleAtPercent: 120, blockAtPercent: 150, manualReview: false });
    expect(tiers.enterprise.overage).toEqual({
      throttleAtPercent: null,
      blockAtPercent: null,
      manualReview: true,
    });
  });

  it('past due: Pro reminders at 7, 14, 21 days; Enterprise account manager at 14, 30 days', () => {
    expect(tiers.pro.pastDueContacts).toEqual({ contact: 'paymentReminder', atDays: [7, 14, 21] });
    expect(tiers.enterprise.pastDueContacts).toEqual({ contact: 'accountManagerContact', atDays: [14, 30] });
    expect(tiers.free.pastDueContacts.atDays).toEqual([]);
  });

  it('payment retries at 0 h, 6 h, 24 h and 48 h', () => {
    expect(defaultPolicy.paymentRetryHours).toEqual([0, 6, 24, 48]);
  });

  it('service downgrade: warning 7 days before, 10% soft limit, hard limit +3, suspension +7, deletion 90 days later', () => {
    expect(defaultPolicy.downgrade).toEqual({
      warningDaysBeforeGraceEnd: 7,
      softLimitRatePercent: 10,
      hardLimitDaysAfterGrace: 3,
      suspensionDaysAfterGrace: 7,
      deletionDaysAfterSuspension: 90,
      deletionRequiresApproval: false,
    });
  });

  it('a step waiting for attention is retried after 2 minutes, doubling up to 6 hours', () => {
    expect(defaultPolicy.attention).toEqual({ retryAfterMinutes: 2, maxRetryIntervalMinutes: 360 });
  });

  it('retries and outage grace', () => {
    expect(defaultPolicy.processorOutage).toEqual({
      graceHoursMin: 24,
      graceHoursMax: 48,
      stopAutomatedSuspensions: true,
    });
    expect(defaultPolicy.apiRetry).toEqual({
      initialIntervalMs: 1000,
      maximumIntervalMs: 60000,
      backoffCoefficient: 2,
    });
    expect(defaultPolicy.webhookRetry.maxDays).toBe(7);
    expect(defaultPolicy.usageAggregationRetry).toEqual({ everyHours: 2, forHours: 48 });
    expect(defaultPolicy.refund.windowDays).toBe(30);
    expect(defaultPolicy.postIncident.rootCauseReminderHours).toBe(48);
  });

  it("seed 000's escalation matrix", () => {
    const row = (kind: (typeof INCIDENT_KINDS)[number]) => {
      const incident = defaultPolicy.incidents[kind];
      return [
        incident.severity,
        incidentResponseMinutes(defaultPolicy, kind),
        incident.escalateTo.join(' + '),
      ];
    };
    expect(row('payment_processor_outage')).toEqual(['P1', 15, 'Finance + Engineering']);
    expect(row('usage_data_corruption')).toEqual(['P1', 30, 'Engineering + Legal']);
    expect(row('overbilling_dispute')).toEqual(['P2', 60, 'Customer Success']);
    expect(row('billing_dashboard_down')).toEqual(['P3', 240, 'Engineering']);
    expect(row('webhook_failure')).toEqual(['P2', 60, 'Engineering']);
    expect(row('billing_system_outage')).toEqual(['P1', 15, 'Engineering + Finance']);
  });

  it("severity levels and seed 004's escalation chains", () => {
    const { severityLevels, escalation } = defaultPolicy;
    expect(
      [severityLevels.P1, severityLevels.P2, severityLevels.P3, severityLevels.P4].map(
        (l) => l.responseMinutes,
      ),
    ).toEqual([15, 60, 240, 1440]);
    expect(escalation.P1).toEqual({
      firstResponder: ['On-call Engineer'],
      escalation: { afterMinutes: 30, contacts: ['Engineering Lead', 'Product'] },
      finalEscalation: { afterMinutes: 60, contacts: ['CTO', 'CEO'] },
    });
    expect(escalation.P4.finalEscalation).toBeNull();
  });

  it('monitoring thresholds', () => {
    expect(defaultPolicy.monitoring).toEqual({
      paymentSuccessRatePercent: { warnBelow: 95, criticalBelow: 90 },
      webhookProcessingSeconds: { warnAbove: 5, criticalAbove: 15 },
      failedWebhookRatePercent: { warnAbove: 5, criticalAbove: 10 },
      dunningConversionRatePercent: { warnBelow: 50, criticalBelow: 30 },
      billingApiLatencyMs: { warnAbove: 500, criticalAbove: 2000 },
    });
  });

  it('are a valid policy, returned as a copy that carries its version', () => {
    const parsed = parsePolicy({});
    expect(parsed).toEqual(defaultPolicy);
    expect(parsed).not.toBe(defaultPolicy);
    expect(policySchema.parse(undefined)).toEqual(defaultPolicy);
    expect(parsed.version).toBe('2026-11-21.runbook-000');
    expect(Object.isFrozen(defaultPolicy.tiers.pro)).toBe(true);
  });
});

describe('overrides', () => {
  it("express seed 004's values over seed 000's", () => {
    const runbook004: PolicyOverride = {
      version: '2026-01-24.runbook-004',
      // 004: every P1 is answered within 15 minutes; a single customer's payment issue is P3.
      incidents: {
        usage_data_corruption: { responseMinutes: null },
        overbilling_dispute: { severity: 'P3', responseMinutes: null },
      },
      // 004 extends grace by 7 days at a time.
      extendGrace: { maxDays: 7 },
      paymentRetryHours: [0, 24],
    };
    const policy = parsePolicy(runbook004);
    expect(policy.version).toBe('2026-01-24.runbook-004');
    expect(incidentResponseMinutes(policy, 'usage_data_corruption')).toBe(15);
    expect(policy.incidents.usage_data_corruption.escalateTo).toEqual(['Engineering', 'Legal']);
    expect(incidentResponseMinutes(policy, 'overbilling_dispute')).toBe(240);
    expect(policy.extendGrace.maxDays).toBe(7);
    expect(policy.paymentRetryHours).toEqual([0, 24]);
    // Everything not named keeps its default.
    expect(policy.tiers.enterprise.graceDays).toBe(14);
    expect(policy.incidents.payment_processor_outage).toEqual(
      defaultPolicy.incidents.payment_processor_outage,
    );
  });

  it('merge deeply: one tier setting changes, its siblings stay', () => {
    const policy = parsePolicy({ tiers: { pro: { graceDays: 10, overage: { blockAtPercent: 200 } } } });
    expect(policy.tiers.pro.graceDays).toBe(10);
    expect(policy.tiers.pro.overage).toEqual({
      throttleAtPercent: 120,
      blockAtPercent: 200,
      manualReview: false,
    });
    expect(policy.tiers.pro.pastDueContacts.atDays).toEqual([7, 14, 21]);
  });

  it('are rejected with the path of every bad setting', () => {
    const bad = {
      tiers: { pro: { graceDays: 'seven' }, gold: {} },
      paymentRetryHours: [0, 48, 6],
      incidents: { refund: { severity: 'P9' } },
      downgrade: { hardLimitDaysAfterGrace: 10 },
    };
    try {
      parsePolicy(bad);
      throw new Error('expected a PolicyError');
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyError);
      const paths = (err as PolicyError).issues.map((i) => i.path).sort();
      expect(paths).toEqual([
        'downgrade',
        'incidents.refund.severity',
        'paymentRetryHours',
        'tiers.gold',
        'tiers.pro.graceDays',
      ]);
      expect((err as PolicyError).message).toContain('tiers.gold: is not a policy setting');
    }
  });

  it('refuse a deletion sooner than the safety floor after suspension, saying why', () => {
    expect(() => parsePolicy({ downgrade: { deletionDaysAfterSuspension: 29 } })).toThrow(
      'downgrade.deletionDaysAfterSuspension: must be at least 30 days: deletion cannot be undone',
    );
    expect(
      parsePolicy({ downgrade: { deletionDaysAfterSuspension: 30 } }).downgrade.deletionDaysAfterSuspension,
    ).toBe(30);
  });

  it('cannot reach the prototype through "__proto__"', () => {
    expect(() => parsePolicy(JSON.parse('{"__proto__": {"version": "x"}}'))).toThrow(
      '__proto__: is not a policy setting',
    );
    expect(() => parsePolicy('strict')).toThrow(PolicyError);
  });
});
