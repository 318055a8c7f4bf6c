// The billing policy: its zod schema, the runbook defaults (seeds 000, then 004 where 000 is silent), and parsing overrides.
import { z } from 'zod';

export const BILLING_TIERS = ['free', 'pro', 'enterprise'] as const;
export type BillingTier = (typeof BILLING_TIERS)[number];

export const SEVERITIES = ['P1', 'P2', 'P3', 'P4'] as const;
export type Severity = (typeof SEVERITIES)[number];

const days = z.number().int().nonnegative();
const hours = z.number().int().nonnegative();
const minutes = z.number().int().positive();
const milliseconds = z.number().int().positive();
const percent = z.number().positive();
const ascending = (values: number[]) => values.every((v, i) => i === 0 || v > (values[i - 1] ?? v));
const team = z.string().min(1);

const tierSchema = z
  .object({
    /** null: the tier has no payment processing, so there is nothing to be graceful about (Free). */
    graceDays: z.number().int().positive().nullable(),
    overage: z
      .object({
        throttleAtPercent: percent.nullable(),
        blockAtPercent: percent.nullable(),
        manualReview: z.boolean(),
      })
      .strict()
      .refine(
        (o) =>
          o.throttleAtPercent === null || o.blockAtPercent === null || o.throttleAtPercent < o.blockAtPercent,
        {
          message: 'throttleAtPercent must be below blockAtPercent',
        },
      ),
    /** Who is contacted, and on which days past due; the contact names the template sent. */
    pastDueContacts: z
      .object({
        contact: z.enum(['paymentReminder', 'accountManagerContact']),
        atDays: z.array(z.number().int().positive()).refine(ascending, 'days must be in ascending order'),
      })
      .strict(),
  })
  .strict();

const severityLevelSchema = z.object({ name: z.string().min(1), responseMinutes: minutes }).strict();

const escalationStepSchema = z.object({ afterMinutes: minutes, contacts: z.array(team).min(1) }).strict();
const escalationChainSchema = z
  .object({
    firstResponder: z.array(team).min(1),
    escalation: escalationStepSchema,
    /** null: the chain ends at the escalation step (P4's "-"). */
    finalEscalation: escalationStepSchema.nullable(),
  })
  .strict()
  .refine((c) => c.finalEscalation === null || c.finalEscalation.afterMinutes > c.escalation.afterMinutes, {
    message: 'finalEscalation.afterMinutes must come after escalation.afterMinutes',
  });

const incidentSchema = z
  .object({
    severity: z.enum(SEVERITIES),
    /** null: the response time of the severity level. */
    responseMinutes: minutes.nullable(),
    escalateTo: z.array(team).min(1),
  })
  .strict();

const incidentsSchema = z
  .object({
    payment_processor_outage: incidentSchema,
    usage_data_corruption: incidentSchema,
    usage_metering_failure: incidentSchema,
    billing_system_outage: incidentSchema,
    overbilling_dispute: incidentSchema,
    billing_dashboard_down: incidentSchema,
    webhook_failure: incidentSchema,
    refund: incidentSchema,
    subscription_activation_failure: incidentSchema,
    stuck_transactions: incidentSchema,
  })
  .strict();

export const INCIDENT_KINDS = incidentsSchema.keyof().options;
export type IncidentKind = (typeof INCIDENT_KINDS)[number];

const below = z
  .object({ warnBelow: z.number().nonnegative(), criticalBelow: z.number().nonnegative() })
  .strict()
  .refine((t) => t.criticalBelow < t.warnBelow, 'criticalBelow must be below warnBelow');
const above = z
  .object({ warnAbove: z.number().nonnegative(), criticalAbove: z.number().nonnegative() })
  .strict()
  .refine((t) => t.criticalAbove > t.warnAbove, 'criticalAbove must be above warnAbove');

