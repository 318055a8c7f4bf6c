// Refund (seed 004 "Refund Processing"): verify the original transaction → check eligibility (within 30 days, no
// earlier refund, subscription active) → refund through the provider → update the transaction → adjust the
// subscription → email the customer. A refusal is emailed with its reason; a refund the provider reports is recorded.
import { proxyActivities } from '@temporalio/workflow';
import type { IncidentActivities } from '../../activities/incidents/common';
import type { RefundActivities } from '../../activities/incidents/refund';
import type { SubscriptionActivities } from '../../activities/subscriptions';
import type { IncidentInput } from '../../domain/incident';
import { formatMinorUnits, type Money } from '../../domain/money';
import {
  refundDecision,
  refundRequestProblem,
  subscriptionChangeProblem,
  subscriptionChangeText,
  type RefundablePayment,
  type RefundParams,
  type ReportedRefund,
} from '../../domain/refunds';
import { incidentStep } from '../shared/activityOptions';
import { BILLOPS, openIncident, type Incident, type IncidentOutcome } from './frame';

const money = (m: Money) => formatMinorUnits(m.amountMinor, m.currency);

export async function refundWorkflow(input: IncidentInput<RefundParams>): Promise<IncidentOutcome> {
  const incident = await openIncident(input);
  const { step } = incident;
  const refunds = proxyActivities<RefundActivities>(incidentStep(input.policy));
  const subscriptions = proxyActivities<SubscriptionActivities>(incidentStep(input.policy));
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const params = input.params;

  const problem = refundRequestProblem(params);
  if (problem) return notRefunded(incident, `the request cannot be acted on: ${problem}`);
  incident.affects([params.tenantId]);

  // 1. Verify the original transaction.
  const found = await step(
    'verify the original transaction',
    () =>
      refunds.findRefundablePayment({
        tenantId: params.tenantId,
        transactionId: params.transactionId,
        references: params.reported?.paymentReferences ?? (params.reference ? [params.reference] : []),
      }),
    (f) => (f.found ? describe(f.payment) : f.reason),
  );
  if (!found.found) {
    if (!params.reported) return notRefunded(incident, found.reason);
    // Money went back for a payment billops does not hold: a person reconciles it.
    incident.skip('record the refund', `${found.reason}; reconcile it by hand and resolve the incident`);
    await incident.waitForResolution();
    return incident.close({
      impact: 'unknown: a refund of a payment billops does not hold',
      executor: 'operator',
    });
  }
  const payment = found.payment;
  if (params.reported) return recordReportedRefund(incident, payment, params.reported);

  // 2. Check refund eligibility; a refusal tells the customer why.
  const decision = await step(
    'check refund eligibility',
    async () => refundDecision(input.policy.refund, payment, { amountMinor: params.amountMinor }, Date.now()),
    (d) => (d.eligible ? `eligible: ${money(d)} (${d.full ? 'full' : 'partial'})` : `refused: ${d.reason}`),
  );
  if (!decision.eligible) return refused(incident, payment, decision.reason);
  const changeProblem = subscriptionChangeProblem(
    params.subscriptionChange,
    params.downgradeTo,
    payment.subscription,
  );
  if (changeProblem) return notRefunded(incident, `the subscription change cannot be made: ${changeProblem}`);

  // Above the policy's threshold a person approves the refund first.
  const threshold = input.policy.refund.approvalAboveMinor[decision.currency];
  let approvedBy = BILLOPS;
  if (threshold !== undefined && decision.amountMinor > threshold) {
    const approval = await incident.approval(
      'approve the refund',
      `refund ${money(decision)} of ${payment.reference} to ${params.tenantId} (${params.reason})? ` +
        `Refunds above ${money({ amountMinor: threshold, currency: decision.currency })} need approval.`,
    );
    if (!approval.approved) {
      if (incident.state.resolution)
        return incident.close({ impact: 'none: no refund issued', executor: BILLOPS });
      return refused(
        incident,
        payment,
        `it was not approved${approval.reason ? ` (${approval.reason})` : ''}`,
      );
    }
    approvedBy = approval.operator;
  }
  if (incident.state.resolution) {
    incident.skip('refund through the provider', `resolved by ${incident.state.resolution.by} first`);
    return incident.close({ impact: 'none: no refund issued', executor: incident.state.resolution.by });
  }

  // 3. Refund through the payment's provider, full or partial, in minor units.
  const refund = await step(
    `refund through ${payment.processor}`,
    () =>
      refunds.refundPayment({
        idempotencyKey: incident.key('refund'),
        workflowId: incident.state.workflowId,
        tenantId: params.tenantId,
        transactionId: payment.transactionId,
        processor: payment.processor,
        reference: payment.reference,
        amountMinor: decision.amountMinor,
        currency: decision.currency,
        reason: params.reason,
      }),
    (r) =>
      r.outcome === 'refunded'
        ? `${r.refundReference}: ${money(r)} ${r.providerStatus}${r.answeredBy === 'earlier_attempt' ? ' (an earlier attempt)' : ''}`
        : `not refunded: ${r.reason}`,
  );
  if (refund.outcome === 'not_refunded') {
    incident.skip('update the transaction', `${refund.reason}; refund by hand, then resolve the incident`);
    await incident.waitForResolution();
    return incident.close({ impact: 'not refunded by billops', executor: incident.state.resolution!.by });
  }

  // 4. Update the transaction: status, refund reference, amount, time; and the refund row.
  await step(
    'update the transaction',
    () =>
      refunds.recordRefund({
        idempotencyKey: incident.key('record-refund'),
        workflowId: incident.state.workflowId,
        transactionId: payment.transactionId,
        processor: refund.processor,
        refundReference: refund.refundReference,
        amountMinor: refund.amountMinor,
        currency: refund.currency,
        reason: params.reason,
        operator: approvedBy,
      }),
    (r) =>
      `${payment.reference} ${r.status.replace('_', ' ')}, ${money({ ...refund, amountMinor: r.refundedMinor })} in all`,
  );
  incident.state.revenueImpact = { amountMinor: refund.amountMinor, currency: refund.currency };

  // 5. Adjust the subscription: downgrade, or cancel at the end of the period.
  let subscriptionChange = subscriptionChangeText('none', null);
  if (params.subscriptionChange === 'none') {
    incident.skip('adjust the subscription', 'no change asked');
  } else {
    const change = params.subscriptionChange;
    const adjusted = await step(
      'adjust the subscription',
      () =>
        subscriptions.adjustSubscriptionAfterRefund({
          idempotencyKey: incident.key('adjust-subscription'),
          workflowId: incident.state.workflowId,
          tenantId: params.tenantId,
          change,
          downgradeTo: params.downgradeTo,
          reason: params.reason,
        }),
      (a) =>
        `${a.change === 'downgrade' ? `${a.previousTier} → ${a.tier}` : `cancels at ${a.currentPeriodEnd.slice(0, 10)}`}; ${a.provider}`,
    );
    subscriptionChange = subscriptionChangeText(change, payment.subscription, adjusted.tier);
  }

  // 6. Email the customer.
  await step(
    'email the refund confirmation',
    () =>
      incidents.notifyTenants({
        idempotencyKey: incident.key('refund-confirmation'),
        tenantIds: [params.tenantId],
        template: 'refundConfirmation',
        vars: {
          transaction_reference: payment.reference,
          amount_refunded: money(refund),
          subscription_change: subscriptionChange,
        },
      }),
    (r) => `${r.notified} customer emailed`,
  );

  incident.resolveAsBillops(
    `refunded ${money(refund)} of ${payment.reference} (${refund.processor} ${refund.refundReference}); ` +
      `subscription ${subscriptionChange.replace(/\.$/, '')}`,
  );
  return incident.close({ impact: `revenue: ${money(refund)} refunded`, executor: BILLOPS });
}

