// Subscription activation failure and trial conversion (seed 004 "Subscription Issues"): payment confirmed but the
// subscription inactive → verify the payment → activate on the paid tier and period (the trial cleared) → the tenant's
// tier to match → email the customer. An unconfirmed payment activates nothing, and says why.
import { proxyActivities } from '@temporalio/workflow';
import type { IncidentActivities } from '../../activities/incidents/common';
import type { SubscriptionActivities } from '../../activities/subscriptions';
import type { IncidentInput } from '../../domain/incident';
import { formatMinorUnits } from '../../domain/money';
import {
  activationRequestProblem,
  alreadyActive,
  type ActivationParams,
} from '../../domain/subscriptionActivation';
import { incidentStep } from '../shared/activityOptions';
import { BILLOPS, openIncident, type IncidentOutcome } from './frame';

const day = (iso: string) => iso.slice(0, 10);

export async function subscriptionActivationWorkflow(
  input: IncidentInput<ActivationParams>,
): Promise<IncidentOutcome> {
  const incident = await openIncident(input);
  const { step } = incident;
  const subscriptions = proxyActivities<SubscriptionActivities>(incidentStep(input.policy));
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const params = input.params;
  const notActivated = (reason: string) => {
    incident.resolveAsBillops(`not activated: ${reason}`);
    return incident.close({ impact: 'service: subscription not activated', executor: BILLOPS });
  };

  const problem = activationRequestProblem(input.policy, params);
  if (problem) {
    incident.skip('activate the subscription', problem);
    return notActivated(`the request cannot be acted on: ${problem}`);
  }
  incident.affects([params.tenantId]);

  // 1. Is the payment confirmed? Our records first, else the provider's word.
  const payment = await step(
    'verify the payment',
    () =>
      subscriptions.verifyActivationPayment({
        tenantId: params.tenantId,
        reference: params.reference,
        processor: params.processor,
      }),
    (p) => (p.confirmed ? p.detail : `not confirmed: ${p.reason}`),
  );
  if (!payment.confirmed) {
    incident.skip('activate the subscription', payment.reason);
    return notActivated(`payment ${params.reference} is not confirmed: ${payment.reason}`);
  }
  if (payment.amountMinor !== null && payment.currency !== null) {
    // What the customer paid without being served.
    incident.state.revenueImpact = { amountMinor: payment.amountMinor, currency: payment.currency };
  }
  if (alreadyActive(payment.subscription, params, Date.now())) {
    const sub = payment.subscription!;
    incident.skip(
      'activate the subscription',
      `already active: ${sub.tier} until ${day(sub.currentPeriodEnd)}`,
    );
    incident.resolveAsBillops(
      `subscription already active: ${sub.tier} (${sub.billingCycle}) until ${day(sub.currentPeriodEnd)}`,
    );
    return incident.close({ impact: 'none: the subscription was already active', executor: BILLOPS });
  }

  // 2. Activate: the right tier and period, the trial cleared for a conversion, the tenant's tier to match.
  const activated = await step(
    params.trialConversion ? 'convert the trial to paid' : 'activate the subscription',
    () =>
      subscriptions.activateSubscription({
        tenantId: params.tenantId,
        tier: params.tier,
        billingCycle: params.billingCycle,
        trialConversion: params.trialConversion === true,
        processor: payment.processor,
      }),
    (a) =>
      `${a.previousStatus ?? 'no subscription'} → active ${a.tier} (${a.billingCycle}), ${day(a.periodStart)} to ${day(a.periodEnd)}`,
  );

  // 3. Email the customer.
  await step(
    'email the customer',
    () =>
      incidents.notifyTenants({
        idempotencyKey: incident.key('subscription-activated'),
        tenantIds: [params.tenantId],
        template: 'subscriptionActivated',
        vars: {
          tier: activated.tier,
          period_start: day(activated.periodStart),
          period_end: day(activated.periodEnd),
        },
      }),
    (r) => `${r.notified} customer emailed`,
  );

  const paid =
    payment.amountMinor !== null && payment.currency !== null
      ? ` (${formatMinorUnits(payment.amountMinor, payment.currency)})`
      : '';
  incident.resolveAsBillops(
    `${params.trialConversion ? 'trial converted' : 'activated'}: ${activated.tier} (${activated.billingCycle}) ` +
      `${day(activated.periodStart)} to ${day(activated.periodEnd)} on payment ${params.reference}${paid}`,
  );
  return incident.close({
    impact: `service: paid ${activated.tier} subscription was not active`,
    executor: BILLOPS,
  });
}
