// Payment processor outage (seed 000 "Payment Processing Failure"; seed 004 "Paystack integration down"): check the
// processor, its key and webhooks; move new payments to the backup; give the affected accounts a grace and stop their
// suspensions; accept manual payments; tell the customers. Once it is back: switch back, resume dunning, retry the
// failed payments, credit the time it was down.
import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { IncidentActivities, TenantNoticeVars } from '../../activities/incidents/common';
import type {
  DunningSteerResult,
  OutageProcessor,
  ProcessorOutageActivities,
} from '../../activities/incidents/paymentProcessorOutage';
import { durationText, note, type IncidentInput } from '../../domain/incident';
import { formatMinorUnits } from '../../domain/money';
import type { Policy } from '../../domain/policy';
import type { TemplateName } from '../../domain/templates';
import { incidentStep } from '../shared/activityOptions';
import { BILLOPS, openIncident, type IncidentOutcome, type RecoveredBy } from './frame';
import { MINUTE_MS } from '../../domain/vocabulary';

export interface ProcessorOutageParams {
  processor: OutageProcessor;
  /** An operator's estimate of how long the outage lasts; unknown: the policy's longest grace. */
  expectedHours?: number;
  /** An outage confined to some accounts (one currency, one merchant account); all on the processor when absent. */
  tenantIds?: string[];
}

const NAMES: Record<OutageProcessor, string> = { stripe: 'Stripe', paystack: 'Paystack' };
const KEY_VERDICT: Record<string, string> = {
  true: 'accepted',
  false: 'REFUSED',
  null: 'not verifiable while the API does not answer',
};
const RECOVERED_BY: Record<RecoveredBy, string> = {
  alert_resolved: 'the alert resolved',
  probe_healthy: 'a probe succeeded',
  operator_resolved: 'an operator resolved the incident',
  timed_out: 'the wait ran out',
};

/** Seed 000's 24–48 h grace: the estimate within the policy's bounds, the longest when nobody knows. */
export function outageGraceHours(rule: Policy['processorOutage'], expectedHours?: number): number {
  if (expectedHours === undefined || !Number.isFinite(expectedHours)) return rule.graceHoursMax;
  return Math.min(rule.graceHoursMax, Math.max(rule.graceHoursMin, Math.ceil(expectedHours)));
}