function describe(p: RefundablePayment): string {
  const paid = p.paidAt ? ` paid ${p.paidAt.slice(0, 10)}` : '';
  const sub = p.subscription
    ? `; subscription ${p.subscription.tier} ${p.subscription.status}`
    : '; no subscription';
  return `${p.processor} ${p.reference}: ${formatMinorUnits(p.amountMinor, p.currency)} ${p.status}${paid}${sub}`;
}

/** Not eligible: the customer is told why, and the incident ends there. */
async function refused(
  incident: Incident,
  payment: RefundablePayment,
  reason: string,
): Promise<IncidentOutcome> {
  const incidents = proxyActivities<IncidentActivities>(incidentStep(incident.input.policy));
  await incident.step(
    'email the customer why',
    () =>
      incidents.notifyTenants({
        idempotencyKey: incident.key('refund-refused'),
        tenantIds: [payment.tenantId],
        template: 'refundRefused',
        vars: { transaction_reference: payment.reference, reason },
      }),
    (r) => `${r.notified} customer emailed`,
  );
  incident.resolveAsBillops(`refund of ${payment.reference} refused: ${reason}`);
  return incident.close({ impact: 'none: no refund issued', executor: BILLOPS });
}

/** Asked wrongly (an operator's mistake, not the customer's eligibility): ends with the reason, no customer email. */
function notRefunded(incident: Incident, reason: string): Promise<IncidentOutcome> {
  incident.skip('refund', reason);
  incident.resolveAsBillops(`not refunded: ${reason}`);
  return incident.close({ impact: 'none: no refund issued', executor: BILLOPS });
}

