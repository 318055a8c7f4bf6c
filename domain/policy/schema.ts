// The billing policy's shape: its zod schema with the safety floors each setting must respect, and the types read from it.
import { z } from 'zod';

export const BILLING_TIERS = ['free', 'pro', 'enterprise'] as const;
export type BillingTier = (typeof BILLING_TIERS)[number];

export const SEVERITIES = ['P1', 'P2', 'P3', 'P4'] as const;
export type Severity = (typeof SEVERITIES)[number];

const days = z.number().int().nonnegative();
/**
 * Safety floor: a policy (a file, or a snapshot in a crafted workflow start) may not delete a tenant's data sooner
 * than this after suspension. The runbook's own retention is 90 days.
 */
export const DELETION_FLOOR_DAYS = 30;
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

/** Every setting, present and checked; `policySchema` (./index.ts) lays an override over the defaults first. */
export const policyObjectSchema = z
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
        deletionDaysAfterSuspension: days.min(
          DELETION_FLOOR_DAYS,
          `must be at least ${DELETION_FLOOR_DAYS} days: deletion cannot be undone`,
        ),
        /** The day-111 deletion waits for an operator's `approveDeletion` before anything is deleted. */
        deletionRequiresApproval: z.boolean(),
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
          // zod 4 wraps a key's problems in one invalid_key issue ("Invalid key in record"): show the key's own.
          { error: (issue) => (issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined) },
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
    /**
     * A step only a person can fix (a refused key, a voided invoice, a pager answering 4xx) waits for attention:
     * retried after this many minutes, doubling up to the cap, or at once on `retryNow`.
     */
    attention: z
      .object({ retryAfterMinutes: minutes, maxRetryIntervalMinutes: minutes })
      .strict()
      .refine((a) => a.retryAfterMinutes <= a.maxRetryIntervalMinutes, {
        message: 'retryAfterMinutes must not exceed maxRetryIntervalMinutes',
      }),
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
