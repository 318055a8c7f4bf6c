// POST /alerts/alertmanager: Alertmanager's webhook (version 4) behind a bearer token; each firing alert opens or reaches
// the incident `incident-<kind>-<fingerprint>`, each resolved alert signals `alertResolved` to it.
import { createHash, timingSafeEqual } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { parseConfig, type BillopsConfig } from '../../config/env';
import { incidentWorkflowId } from '../../domain/incident';
import type { IncidentKind, Policy } from '../../domain/policy';
import { alertFiredSignal, alertResolvedSignal } from '../../workflows/definitions';
import { loadAlertRoutes, routeAlert, type AlertRouting } from '../../config/alertRouting';
import { incidentKey, startIncident } from '../../temporal/incidents';
import {
  alertFingerprint,
  alertmanagerPayloadSchema,
  describePayloadIssues,
  incidentInputForAlert,
  labelsProblem,
  paramsProblem,
  payloadJsonSchema,
  type AlertmanagerAlert,
  type AlertmanagerPayload,
} from './payload';

export const ALERTS_PATH = '/alerts/alertmanager';
/** Alertmanager sends every alert of a group in one request (`max_alerts: 0`); a few hundred fit in 1 MiB. */
export const DEFAULT_ALERTS_BODY_LIMIT = 1024 * 1024;

export interface AlertSettings {
  taskQueue: string;
  /** Snapshotted into every incident opened, like the webhooks' dunning lifecycles. */
  policy: Policy;
  /** ALERTMANAGER_TOKEN; without it the route answers 503 saying so. */
  token?: string;
  routing: AlertRouting;
  /** How long the Temporal calls of one notification may take before it is answered 500; default 10 s. */
  temporalTimeoutMs?: number;
  /** Bytes per notification; a larger one is answered 413. */
  maxBodyBytes?: number;
}

export interface AlertRouteDependencies {
  settings: AlertSettings | undefined;
  client: Client;
  /** Where billops_alert_notifications_total and billops_alerts_received_total are counted. */
  registry?: Registry;
}

/** The settings for the environment's configuration; a bad BILLOPS_ALERT_ROUTES file throws AlertRoutesError. */
export function alertSettingsFromConfig(config: BillopsConfig, policy: Policy): AlertSettings {
  return {
    taskQueue: config.taskQueue,
    policy,
    token: config.alertmanagerToken,
    routing: loadAlertRoutes(config.alertRoutesFile),
  };
}

/**
 * For an ingress built without alert settings (runtime/start.ts, ingress/main.ts): the webhooks' task queue and
 * policy with ALERTMANAGER_TOKEN and BILLOPS_ALERT_ROUTES from the environment those processes already validated.
 */
export function alertSettingsFromEnvironment(
  webhooks: { taskQueue: string; policy: Policy } | undefined,
  env: Record<string, string | undefined> = process.env,
): AlertSettings | undefined {
  const parsed = parseConfig(env);
  if (!webhooks || !parsed.ok) return undefined;
  return { ...alertSettingsFromConfig(parsed.config, webhooks.policy), taskQueue: webhooks.taskQueue };
}

// ---- What each alert became ----

export type AlertOutcome = 'incident' | 'alert_resolved' | 'no_incident' | 'ignored' | 'failed';

export interface AlertResult {
  alertname: string;
  fingerprint: string;
  status: 'firing' | 'resolved';
  outcome: AlertOutcome;
  workflowId?: string;
  reason?: string;
}

/**
 * The shipped rules come in pairs: past the critical threshold the warning rule fires too. A critical alert whose
 * warning twin already has a running incident joins it (alertFired) rather than opening a second incident of the same
 * kind, which would page and notify tenants twice; the warning's resolution, which cannot come before the critical's,
 * ends that incident. Returns the twin's workflow id when joined.
 */
async function joinWarningTwin(
  client: Client,
  alert: AlertmanagerAlert,
  kind: IncidentKind,
): Promise<string | undefined> {
  if (alert.labels.severity !== 'critical') return undefined;
  const twinId = incidentWorkflowId(kind, alertFingerprint({ ...alert.labels, severity: 'warning' }));
  const twin = client.workflow.getHandle(twinId);
  try {
    if ((await twin.describe()).status.name !== 'RUNNING') return undefined;
    await twin.signal(alertFiredSignal, { fingerprint: alert.fingerprint, startsAt: alert.startsAt });
    return twinId;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

async function handleAlert(
  settings: AlertSettings,
  client: Client,
  alert: AlertmanagerAlert,
): Promise<AlertResult> {
  const base = {
    alertname: alert.labels.alertname!,
    fingerprint: alert.fingerprint,
    status: alert.status,
  };
  const tooLarge = labelsProblem(alert.labels);
  if (tooLarge) return { ...base, outcome: 'ignored', reason: tooLarge };
  const decision = routeAlert(settings.routing, alert.labels);
  if ('ignored' in decision) return { ...base, outcome: 'ignored', reason: decision.ignored };
  const { kind } = decision.route;
  if (alert.status === 'firing') {
    const twinId = await joinWarningTwin(client, alert, kind);
    if (twinId) {
      return {
        ...base,
        outcome: 'incident',
        workflowId: twinId,
        reason: 'critical twin: joined the warning incident',
      };
    }
    const input = incidentInputForAlert(alert, decision.route, settings.policy);
    const problem = paramsProblem(kind, input.params);
    if (problem) return { ...base, outcome: 'ignored', reason: problem };
    // Signal-with-start: the first notification starts the incident, a repeated or re-fired one joins it.
    const handle = await startIncident(client, settings.taskQueue, input);
    return { ...base, outcome: 'incident', workflowId: handle.workflowId };
  }
  const workflowId = incidentWorkflowId(kind, incidentKey(alert.fingerprint));
  try {
    await client.workflow
      .getHandle(workflowId)
      .signal(alertResolvedSignal, { endsAt: alert.endsAt, fingerprint: alert.fingerprint });
    return { ...base, outcome: 'alert_resolved', workflowId };
  } catch (err) {
    // Resolved before any firing notification reached us, or the incident already closed: nothing to tell.
    if (err instanceof WorkflowNotFoundError) {
      return { ...base, outcome: 'no_incident', workflowId, reason: `no running incident ${workflowId}` };
    }
    throw err;
  }
}

// ---- The route ----

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(sha256(presented), sha256(expected));
}

function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')?.[1];
}

