// POST /alerts/alertmanager: Alertmanager's webhook (version 4) behind a bearer token; each firing alert opens or reaches
// the incident `incident-<kind>-<fingerprint>`, each resolved alert signals `alertResolved` to it.
import { createHash, timingSafeEqual } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import { parseConfig, type BillopsConfig } from '../../config/env';
import { incidentWorkflowId, type IncidentInput } from '../../domain/incident';
import type { IncidentKind, Policy } from '../../domain/policy';
import { alertFiredSignal, alertResolvedSignal } from '../../workflows/definitions';
import { loadAlertRoutes, routeAlert, type AlertRoute, type AlertRouting } from '../../config/alertRouting';
import { incidentKey, startIncident } from '../../temporal/incidents';

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

// ---- The notification (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config) ----

const labelSet = z.record(z.string(), z.string());
const timestamp = z.string().datetime({ offset: true, message: 'must be an RFC 3339 timestamp' });

const alertSchema = z.object({
  status: z.enum(['firing', 'resolved']),
  labels: labelSet.refine((l) => (l.alertname ?? '').trim() !== '', 'must carry an alertname'),
  annotations: labelSet.default({}),
  startsAt: timestamp,
  endsAt: timestamp,
  generatorURL: z.string().optional(),
  // Alertmanager's are 16 hex digits; the workflow id takes it as it is, so nothing that would need escaping.
  fingerprint: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 letters, digits, ".", "_", ":" or "-"'),
});

export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4', { errorMap: () => ({ message: 'must be "4" (Alertmanager webhook version 4)' }) }),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupLabels: labelSet.optional(),
  commonLabels: labelSet.optional(),
  commonAnnotations: labelSet.optional(),
  externalURL: z.string().optional(),
  alerts: z.array(alertSchema),
});

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;
export type AlertmanagerAlert = AlertmanagerPayload['alerts'][number];

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

/** The same shape for /docs/json; the zod schema above is what validates. */
const payloadJsonSchema = {
  type: 'object',
  required: ['version', 'groupKey', 'status', 'receiver', 'alerts'],
  properties: {
    version: { type: 'string', enum: ['4'] },
    groupKey: { type: 'string' },
    truncatedAlerts: { type: 'integer', minimum: 0 },
    status: { type: 'string', enum: ['firing', 'resolved'] },
    receiver: { type: 'string' },
    groupLabels: stringMap,
    commonLabels: stringMap,
    commonAnnotations: stringMap,
    externalURL: { type: 'string' },
    alerts: {
      type: 'array',
      items: {
        type: 'object',
        required: ['status', 'labels', 'startsAt', 'endsAt', 'fingerprint'],
        properties: {
          status: { type: 'string', enum: ['firing', 'resolved'] },
          labels: { ...stringMap, required: ['alertname'] },
          annotations: stringMap,
          startsAt: { type: 'string', format: 'date-time' },
          endsAt: { type: 'string', format: 'date-time' },
          generatorURL: { type: 'string' },
          fingerprint: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
        },
      },
    },
  },
} as const;

function describeIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : '';
  return `not an Alertmanager webhook notification (version 4): ${shown.join('; ')}${more}`;
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

const PROCESSORS = ['stripe', 'paystack'] as const;

const USAGE_KINDS: readonly IncidentKind[] = ['usage_metering_failure', 'usage_data_corruption'];

/**
 * The workflow params an alert supplies, over the route's fixed ones: the processor (or webhook provider) and tenant
 * from the labels the shipped rules carry; for a usage incident, the window in doubt (from the alert's start to now)
 * and its meter.
 */
function paramsFor(alert: AlertmanagerAlert, route: AlertRoute, now: number): Record<string, unknown> {
  const { labels } = alert;
  const processor = PROCESSORS.find((p) => p === (labels.processor ?? labels.provider));
  const tenantId = labels.tenant_id ?? labels.tenant;
  const usage = USAGE_KINDS.includes(route.kind);
  return {
    ...route.params,
    ...(processor ? { processor } : {}),
    ...(labels.provider ? { provider: labels.provider } : {}),
    ...(tenantId ? { tenantId } : {}),
    ...(usage && route.params?.from === undefined
      ? { from: alert.startsAt, to: new Date(now).toISOString() }
      : {}),
    ...(usage && labels.meter ? { meters: [labels.meter] } : {}),
  };
}

/** Why the kind's workflow would refuse these params at once, or null: better said in the answer than as a failed run. */
function paramsProblem(kind: IncidentKind, params: Record<string, unknown>): string | null {
  if (kind === 'payment_processor_outage' && params.processor === undefined) {
    return (
      'a payment processor outage needs its processor: the alert has no processor label (stripe or paystack) and ' +
      'its route no params.processor (BILLOPS_ALERT_ROUTES)'
    );
  }
  return null;
}

export function incidentInputForAlert(
  alert: AlertmanagerAlert,
  route: AlertRoute,
  policy: Policy,
  now = Date.now(),
): IncidentInput<Record<string, unknown>> {
  const alertname = alert.labels.alertname!;
  const params = paramsFor(alert, route, now);
  const tenantId = typeof params.tenantId === 'string' ? params.tenantId : undefined;
  const where = alert.labels.processor ?? alert.labels.provider;
  const summary = alert.annotations.summary?.trim() || alertname;
  return {
    kind: route.kind,
    key: alert.fingerprint,
    summary: where && !summary.includes(where) ? `${summary} (${where})` : summary,
    source: 'alertmanager',
    openedBy: 'alertmanager',
    ...(route.severity ? { severity: route.severity } : {}),
    ...(tenantId ? { tenantIds: [tenantId] } : {}),
    alert: { name: alertname, fingerprint: alert.fingerprint, labels: alert.labels },
    params,
    policy,
  };
}

/**
 * Alertmanager's fingerprint of a label set (prometheus/common `LabelSet.Fingerprint`): FNV-1a 64 over the sorted
 * label names and values, each followed by a 0xff byte, as 16 hex digits.
 */
export function alertFingerprint(labels: Record<string, string>): string {
  const mask = 0xffffffffffffffffn;
  let hash = 0xcbf29ce484222325n;
  const add = (bytes: Iterable<number>) => {
    for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * 0x100000001b3n) & mask;
  };
  for (const name of Object.keys(labels).sort()) {
    add(Buffer.from(name, 'utf8'));
    add([0xff]);
    add(Buffer.from(labels[name] ?? '', 'utf8'));
    add([0xff]);
  }
  return hash.toString(16).padStart(16, '0');
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
        return parsed.success ? { value: parsed.data } : { error: new Error(describeIssues(parsed.error)) };
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