/** The provider already gave the money back (its dashboard, a chargeback desk): recorded here, never asked again. */
async function recordReportedRefund(
  incident: Incident,
  payment: RefundablePayment,
  reported: ReportedRefund,
): Promise<IncidentOutcome> {
  const { step, input } = incident;
  const refunds = proxyActivities<RefundActivities>(incidentStep(input.policy));
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const params = input.params as RefundParams;
  const refund = { amountMinor: reported.amountMinor, currency: reported.currency };
  if (payment.refundReference === reported.refundReference) {
    incident.skip('record the refund', `${reported.refundReference} is already recorded`);
    incident.resolveAsBillops(
      `${reported.processor} refund ${reported.refundReference} was already recorded`,
    );
    return incident.close({ impact: 'none: already recorded', executor: BILLOPS });
  }
  if (payment.status !== 'success' && payment.status !== 'partially_refunded') {
    incident.skip(
      'record the refund',
      `payment ${payment.reference} is ${payment.status} here; reconcile it by hand`,
    );
    await incident.waitForResolution();
    return incident.close({
      impact: `revenue: ${money(refund)} refunded`,
      executor: incident.state.resolution!.by,
    });
  }
  const policy = await step(
    'check against the refund policy',
    async () =>
      refundDecision(input.policy.refund, payment, { amountMinor: reported.amountMinor }, Date.now()),
    (d) => (d.eligible ? 'within policy' : `outside policy: ${d.reason}`),
  );
  await step(
    'update the transaction',
    () =>
      refunds.recordRefund({
        idempotencyKey: incident.key('record-refund'),
        workflowId: incident.state.workflowId,
        transactionId: payment.transactionId,
        processor: reported.processor,
        refundReference: reported.refundReference,
        amountMinor: reported.amountMinor,
        currency: reported.currency,
        reason: params.reason,
        operator: BILLOPS,
      }),
    (r) => `${payment.reference} ${r.status.replace('_', ' ')}${r.recorded ? '' : ' (already recorded)'}`,
  );
  incident.state.revenueImpact = refund;
  await step(
    'email the refund confirmation',
    () =>
      incidents.notifyTenants({
        idempotencyKey: incident.key('refund-confirmation'),
        tenantIds: [payment.tenantId],
        template: 'refundConfirmation',
        vars: {
          transaction_reference: payment.reference,
          amount_refunded: money(refund),
          subscription_change: subscriptionChangeText('none', null),
        },
      }),
    (r) => `${r.notified} customer emailed`,
  );
  incident.resolveAsBillops(
    `${reported.processor} refunded ${money(refund)} of ${payment.reference} (${reported.refundReference}); recorded` +
      (policy.eligible ? '' : `; outside policy: ${policy.reason}`),
  );
  return incident.close({ impact: `revenue: ${money(refund)} refunded`, executor: BILLOPS });
}