function countersFor(registry: Registry | undefined) {
  const counter = (name: string, help: string, label: string): Counter<string> | undefined => {
    if (!registry) return undefined;
    const existing = registry.getSingleMetric(name);
    if (existing) return existing as Counter<string>;
    return new Counter({ name, help, labelNames: [label], registers: [registry] });
  };
  return {
    notifications: counter(
      'billops_alert_notifications_total',
      'Alertmanager notifications received on POST /alerts/alertmanager, by HTTP status answered.',
      'code',
    ),
    alerts: counter(
      'billops_alerts_received_total',
      'Alerts in accepted notifications, by outcome (incident, alert_resolved, no_incident, ignored, failed).',
      'outcome',
    ),
  };
}

function problem(reply: FastifyReply, statusCode: number, error: string, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, error, message });
}

export function registerAlertRoutes(app: FastifyInstance, deps: AlertRouteDependencies): void {
  const { settings } = deps;
  const counters = countersFor(deps.registry);

  void app.register(async (scope) => {
    scope.post<{ Body: AlertmanagerPayload }>(ALERTS_PATH, {
      bodyLimit: settings?.maxBodyBytes ?? DEFAULT_ALERTS_BODY_LIMIT,
      schema: {
        summary:
          "Alertmanager's webhook (version 4): firing alerts open incidents, resolved ones signal them",
        security: [{ bearer: [] }],
        body: payloadJsonSchema,
      },
      // zod validates (STYLE: edges validate); the JSON schema above only describes the body for /docs/json.
      validatorCompiler: () => (data: unknown) => {
        const parsed = alertmanagerPayloadSchema.safeParse(data);
        return parsed.success
          ? { value: parsed.data }
          : { error: new Error(describePayloadIssues(parsed.error)) };
      },
      // Before the body is read: an unauthenticated caller learns nothing about the payload rules or size limit.
      onRequest: async (request: FastifyRequest, reply: FastifyReply) => {
        if (settings?.token === undefined) {
          return problem(
            reply,
            503,
            'Service Unavailable',
            'Alertmanager alerts are not configured: set ALERTMANAGER_TOKEN, and the same token in the ' +
              'Authorization credentials of the Alertmanager webhook receiver (deploy/alertmanager.yml)',
          );
        }
        const presented = bearerToken(request.headers.authorization);
        if (presented === undefined || !tokenMatches(presented, settings.token)) {
          reply.header('WWW-Authenticate', 'Bearer realm="billops alerts"');
          return problem(
            reply,
            401,
            'Unauthorized',
            presented === undefined
              ? 'send Authorization: Bearer <ALERTMANAGER_TOKEN>'
              : 'the bearer token is not ALERTMANAGER_TOKEN',
          );
        }
      },
      onResponse: async (_request, reply) => {
        counters.notifications?.inc({ code: String(reply.statusCode) });
      },
      handler: async (request, reply) => {
        const active = settings!;
        const timeoutMs = active.temporalTimeoutMs ?? 10_000;
        const settled = await Promise.allSettled(
          request.body.alerts.map((alert) =>
            deps.client.connection.withDeadline(Date.now() + timeoutMs, () =>
              handleAlert(active, deps.client, alert),
            ),
          ),
        );
        const results = settled.map((s, i): AlertResult => {
          if (s.status === 'fulfilled') return s.value;
          const alert = request.body.alerts[i]!;
          const reason =
            s.reason instanceof Error ? `${s.reason.name}: ${s.reason.message}` : String(s.reason);
          request.log.error(
            { alertname: alert.labels.alertname, fingerprint: alert.fingerprint, reason },
            'an alert could not be handed to Temporal',
          );
          return {
            alertname: alert.labels.alertname!,
            fingerprint: alert.fingerprint,
            status: alert.status,
            outcome: 'failed',
            reason,
          };
        });
        for (const r of results) {
          counters.alerts?.inc({ outcome: r.outcome });
          if (r.outcome === 'ignored')
            request.log.warn(
              { alertname: r.alertname, fingerprint: r.fingerprint, reason: r.reason },
              'alert ignored',
            );
        }
        const failed = results.filter((r) => r.outcome === 'failed').length;
        if (failed > 0) {
          // Alertmanager retries a 5xx; a repeated firing alert joins its incident and alertResolved is idempotent.
          return reply.code(500).send({
            statusCode: 500,
            error: 'Internal Server Error',
            message: `${failed} of ${results.length} alerts could not be handed to Temporal; send the notification again`,
            results,
          });
        }
        return reply.code(200).send({ received: results.length, results });
      },
    });
  });
}