const policyObjectSchema = z
  .object({
    /** Snapshotted by every lifecycle, so a later policy change is visible in its history. */
    version: z.string().min(1),
    tiers: z.object({ free: tierSchema, pro: tierSchema, enterprise: tierSchema }).strict(),
    paymentRetryHours: z.array(hours).min(1).refine(ascending, 'hours must be in ascending order'),
    downgrade: z
      .object({
        warningDaysBeforeGraceEnd: days,
        softLimitRatePercent: z.number().int().min(0).max(100),
        hardLimitDaysAfterGrace: days,
        suspensionDaysAfterGrace: days,
        deletionDaysAfterSuspension: days,
      })
      .strict()
      .refine((d) => d.hardLimitDaysAfterGrace <= d.suspensionDaysAfterGrace, {
        message: 'hardLimitDaysAfterGrace must not come after suspensionDaysAfterGrace',
      }),
    processorOutage: z
      .object({ graceHoursMin: hours, graceHoursMax: hours, stopAutomatedSuspensions: z.boolean() })
      .strict()
      .refine((p) => p.graceHoursMin <= p.graceHoursMax, 'graceHoursMin must not exceed graceHoursMax'),
    /** The payment-processor-outage incident: how long a probe may take, how far back failed payments count. */
    processorOutageChecks: z
      .object({
        /** Seed 004 "Test API connectivity": a probe that has not answered by then counts as down. */
        probeTimeoutSeconds: z.number().int().positive(),
        /** Failed payments this long before the incident opened are the outage's (the alert fires late). */
        failedPaymentsLookbackMinutes: z.number().int().nonnegative(),
      })
      .strict(),
    apiRetry: z
      .object({
        initialIntervalMs: milliseconds,
        maximumIntervalMs: milliseconds,
        backoffCoefficient: z.number().min(1),
      })
      .strict()
      .refine(
        (r) => r.initialIntervalMs <= r.maximumIntervalMs,
        'initialIntervalMs must not exceed maximumIntervalMs',
      ),
    webhookRetry: z
      .object({
        maxDays: z.number().int().positive(),
        /** Seed 000 "retry up to 7 days with increasing intervals": the first retry, then doubling up to the cap. */
        firstRetryMinutes: minutes,
        maxRetryIntervalHours: z.number().int().positive(),
      })
      .strict(),
    /** The webhook-failure incident: how far back it looks, and how many signature failures it raises. */
    webhookFailure: z
      .object({
        lookbackHours: z.number().int().positive(),
        /** More rejected signatures than this in the window pages the responders (0: any). */
        raiseSignatureFailuresAbove: z.number().int().nonnegative(),
      })
      .strict(),
    usageAggregationRetry: z
      .object({ everyHours: z.number().int().positive(), forHours: z.number().int().positive() })
      .strict(),
    /** The usage-metering-failure incident: tenants spot-checked when none are named, hours per backfill chunk. */
    usageMeteringFailure: z
      .object({
        spotCheckSampleTenants: z.number().int().positive(),
        backfillChunkHours: z.number().int().positive(),
      })
      .strict(),
    refund: z
      .object({
        windowDays: z.number().int().positive(),
        allowAfterPriorRefund: z.boolean(),
        requireActiveSubscription: z.boolean(),
        /** Per currency: a refund above this many minor units waits for an operator's approval; absent: none does. */
        approvalAboveMinor: z.record(
          z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code'),
          z.number().int().positive(),
        ),
      })
      .strict(),
    extendGrace: z.object({ maxDays: z.number().int().positive() }).strict(),
    severityLevels: z
      .object({
        P1: severityLevelSchema,
        P2: severityLevelSchema,
        P3: severityLevelSchema,
        P4: severityLevelSchema,
      })
      .strict(),
    escalation: z
      .object({
        P1: escalationChainSchema,
        P2: escalationChainSchema,
        P3: escalationChainSchema,
        P4: escalationChainSchema,
      })
      .strict(),
    incidents: incidentsSchema,
    /** Seed 004 "stuck transactions": pending longer than this is stuck; in-flight ones are re-verified with backoff. */
    stuckTransactions: z
      .object({
        pendingOverMinutes: minutes,
        firstRecheckMinutes: minutes,
        maxRecheckIntervalMinutes: minutes,
        recheckForHours: z.number().int().positive(),
      })
      .strict(),
    /** How an incident waiting for recovery probes the broken part: first probe, then doubling up to the cap. */
    recoveryProbe: z.object({ firstAfterMinutes: minutes, maxIntervalMinutes: minutes }).strict(),
    /** The billing-system-outage incident (seed 000 §3): health-check limits, the outage hooks, waiting and replay. */
    billingSystemOutage: z
      .object({
        /** Connecting to PostgreSQL, reading and the write probe each give up after this. */
        databaseTimeoutMs: milliseconds,
        /** Replicas further behind than this count as unhealthy. */
        maxReplicationLagSeconds: z.number().int().positive(),
        /** A scale-up or failover hook (command or webhook) is stopped after this long. */
        hookTimeoutSeconds: z.number().int().positive(),
        /** Attempts at a hook whose webhook is unreachable or answers 5xx; a command runs once. */
        hookAttempts: z.number().int().positive(),
        /** Probing stops after this long without recovery; the incident then waits for an operator. */
        recoveryWaitHours: z.number().int().positive(),
        /** Replaying the queued critical operations may take this long (it heartbeats per operation). */
        replayTimeoutMinutes: minutes,
      })
      .strict(),
    /** Who may acknowledge, resolve, approve or pause an incident; empty: anyone who names themselves. */
    incidentResponders: z.array(team),
    postIncident: z
      .object({
        rootCauseReminderHours: z.number().int().positive(),
        reportRequiredFor: z.array(z.enum(SEVERITIES)),
      })
      .strict(),
    monitoring: z
      .object({
        paymentSuccessRatePercent: below,
        webhookProcessingSeconds: above,
        failedWebhookRatePercent: above,
        dunningConversionRatePercent: below,
        billingApiLatencyMs: above,
      })
      .strict(),
    serviceCredit: z
      .object({
        percentOfPeriodFeePerOutageHour: z.number().nonnegative(),
        maxPercent: z.number().nonnegative().max(100),
      })
      .strict(),
  })
  .strict();

