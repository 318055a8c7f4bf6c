// The runbooks' default numbers (seed 000, then 004 where 000 is silent), laid out like the runbooks' tables.
import type { Policy } from './schema';

/** Every number the runbooks give, in their words; seed 000 wins where the two disagree (seeds/README.md). */
export const defaultPolicy: Policy = deepFreeze({
  version: '2026-11-21.runbook-000',
  tiers: {
    free: {
      graceDays: null,
      overage: { throttleAtPercent: null, blockAtPercent: 100, manualReview: false },
      pastDueContacts: { contact: 'paymentReminder', atDays: [] },
    },
    pro: {
      graceDays: 7,
      overage: { throttleAtPercent: 120, blockAtPercent: 150, manualReview: false },
      pastDueContacts: { contact: 'paymentReminder', atDays: [7, 14, 21] },
    },
    enterprise: {
      graceDays: 14,
      overage: { throttleAtPercent: null, blockAtPercent: null, manualReview: true },
      pastDueContacts: { contact: 'accountManagerContact', atDays: [14, 30] },
    },
  },
  paymentRetryHours: [0, 6, 24, 48],
  downgrade: {
    warningDaysBeforeGraceEnd: 7,
    softLimitRatePercent: 10,
    hardLimitDaysAfterGrace: 3,
    suspensionDaysAfterGrace: 7,
    deletionDaysAfterSuspension: 90,
    deletionRequiresApproval: false,
  },
  processorOutage: { graceHoursMin: 24, graceHoursMax: 48, stopAutomatedSuspensions: true },
  // The alert (success rate over 5 minutes, for 5 minutes) fires about 10 minutes into an outage.
  processorOutageChecks: { probeTimeoutSeconds: 10, failedPaymentsLookbackMinutes: 15 },
  apiRetry: { initialIntervalMs: 1000, maximumIntervalMs: 60000, backoffCoefficient: 2 },
  webhookRetry: { maxDays: 7, firstRetryMinutes: 15, maxRetryIntervalHours: 24 },
  // Seed 004's `retry_failed_webhooks --hours 24`; a rejected signature is never expected, so any one is raised.
  webhookFailure: { lookbackHours: 24, raiseSignatureFailuresAbove: 0 },
  usageAggregationRetry: { everyHours: 2, forHours: 48 },
  // Seed 000 names no sample size for "spot check known tenants"; a day per chunk keeps each statement short.
  usageMeteringFailure: { spotCheckSampleTenants: 5, backfillChunkHours: 24 },
  // The runbooks ask no approval for refunds; an operator may set a threshold per currency.
  refund: {
    windowDays: 30,
    allowAfterPriorRefund: false,
    requireActiveSubscription: true,
    approvalAboveMinor: {},
  },
  extendGrace: { maxDays: 90 },
  severityLevels: {
    P1: { name: 'Critical', responseMinutes: 15 },
    P2: { name: 'High', responseMinutes: 60 },
    P3: { name: 'Medium', responseMinutes: 240 },
    P4: { name: 'Low', responseMinutes: 1440 },
  },
  // Seed 004's chains. The response time times level 1 (domain/escalation.ts); the final step follows after the
  // gap between the two afterMinutes (004 names no time for it: another 30 minutes).
  escalation: {
    P1: {
      firstResponder: ['On-call Engineer'],
      escalation: { afterMinutes: 30, contacts: ['Engineering Lead', 'Product'] },
      finalEscalation: { afterMinutes: 60, contacts: ['CTO', 'CEO'] },
    },
    P2: {
      firstResponder: ['On-call Engineer'],
      escalation: { afterMinutes: 30, contacts: ['Engineering Lead'] },
      finalEscalation: { afterMinutes: 60, contacts: ['Product Manager'] },
    },
    P3: {
      firstResponder: ['Support Engineer'],
      escalation: { afterMinutes: 30, contacts: ['Engineering Team'] },
      finalEscalation: { afterMinutes: 60, contacts: ['Engineering Lead'] },
    },
    P4: {
      firstResponder: ['Support Engineer'],
      escalation: { afterMinutes: 30, contacts: ['Engineering Team'] },
      finalEscalation: null,
    },
  },
  // The first four rows are seed 000's escalation matrix; the rest take their severity from seed 004's examples.
  incidents: {
    payment_processor_outage: { severity: 'P1', responseMinutes: 15, escalateTo: ['Finance', 'Engineering'] },
    usage_data_corruption: { severity: 'P1', responseMinutes: 30, escalateTo: ['Engineering', 'Legal'] },
    overbilling_dispute: { severity: 'P2', responseMinutes: 60, escalateTo: ['Customer Success'] },
    billing_dashboard_down: { severity: 'P3', responseMinutes: 240, escalateTo: ['Engineering'] },
    usage_metering_failure: { severity: 'P1', responseMinutes: 30, escalateTo: ['Engineering', 'Legal'] },
    billing_system_outage: { severity: 'P1', responseMinutes: null, escalateTo: ['Engineering', 'Finance'] },
    webhook_failure: { severity: 'P2', responseMinutes: null, escalateTo: ['Engineering'] },
    refund: { severity: 'P3', responseMinutes: null, escalateTo: ['Customer Success', 'Finance'] },
    subscription_activation_failure: { severity: 'P2', responseMinutes: null, escalateTo: ['Engineering'] },
    stuck_transactions: { severity: 'P3', responseMinutes: null, escalateTo: ['Engineering'] },
  },
  stuckTransactions: {
    pendingOverMinutes: 60,
    firstRecheckMinutes: 15,
    maxRecheckIntervalMinutes: 120,
    recheckForHours: 24,
  },
  recoveryProbe: { firstAfterMinutes: 1, maxIntervalMinutes: 15 },
  // The runbooks give no numbers here; the billing API's own health timeout is monitoring.billingApiLatencyMs.
  billingSystemOutage: {
    databaseTimeoutMs: 5000,
    maxReplicationLagSeconds: 30,
    hookTimeoutSeconds: 300,
    hookAttempts: 3,
    recoveryWaitHours: 24,
    replayTimeoutMinutes: 30,
  },
  incidentResponders: [],
  postIncident: { rootCauseReminderHours: 48, reportRequiredFor: ['P1', 'P2'] },
  monitoring: {
    paymentSuccessRatePercent: { warnBelow: 95, criticalBelow: 90 },
    webhookProcessingSeconds: { warnAbove: 5, criticalAbove: 15 },
    failedWebhookRatePercent: { warnAbove: 5, criticalAbove: 10 },
    dunningConversionRatePercent: { warnBelow: 50, criticalBelow: 30 },
    billingApiLatencyMs: { warnAbove: 500, criticalAbove: 2000 },
  },
  attention: { retryAfterMinutes: 2, maxRetryIntervalMinutes: 360 },
  serviceCredit: { percentOfPeriodFeePerOutageHour: 1, maxPercent: 100 },
});

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
