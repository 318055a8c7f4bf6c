// Every signal, query and update of billops' workflows, defined once and imported by workflows, workers, CLI and ingress.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AttentionWait, SkipRequest } from '../domain/attention';
import type { MeterUsage, OverageLevel } from '../domain/overage';
import type { DunningDeadlines, DunningStatus, FailedInvoice, GraceExtension } from '../domain/dunning';
import type { BackfillStatus, RollupStatus } from '../domain/rollups';
import type { Approval, IncidentInput, IncidentStatus } from '../domain/incident';

/** A customer notice: a templated email plus a dashboard notification for one tenant. */
export interface NoticeStatus {
  tenantId: string;
  template: string;
  emailed: boolean;
  dashboardNotified: boolean;
}
export const noticeStatusQuery = defineQuery<NoticeStatus>('status');

/** Operator steering shared by dunning and incident workflows (DESIGN.md contracts). */
export interface OperatorAction {
  operator: string;
  reason?: string;
}
export const pauseSignal = defineSignal<[OperatorAction]>('pause');
export const resumeSignal = defineSignal<[OperatorAction]>('resume');
/** A step waiting for attention (domain/attention.ts) is tried again at once, not at its next backoff. */
export const retryNowSignal = defineSignal<[OperatorAction]>('retryNow');
/** The step waiting for attention is given up, with the reason kept in the timeline; refused when none waits. */
export const skipStepUpdate = defineUpdate<AttentionWait | null, [SkipRequest]>('skipStep');

// Dunning lifecycle.
export const paymentFailedSignal = defineSignal<[FailedInvoice]>('paymentFailed');
export const paymentSucceededSignal =
  defineSignal<[{ invoiceId: string; reference?: string }]>('paymentSucceeded');
/** An update, not a signal: the operator needs the new deadlines back, or the reason it was refused. */
export const extendGraceUpdate = defineUpdate<DunningDeadlines, [GraceExtension]>('extendGrace');
/** The same extension as a signal, so a batch operation can reach every lifecycle a visibility query selects. */
export const extendGraceSignal = defineSignal<[GraceExtension]>('extendGraceBatch');
export const dunningStatusQuery = defineQuery<DunningStatus>('status');
/** The day-111 deletion, when the policy requires an operator's approval (downgrade.deletionRequiresApproval). */
export const approveDeletionUpdate = defineUpdate<DunningStatus, [{ operator: string; reason: string }]>(
  'approveDeletion',
);

// Usage rollups: the hourly job's attempts and reruns, a backfill's progress in percent.
export const rollupStatusQuery = defineQuery<RollupStatus>('status');
export const backfillStatusQuery = defineQuery<BackfillStatus>('status');

// Overage enforcement.
export interface OverageDecision {
  decision: 'no_action' | 'throttled' | 'blocked';
  operator: string;
  reason: string;
}
export interface OverageStatus {
  tenantId: string;
  tier: string;
  periodEnd: string;
  assessed: OverageLevel;
  enforced: OverageLevel;
  review: {
    openedAt: string;
    reason?: string;
    decision?: OverageDecision['decision'];
    decidedBy?: string;
  } | null;
  usage: MeterUsage[];
  timeline: { at: string; event: string; detail?: string; operator?: string }[];
}
export const usageUpdatedSignal = defineSignal('usageUpdated');
export const overageDecisionSignal = defineSignal<[OverageDecision]>('overageDecision');
export const overageStatusQuery = defineQuery<OverageStatus>('status');

// Incidents (DESIGN.md "Incidents"): the contract's signals, plus updates for callers that need an answer.
export interface AcknowledgeRequest {
  operator: string;
}
export interface ResolveRequest {
  operator: string;
  summary: string;
}
export interface AlertResolved {
  /** When Alertmanager says the alert ended (endsAt); the workflow's clock if absent. */
  endsAt?: string;
  fingerprint?: string;
}
export interface RootCauseRequest {
  operator: string;
  summary: string;
}
export const acknowledgeSignal = defineSignal<[AcknowledgeRequest]>('acknowledge');
export const resolveSignal = defineSignal<[ResolveRequest]>('resolve');
export const alertResolvedSignal = defineSignal<[AlertResolved]>('alertResolved');
/**
 * A re-fired alert reaching a running incident: counted in its timeline while the incident is open; after it is
 * resolved it opens a new occurrence from `input` (what startIncident would start it with).
 */
export const alertFiredSignal =
  defineSignal<[{ fingerprint: string; startsAt?: string; input?: IncidentInput<unknown> }]>('alertFired');
/** Updates, not signals: the operator needs to hear whether it took, or why it was refused. */
export const acknowledgeUpdate = defineUpdate<IncidentStatus, [AcknowledgeRequest]>('acknowledgeIncident');
export const resolveUpdate = defineUpdate<IncidentStatus, [ResolveRequest]>('resolveIncident');
export const approveStepUpdate = defineUpdate<IncidentStatus, [Approval]>('approveStep');
export const recordRootCauseUpdate = defineUpdate<IncidentStatus, [RootCauseRequest]>('recordRootCause');
export const incidentStatusQuery = defineQuery<IncidentStatus>('status');

// Outbound webhook delivery (one workflow per endpoint and tenant).
/** New deliveries are pending in the workflow's stream: it sends them after the ones before, in order. */
export const webhookDeliveriesPendingSignal = defineSignal('webhookDeliveriesPending');