export type Policy = z.output<typeof policyObjectSchema>;
export type TierPolicy = Policy['tiers'][BillingTier];
export type IncidentPolicy = Policy['incidents'][IncidentKind];
export type EscalationChain = Policy['escalation'][Severity];

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
  serviceCredit: { percentOfPeriodFeePerOutageHour: 1, maxPercent: 100 },
});

/** An override as read from BILLOPS_POLICY_FILE: any subset of the policy. */
export type PolicyOverride = DeepPartial<Policy>;
type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** Validates a whole policy after laying the input over the defaults; `policySchema.parse({})` is the defaults. */
export const policySchema = z.preprocess(
  (input) => mergeOverDefaults(defaultPolicy, input),
  policyObjectSchema,
);

export interface PolicyIssue {
  path: string;
  message: string;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(readonly issues: PolicyIssue[]) {
    super(`policy is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

/** Deep-merges a partial override over the defaults (arrays and null replace), then validates the result. */
export function parsePolicy(input: unknown): Policy {
  const result = policySchema.safeParse(input);
  if (result.success) return result.data;
  throw new PolicyError(result.error.issues.flatMap(toPolicyIssues));
}

/** The incident kind's own response time, else its severity level's. */
export function incidentResponseMinutes(policy: Policy, kind: IncidentKind): number {
  const incident = policy.incidents[kind];
  return incident.responseMinutes ?? policy.severityLevels[incident.severity].responseMinutes;
}

function toPolicyIssues(issue: z.ZodIssue): PolicyIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: 'is not a policy setting',
    }));
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

function formatPath(path: (string | number)[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeOverDefaults(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const merged: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(base), ...Object.keys(override)])) {
    const value = mergeOverDefaults(
      Object.hasOwn(base, key) ? base[key] : undefined,
      Object.hasOwn(override, key) ? override[key] : undefined,
    );
    // defineProperty keeps a "__proto__" key as data, so the strict schema reports it instead of it rewriting the prototype.
    Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return merged;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
