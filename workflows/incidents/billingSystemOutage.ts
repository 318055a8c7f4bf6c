// Billing system outage (seed 000 §3, seed 004 "Full Billing System Recovery"), also serving billing_dashboard_down:
// check health, tell customers, scale up, go read-only when writes fail (critical operations queue), price from the
// cache while the database is away, fail over only when a person approves; on recovery replay the queue and close.
import { proxyActivities } from '@temporalio/workflow';
import type { BillingHealthActivities, DatabaseHealth } from '../../activities/incidents/billingSystemOutage';
import type {
  OutageHookAction,
  OutageHookActivities,
} from '../../activities/incidents/billingSystemOutage/hooks';
import type { OperationQueueActivities } from '../../activities/incidents/billingSystemOutage/operationQueue';
import type { PricingCacheActivities } from '../../activities/incidents/billingSystemOutage/pricingCache';
import type { IncidentActivities } from '../../activities/incidents/common';
import { durationText, type IncidentInput } from '../../domain/incident';
import { incidentStep, outageHook, queueReplay } from '../shared/activityOptions';
import { BILLOPS, openIncident, type IncidentOutcome } from './frame';

export interface BillingSystemOutageParams {
  /** What was seen, in customers' words for the status page (an alert's summary, an operator's note). */
  symptom?: string;
}

const CUSTOMER_ACTION =
  'Nothing: payments and account changes made meanwhile are queued and completed once billing recovers.';

