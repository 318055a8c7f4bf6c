// Webhook failure (seed 004 "Webhook Failures"; seed 000 "Failed webhooks: retry up to 7 days with increasing
// intervals"): rejected signatures counted and raised, processing errors replayed from the stored raw events, missed
// webhooks found at the provider and applied once, and what still fails retried, backing off, for the retry window.
import { ActivityFailure, condition, proxyActivities } from '@temporalio/workflow';
import type { IncidentActivities } from '../../activities/incidents/common';
import type {
  HandledEvent,
  ReconcileResult,
  ReplayRound,
  WebhookRecoveryActivities,
} from '../../activities/incidents/webhookFailure';
import type { PagingActivities } from '../../activities/paging';
import type { IncidentInput } from '../../domain/incident';
import { formatMinorUnits } from '../../domain/money';
import { incidentStep } from '../shared/activityOptions';
import { openIncident, type IncidentOutcome } from './frame';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../domain/vocabulary';

export interface WebhookFailureParams {
  /** Look this many hours back instead of the policy's webhookFailure.lookbackHours. */
  lookbackHours?: number | string;
}

export async function webhookFailureWorkflow(
  input: IncidentInput<WebhookFailureParams>,
): Promise<IncidentOutcome> {
  const incident = await openIncident(input);
  const { state } = incident;
  const policy = input.policy;
  const webhooks = proxyActivities<WebhookRecoveryActivities>(incidentStep(policy));
  const incidents = proxyActivities<IncidentActivities>(incidentStep(policy));
  const paging = proxyActivities<PagingActivities>(incidentStep(policy));
  // An operator's `--param lookbackHours=48` arrives as text; anything but a positive whole number is refused.
  const asked = Number(input.params?.lookbackHours ?? policy.webhookFailure.lookbackHours);
  const lookbackHours =
    Number.isSafeInteger(asked) && asked > 0 ? asked : policy.webhookFailure.lookbackHours;
  const retry = policy.webhookRetry;
  const applied: HandledEvent[] = [];
  const contacts = () =>
    (state.plan.find((l) => l.level === state.escalationLevel) ?? state.plan[0]!).contacts;
  const raise = (summary: string) =>
    paging.page({
      dedupKey: state.workflowId,
      incidentKind: input.kind,
      severity: state.severity,
      level: state.escalationLevel,
      summary: `[${state.severity}] ${summary}`,
      contacts: contacts(),
      workflowId: state.workflowId,
      action: 'trigger',
    });

  /** A step whose activity may be refused (no credentials, no Temporal client): recorded as skipped, with why. */
  async function attempt<T>(
    name: string,
    run: () => Promise<T>,
    detail: (r: T) => string,
  ): Promise<T | null> {
    try {
      return await incident.step(name, run, detail);
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      state.currentStep = null;
      incident.skip(name, err.cause?.message ?? err.message);
      return null;
    }
  }
  const tookEffect = (events: HandledEvent[]) => {
    applied.push(...events);
    incident.affects(events.flatMap((e) => (e.tenantId ? [e.tenantId] : [])));
  };

  if (lookbackHours !== asked) {
    incident.skip(
      'lookbackHours',
      `${String(input.params?.lookbackHours)} is not a number of hours: using ${lookbackHours}`,
    );
  }

  // 1. Signature failures: counted from the ingress's durable record; over the policy's threshold, raised.
  const signatures = await incident.step(
    `count signature failures in the last ${lookbackHours} hours`,
    () => webhooks.countSignatureFailures({ lookbackHours }),
    (s) => `${s.total} rejected (Stripe ${s.byProvider.stripe}, Paystack ${s.byProvider.paystack})`,
  );
  // Every later step looks back to the same instant, on the clock the events were stored with.
  const since = signatures.since;
  const signaturesRaised = signatures.total > policy.webhookFailure.raiseSignatureFailuresAbove;
  if (signaturesRaised) {
    await incident.step(
      'raise signature failures',
      () =>
        raise(
          `${signatures.total} webhook deliveries failed signature verification since ${since}: check ` +
            'STRIPE_WEBHOOK_SECRET / PAYSTACK_WEBHOOK_SECRET (whitespace included) and regenerate a compromised secret',
        ),
      () => `paged ${contacts().join(', ')}: ${signatures.total} rejected, last at ${signatures.lastAt}`,
    );
  }

  // 2. Processing errors: every failed event replayed once from its stored raw body.
  const first = await attempt(
    'replay failed events from their stored raw bodies',
    () => webhooks.replayFailedWebhooks({ since, policy }),
    (r) => describeRound(r, retry.maxDays),
  );
  if (first) tookEffect(first.applied);
  let failing = first?.failing ?? 0;

  // 3. Missed webhooks: what the provider sent (or charged) that our endpoint never stored, applied once.
  const reconciled: ReconcileResult[] = [];
  for (const [processor, name, run] of [
    ['stripe', 'reconcile with Stripe: events our endpoint never stored', webhooks.reconcileStripeEvents],
    [
      'paystack',
      'reconcile with Paystack: verify pending transactions',
      webhooks.reconcilePaystackTransactions,
    ],
  ] as const) {
    const found = await attempt(
      name,
      () => run({ since, policy }),
      (r) => describeReconcile(r),
    );
    if (!found) continue;
    if (!found.configured) incident.skip(name, `${processor} is not configured`);
    reconciled.push(found);
    tookEffect(found.applied);
    failing += found.failed.length;
  }
  const missed = reconciled.reduce((n, r) => n + r.applied.length + r.failed.length, 0);

  // Customers hear about it: the status page while anything was wrong, and each recovered payment is confirmed.
  const anythingWrong = failing > 0 || applied.length > 0 || signaturesRaised;
  if (anythingWrong) {
    await incident.step(
      'post to the status page',
      () =>
        incidents.postStatusPage({
          idempotencyKey: incident.key('status-page/identified'),
          workflowId: state.workflowId,
          status: 'identified',
          message: 'Payment confirmations delayed: failed payment notifications are being retried',
        }),
      (delivered) => delivered,
    );
  }
  const confirmed = new Set<string>();
  const confirmPayments = async () => {
    // A running dunning lifecycle sends its own recovery notice; the others get the runbook's confirmation.
    const unconfirmed = applied.filter(
      (e) => e.payment && e.tenantId && !e.workflowId && !confirmed.has(`${e.provider}/${e.eventKey}`),
    );
    for (const e of unconfirmed) {
      await incidents.notifyTenants({
        idempotencyKey: incident.key(`payment-confirmation/${e.provider}/${e.eventKey}`),
        tenantIds: [e.tenantId!],
        template: 'paymentConfirmation',
        vars: {
          reference: e.payment!.reference,
          amount_paid: formatMinorUnits(e.payment!.amountMinor, e.payment!.currency),
        },
      });
      confirmed.add(`${e.provider}/${e.eventKey}`);
    }
    return unconfirmed.length;
  };
  if (applied.some((e) => e.payment)) {
    await incident.step('confirm recovered payments to customers', confirmPayments, (n) => `${n} confirmed`);
  }

  // 4. What still fails: retried with increasing intervals for up to the retry window, from the opening. An alert
  // resolving (the failure rate is back to normal) does not end this: the backlog still needs its retries.
  const deadline = () => state.openedAt + retry.maxDays * DAY_MS + state.pausedMs;
  let interval = retry.firstRetryMinutes * MINUTE_MS;
  let round = 1;
  while (failing > 0 && !state.resolution) {
    const left = deadline() - Date.now();
    if (left <= 0) break;
    if (await condition(() => state.resolution !== null, Math.min(interval, left))) break;
    round++;
    const next = await attempt(
      `retry round ${round}`,
      () => webhooks.replayFailedWebhooks({ since, policy }),
      (r) => describeRound(r, retry.maxDays),
    );
    if (next) {
      tookEffect(next.applied);
      failing = next.failing;
      if (next.applied.some((e) => e.payment)) await confirmPayments();
    }
    interval = Math.min(retry.maxRetryIntervalHours * HOUR_MS, interval * 2);
  }
  if (failing > 0 && !state.resolution) {
    const why = `${failing} events still failing after ${retry.maxDays} days of retries: settle them by hand (the provider's dashboard, then billops reconcile) and resolve`;
    incident.skip('retry failed events', why);
    await raise(why);
    await incident.waitForResolution();
  }

  // 5. Nothing fails any more (or a person resolved it): the record, the status page, the ending.
  const summary =
    `${applied.length} events applied (${missed} missed at the provider), ${signatures.total} signatures rejected` +
    (round > 1 ? `, ${round - 1} retry rounds` : '');
  incident.resolveAsBillops(`no webhook event fails any more: ${summary}`);
  if (anythingWrong) {
    await incidents.postStatusPage({
      idempotencyKey: incident.key('status-page/resolved'),
      workflowId: state.workflowId,
      status: 'resolved',
      message: 'Payment confirmations are up to date again',
    });
  }
  incident.skip(
    'service credits',
    'a late webhook delays billing records, not the service: no credit rule applies',
  );
  return incident.close({ impact: `webhooks: ${summary}`, executor: 'billops' });
}

function describeRound(r: ReplayRound, maxDays: number): string {
  const failing = r.failingEvents.map((e) => `${e.eventKey} (${e.reason ?? 'failed'})`).slice(0, 3);
  return (
    `${r.ok} applied, ${r.failing} still failing, ${r.expired} older than ${maxDays} days, ${r.skipped} taken by a delivery` +
    (failing.length > 0 ? `; failing: ${failing.join('; ')}` : '')
  );
}

function describeReconcile(r: ReconcileResult): string {
  if (!r.configured) return 'not configured';
  const pending =
    r.notSuccessful.length > 0 ? `, ${r.notSuccessful.length} not successful at the provider` : '';
  return `${r.checked} checked, ${r.applied.length} missed and applied, ${r.failed.length} missed and failing${pending}`;
}