export async function paymentProcessorOutageWorkflow(
  input: IncidentInput<ProcessorOutageParams>,
): Promise<IncidentOutcome> {
  const processor = input.params?.processor;
  if (processor !== 'stripe' && processor !== 'paystack') {
    throw ApplicationFailure.nonRetryable(
      `params.processor must be 'stripe' or 'paystack', got ${JSON.stringify(processor)}`,
      'InvalidIncidentParams',
    );
  }
  const incident = await openIncident(input);
  const { step, key, state } = incident;
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const outage = proxyActivities<ProcessorOutageActivities>(incidentStep(input.policy));
  const { processorOutage: rule, processorOutageChecks: checks } = input.policy;
  const name = NAMES[processor];
  const workflowId = state.workflowId;
  const timeoutMs = checks.probeTimeoutSeconds * 1000;
  const statusPage = (status: 'investigating' | 'monitoring' | 'resolved', message: string) =>
    step<'posted' | 'not_configured' | 'skipped'>(
      `status page: ${status}`,
      () =>
        incidents.postStatusPage({
          idempotencyKey: key(`status-page/${status}`),
          workflowId,
          status,
          message,
        }),
      (delivered) => delivered,
      // A status page refusing the post (4xx) waits for attention; an operator may go on without it.
      'skipped' as const,
    );
  // Seed 000 "Document all manual overrides": each one is a row in operational_overrides, named <what>:<processor>.
  const setOverride = async (what: string, value: Record<string, unknown>, reason: string) => {
    const { set } = await incidents.setOverride({
      idempotencyKey: key(`override/${what}`),
      workflowId,
      name: `${what}:${processor}`,
      value,
      reason,
      operator: BILLOPS,
    });
    return set ? `override ${what}:${processor} set` : `an override ${what}:${processor} was already active`;
  };
  const notify = <N extends TemplateName>(
    what: string,
    tenantIds: string[],
    template: N,
    vars: TenantNoticeVars<N>,
  ) => incidents.notifyTenants({ idempotencyKey: key(`notice/${what}`), tenantIds, template, vars });
  const notified = (r: { notified: number }) => `${r.notified} tenants notified`;

  await statusPage('investigating', `Payments through ${name} are failing; we are investigating`);

  // ---- Immediate actions ----
  // 1. The processor's status; 2. its API key and webhook endpoints.
  const probe = () => outage.probeProcessor({ processor, timeoutMs });
  const first = await step(`check ${name} status`, probe, (p) => p.detail);
  await step(
    'verify API key and webhook endpoints',
    () => outage.checkProcessorWebhooks({ processor, timeoutMs }),
    (w) => `API key ${KEY_VERDICT[String(first.keyAccepted)]}; ${w.detail}`,
  );

  // 3. New payments go through the backup processor, if one is configured and answers.
  const backup = await step(
    'check the backup processor',
    () => outage.probeBackupProcessor({ processor, timeoutMs }),
    (b) => b.reason,
  );
  // An outage scoped to some tenants routes and holds only theirs (db/processorRoute.ts, db/outageHolds.ts).
  const scoped =
    patched('outage-route-scoped') && input.params.tenantIds ? { tenantIds: input.params.tenantIds } : {};
  const routed = backup.healthy ? backup.backup : null;
  if (!routed) incident.skip('switch to the backup processor', backup.reason);
  else {
    const route = { from: processor, to: routed, ...scoped };
    const why = `${name} is down: new payments go to ${routed}`;
    await step(
      `switch new payments to ${NAMES[routed]}`,
      () => setOverride('processor_route', route, why),
      (d) => d,
    );
  }

  // 4. The affected accounts: in dunning on this processor, or with a payment failed on it since the outage began.
  const since = new Date(state.openedAt - checks.failedPaymentsLookbackMinutes * MINUTE_MS).toISOString();
  const scope = { processor, since, tenantIds: input.params.tenantIds };
  const affected = await step(
    'find affected accounts',
    () => outage.findOutageAffectedAccounts(scope),
    (a) =>
      `${a.tenantIds.length} tenants: ${a.dunning.workflowIds.length} in dunning (${a.dunning.source}), ` +
      `${a.failedPaymentTenantIds.length} with failed payments since ${since}`,
  );
  incident.affects(affected.tenantIds);

  // The grace (24–48 h) and, containment 1, no automated suspensions: the dunning mass action.
  const graceHours = outageGraceHours(rule, input.params.expectedHours);
  const lifecycles = affected.dunning.workflowIds;
  const reason = `${name} outage (${workflowId})`;
  const steer = (action: 'extendGrace' | 'pause' | 'resume') =>
    outage.steerOutageDunning({
      idempotencyKey: key(`dunning/${action}`),
      workflowIds: lifecycles,
      action,
      ...(action === 'extendGrace' ? { hours: graceHours } : {}),
      reason,
      operator: BILLOPS,
    });
  const reached = (r: DunningSteerResult) =>
    `${r.reached} of ${r.selected} lifecycles reached (${r.via})${r.failed ? `, ${r.failed} had ended` : ''}`;
  const noSteering = !affected.canSteerDunning
    ? 'the worker has no Temporal client to signal dunning lifecycles'
    : lifecycles.length === 0
      ? `no dunning lifecycle runs on ${name}`
      : null;
  const dunningHeld = noSteering === null && rule.stopAutomatedSuspensions;
  if (noSteering) {
    incident.skip(`place affected accounts in a ${graceHours}-hour grace`, noSteering);
    incident.skip('stop automated suspensions', noSteering);
  } else {
    const hold = { lifecycles: lifecycles.length, graceHours, suspensionsStopped: dunningHeld, ...scoped };
    await step(
      `place affected accounts in a ${graceHours}-hour grace`,
      async () => [reached(await steer('extendGrace')), await setOverride('dunning_hold', hold, reason)],
      (details) => details.join('; '),
    );
    if (dunningHeld) await step('stop automated suspensions', () => steer('pause'), reached);
    else incident.skip('stop automated suspensions', 'the policy leaves them on (processorOutage)');
  }

  // ---- Containment ----
  // 2. Manual payment acceptance.
  const manual = `${name} is down: payments are accepted by hand`;
  await step(
    'enable manual payment acceptance',
    () => setOverride('manual_payments', { accept: true, recordAs: 'manual' }, manual),
    (d) => d,
  );
  // 3. The customers hear it by email and on their dashboard.
  await step(
    'notify affected customers',
    () =>
      notify('incident', [...state.tenantsAffected], 'serviceIncidentNotice', {
        incident_summary: `${name}, our payment processor, is not processing payments`,
        customer_action: customerAction(name, routed, graceHours),
      }),
    notified,
  );
  // 4. Every manual override documented: what the overrides table holds for this incident.
  const ours = async () => (await incidents.activeOverrides()).filter((o) => o.workflowId === workflowId);
  await step('document all manual overrides', ours, (rows) => rows.map((o) => o.name).join(', ') || 'none');

  // ---- Recovery: the alert resolves, a probe answers (backing off), or an operator resolves ----
  const recoveredBy = await incident.waitForRecovery({
    probe: async () => {
      const p = await probe();
      if (!p.healthy) note(state, Date.now(), 'probe_failed', p.detail);
      return p.healthy;
    },
    firstProbeAfterMinutes: input.policy.recoveryProbe.firstAfterMinutes,
    maxProbeIntervalMinutes: input.policy.recoveryProbe.maxIntervalMinutes,
  });
  const recoveredAt = Date.now();
  const duration = durationText(state.openedAt, recoveredAt);
  await statusPage('monitoring', `${name} is answering again; we are retrying the payments that failed`);

  // Switch back (the route and every other override of this incident ends), then resume dunning.
  await step(
    `switch new payments back to ${name} and end the manual overrides`,
    async () => {
      const active = await ours();
      for (const o of active) await incidents.clearOverride({ name: o.name, workflowId, operator: BILLOPS });
      return active.map((o) => o.name);
    },
    (names) => `cleared ${names.join(', ') || 'nothing'}`,
  );
  if (dunningHeld) await step('resume dunning', () => steer('resume'), reached);

  // Retry the failed payments: the accounts affected from the start and those whose payments failed since.
  const retried = await step(
    'retry the failed payments',
    async () => {
      incident.affects((await outage.findOutageAffectedAccounts(scope)).tenantIds);
      const { invoices, due } = await outage.listOutageOpenInvoices({
        tenantIds: [...state.tenantsAffected],
      });
      state.revenueImpact = due;
      const outcomes: string[] = [];
      for (const { tenantId, invoiceId } of invoices) {
        const idempotencyKey = key(`retry-payment/${invoiceId}`);
        outcomes.push(
          (await outage.retryPaymentAfterOutage({ idempotencyKey, tenantId, invoiceId })).outcome,
        );
      }
      return { tried: outcomes.length, collected: outcomes.filter((o) => o === 'succeeded').length };
    },
    (r) => `${r.collected} of ${r.tried} collected`,
  );
  const tenantIds = [...state.tenantsAffected].sort();

  // Recovery actions 3–4: service credits for the measured impact, and the customers told.
  const credits = await step(
    'apply service credits',
    () =>
      incidents.applyServiceCredits({
        idempotencyKey: key('service-credits'),
        workflowId,
        tenantIds,
        outageMinutes: (recoveredAt - state.openedAt) / MINUTE_MS,
        rule: input.policy.serviceCredit,
        reason: `${name} outage of ${duration}`,
        operator: BILLOPS,
      }),
    (c) => `${c.credited.length} tenants credited${c.total ? `, ${money(c.total)}` : ''}`,
  );
  state.credits = credits.total;
  if (credits.credited.length > 0) {
    await step(
      'notify service credits',
      async () => {
        // One call per amount: the tenants credited the same amount share it.
        const byAmount = new Map<string, string[]>();
        for (const c of credits.credited)
          byAmount.set(money(c), [...(byAmount.get(money(c)) ?? []), c.tenantId]);
        let sent = 0;
        for (const [amount, ids] of byAmount) {
          const vars = { credit_amount: amount, outage_duration: duration };
          sent += (await notify('credit', ids, 'serviceCreditNotice', vars)).notified;
        }
        return { notified: sent };
      },
      notified,
    );
  }
  await step(
    'notify resolution',
    () =>
      notify('resolved', tenantIds, 'serviceIncidentResolved', {
        incident_summary: `${name} is processing payments again`,
        duration,
      }),
    notified,
  );
  await statusPage('resolved', `${name} payments recovered after ${duration}`);

  incident.resolveAsBillops(
    `${name} recovered (${RECOVERED_BY[recoveredBy]}) after ${duration}; ` +
      `${routed ? `new payments back from ${routed}; ` : ''}` +
      `${dunningHeld ? `${lifecycles.length} dunning lifecycles resumed; ` : ''}` +
      `${retried.collected} of ${retried.tried} failed payments collected`,
  );
  const due = state.revenueImpact ? `, ${money(state.revenueImpact)} due` : '';
  return incident.close({
    impact: `revenue/service: ${state.tenantsAffected.size} accounts could not pay through ${name} for ${duration}${due}`,
    executor: BILLOPS,
  });
}

function money(m: { amountMinor: number; currency: string }): string {
  return formatMinorUnits(m.amountMinor, m.currency);
}

function customerAction(name: string, routed: OutageProcessor | null, graceHours: number): string {
  return [
    routed ? `New payments go through ${NAMES[routed]} until ${name} is back.` : '',
    `Your account is in a ${graceHours}-hour grace period, and payments that failed will be retried automatically`,
    `once ${name} recovers. To pay now, reply to this email and we will accept your payment by hand.`,
  ]
    .join(' ')
    .trim();
}