export async function billingSystemOutageWorkflow(
  input: IncidentInput<BillingSystemOutageParams>,
): Promise<IncidentOutcome> {
  const incident = await openIncident(input);
  const { step } = incident;
  const rules = input.policy.billingSystemOutage;
  const workflowId = incident.state.workflowId;
  const symptom = input.params?.symptom ?? input.summary;
  const billingHealth = proxyActivities<BillingHealthActivities>(incidentStep(input.policy));
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const pricingCache = proxyActivities<PricingCacheActivities>(incidentStep(input.policy));
  const operationQueue = proxyActivities<OperationQueueActivities>(incidentStep(input.policy));
  // The replay charges and writes one operation after another; a hook may take minutes, a failover never repeats blindly.
  const replay = proxyActivities<OperationQueueActivities>(queueReplay(input.policy));
  const hooks = proxyActivities<OutageHookActivities>(incidentStep(input.policy));
  const hookRun = proxyActivities<OutageHookActivities>(outageHook(input.policy));
  const healthRequest = {
    httpTimeoutMs: input.policy.monitoring.billingApiLatencyMs.criticalAbove,
    databaseTimeoutMs: rules.databaseTimeoutMs,
    maxReplicationLagSeconds: rules.maxReplicationLagSeconds,
  };
  const checkHealth = () => billingHealth.checkBillingHealth(healthRequest);
  const statusPage = (status: 'investigating' | 'identified' | 'resolved', message: string) =>
    step<'posted' | 'not_configured' | 'skipped'>(
      `post status page: ${status}`,
      () =>
        incidents.postStatusPage({
          idempotencyKey: incident.key(`status/${status}`),
          workflowId,
          status,
          message,
        }),
      (delivered) => delivered,
      // A status page refusing the post (4xx) waits for attention; an operator may go on without it.
      'skipped' as const,
    );
  const runHook = async (action: OutageHookAction, name: string) => {
    const result = await step(
      name,
      () =>
        hookRun
          .runOutageHook({
            action,
            idempotencyKey: incident.key(`hook/${action}`),
            incident: {
              workflowId,
              kind: input.kind,
              severity: incident.state.severity,
              summary: input.summary,
            },
            timeoutSeconds: rules.hookTimeoutSeconds,
          })
          .then(
            (r) => ({ ok: r.ok, detail: `${r.via}: ${r.detail}` }),
            (err: Error) => ({
              ok: false,
              detail: `failed: ${err.cause instanceof Error ? err.cause.message : err.message}`,
            }),
          ),
      (r) => r.detail,
    );
    return result.ok;
  };

  // Immediate actions 1–2: the health dashboards, database connectivity and replication lag.
  const health = await step('check system health', checkHealth, (h) => h.summary);
  const db = health.database;
  // Copy the price list while the database still answers: containment 2 serves it if the database goes.
  if (db.reachable) await refreshPricingCache('refresh the pricing cache');

  // Seed 004 "Customer Communication": the status page, and the customers already known to be affected.
  await statusPage('investigating', `Billing: ${symptom}. We are investigating.`);
  const named = input.tenantIds ?? [];
  if (named.length > 0) {
    await step(
      'notify affected customers',
      () =>
        incidents.notifyTenants({
          idempotencyKey: incident.key('notice'),
          tenantIds: named,
          template: 'serviceIncidentNotice',
          vars: { incident_summary: symptom, customer_action: CUSTOMER_ACTION },
        }),
      (r) => `${r.notified} notified by email and dashboard`,
    );
  } else {
    incident.skip(
      'notify affected customers',
      'no tenant named; those whose payments or account changes are queued are told when they are replayed',
    );
  }

  // Immediate action 3: scale up billing service replicas, without asking.
  const configured = await hooks.outageHooks();
  if (configured.scale_up) await runHook('scale_up', 'scale up billing service replicas');
  else
    incident.skip('scale up billing service replicas', 'no scale-up hook configured (BILLOPS_SCALE_UP_HOOK)');

  // Immediate action 4, containment 1: read-only mode when writes fail; payments and suspensions queue meanwhile.
  let readOnly = false;
  if (db.reachable && !db.writable) {
    const mode = await step(
      'enable read-only mode and queue critical operations',
      () =>
        operationQueue.enterReadOnlyMode({
          idempotencyKey: incident.key('read-only'),
          workflowId,
          reason: `billing writes failing: ${db.detail}`,
          operator: BILLOPS,
        }),
      (m) =>
        !m.readOnly
          ? m.reason
          : m.alreadySet
            ? `already read-only under ${m.setBy ?? 'another incident'}, which replays the queue`
            : 'billing_read_only set: payments and suspensions are queued',
    );
    readOnly = mode.readOnly && !mode.alreadySet;
  } else {
    incident.skip(
      'enable read-only mode',
      db.reachable ? 'writes go through' : `the database is unreachable: ${db.detail}`,
    );
  }

  // Containment 2: cached pricing while the database is unavailable.
  if (!db.reachable) {
    await step(
      'serve prices from the pricing cache',
      () => pricingCache.pricingCacheStatus(),
      (c) =>
        c.takenAt
          ? `prices come from the snapshot of ${c.takenAt} (${c.rates} rates)`
          : 'no snapshot was ever taken: prices cannot be served until the database answers',
    );
  } else {
    incident.skip('use cached pricing', 'the database answers');
  }

  // Containment 3: manual failover to the backup region, only when a person approves it.
  if (!db.reachable || !db.writable) {
    if (!configured.failover) {
      incident.skip(
        'failover',
        'no failover hook configured (BILLOPS_FAILOVER_HOOK): fail over by hand if needed',
      );
    } else {
      const approval = await incident.approval('failover', failoverQuestion(db));
      if (approval.approved) await runHook('failover', 'fail over to the backup region');
      else
        incident.skip(
          'failover',
          `not approved by ${approval.operator}${approval.reason ? `: ${approval.reason}` : ''}`,
        );
    }
  } else {
    incident.skip('failover', 'the database is reachable and takes writes');
  }
  await statusPage('identified', identifiedMessage(db, readOnly));

  // Until the health probe passes (backing off), the alert resolves, or an operator resolves it.
  const recoveredBy = await incident.waitForRecovery({
    probe: async () => (await checkHealth()).healthy,
    firstProbeAfterMinutes: input.policy.recoveryProbe.firstAfterMinutes,
    maxProbeIntervalMinutes: input.policy.recoveryProbe.maxIntervalMinutes,
    maxMinutes: rules.recoveryWaitHours * 60,
  });
  if (recoveredBy === 'timed_out') {
    incident.skip('wait for recovery', `still unhealthy after ${rules.recoveryWaitHours} hours`);
    await incident.waitForResolution();
  }

  // Recovery 5 "System Health", then the queue: replayed in order, once each, before billing takes writes again.
  const after = await step('verify system health', checkHealth, (h) => h.summary);
  let replayed = { replayed: 0, failed: 0, tenants: 0 };
  if (readOnly) {
    const result = await step(
      'replay queued critical operations and leave read-only mode',
      () => replay.leaveReadOnlyMode({ workflowId, operator: BILLOPS }),
      (r) =>
        [
          `${r.replayed} replayed, ${r.failed} failed${r.cleared ? '; billing_read_only cleared' : ''}`,
          ...r.operations.map((o) => `#${o.id} ${o.activity} ${o.tenantId ?? ''}: ${o.detail}`),
        ].join('; '),
    );
    incident.affects(result.tenantIds);
    replayed = { replayed: result.replayed, failed: result.failed, tenants: result.tenantIds.length };
  } else {
    incident.skip('replay queued critical operations', 'billing never went read-only under this incident');
  }
  if (after.database.reachable) await refreshPricingCache('refresh the pricing cache after recovery');

  // Seed 004 "Customer Communication" again, and seed 000 "Proactive outreach" to everyone affected.
  const lasted = durationText(incident.state.openedAt, Date.now());
  await statusPage('resolved', `Billing: ${symptom}. Resolved; billing is working normally again.`);
  const affected = [...incident.state.tenantsAffected];
  if (affected.length > 0) {
    await step(
      'tell affected customers it is resolved',
      () =>
        incidents.notifyTenants({
          idempotencyKey: incident.key('resolved'),
          tenantIds: affected,
          template: 'serviceIncidentResolved',
          vars: { incident_summary: symptom, duration: lasted },
        }),
      (r) => `${r.notified} notified by email and dashboard`,
    );
  }

  incident.resolveAsBillops(
    `recovered (${recoveredBy.replace('_', ' ')}); ${readOnly ? `read-only mode lifted after ${replayed.replayed} queued operations replayed (${replayed.failed} failed)` : 'billing never went read-only'}`,
  );
  return incident.close({
    impact: [
      `service: billing system unhealthy for ${lasted}`,
      readOnly
        ? `read-only with ${replayed.replayed + replayed.failed} critical operations queued for ${replayed.tenants} tenants`
        : null,
      !db.reachable ? 'database unreachable; prices served from the cache' : null,
    ]
      .filter(Boolean)
      .join('; '),
    executor: 'billops',
  });

  async function refreshPricingCache(name: string): Promise<void> {
    await step(
      name,
      () => pricingCache.refreshPricingCache(),
      (c) => `${c.rates} rates as of ${c.takenAt}`,
    );
  }
}

function failoverQuestion(db: DatabaseHealth): string {
  const why = db.reachable ? `writes fail (${db.detail})` : `the database is unreachable (${db.detail})`;
  return `Fail billing over to the backup region? ${why}. Approve to run the failover hook.`;
}

function identifiedMessage(db: DatabaseHealth, readOnly: boolean): string {
  if (readOnly) {
    return 'Billing: we identified the problem. Billing is read-only: payments and account changes are queued and will complete once service is restored.';
  }
  if (!db.reachable)
    return 'Billing: we identified the problem and are restoring the billing database; prices shown come from a recent copy.';
  return 'Billing: we identified the problem and are restoring the billing service.';
}
