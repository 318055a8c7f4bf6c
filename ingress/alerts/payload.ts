// The Alertmanager webhook notification (version 4): its schema, and how one alert becomes the input of the incident
// it opens (kind, key, summary, params) and the fingerprint Alertmanager gives a label set.
import { alertFingerprint } from '../../domain/alertFingerprint';
import { z } from 'zod';
import type { IncidentInput } from '../../domain/incident';
import type { IncidentKind, Policy } from '../../domain/policy';
import type { AlertRoute } from '../../config/alertRouting';
import { storableText } from '../../db/storable';

// ---- The notification (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config) ----

/**
 * Labels and annotations travel into workflow inputs, search attributes and PostgreSQL: a NUL or a lone surrogate
 * (which PostgreSQL text refuses and a protobuf string cannot carry) reads as U+FFFD.
 */
const labelSet = z
  .record(z.string(), z.string())
  .transform((set) =>
    Object.fromEntries(Object.entries(set).map(([name, value]) => [storableText(name), storableText(value)])),
  );
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
  version: z.literal('4', { error: 'must be "4" (Alertmanager webhook version 4)' }),
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

export type AlertmanagerPayload = z.output<typeof alertmanagerPayloadSchema>;
export type AlertmanagerAlert = AlertmanagerPayload['alerts'][number];

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

/** The same shape for /docs/json; the zod schema above is what validates. */
export const payloadJsonSchema = {
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

/** Why a body is not a notification, in one line: the first five issues. */
export function describePayloadIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : '';
  return `not an Alertmanager webhook notification (version 4): ${shown.join('; ')}${more}`;
}

// ---- What an alert becomes ----

/** Longest label name taken: Prometheus's own are short identifiers. */
export const MAX_LABEL_NAME_BYTES = 128;
/** Longest label value taken: a tenant label becomes a search attribute, which Temporal keeps under 2 KiB. */
export const MAX_LABEL_VALUE_BYTES = 1024;

/** Why an alert's labels are too large to act on, or null; the alert is then answered ignored with this reason. */
export function labelsProblem(labels: Record<string, string>): string | null {
  for (const [name, value] of Object.entries(labels)) {
    const nameBytes = Buffer.byteLength(name, 'utf8');
    if (nameBytes > MAX_LABEL_NAME_BYTES) {
      return (
        `a label name of ${nameBytes} bytes (${name.slice(0, 32)}...): billops takes label names of at most ` +
        `${MAX_LABEL_NAME_BYTES} bytes; fix the alerting rule`
      );
    }
    const valueBytes = Buffer.byteLength(value, 'utf8');
    if (valueBytes > MAX_LABEL_VALUE_BYTES) {
      return (
        `label ${name} is ${valueBytes} bytes long: billops takes label values of at most ` +
        `${MAX_LABEL_VALUE_BYTES} bytes; fix the alerting rule (long text belongs in an annotation)`
      );
    }
  }
  return null;
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
export function paramsProblem(kind: IncidentKind, params: Record<string, unknown>): string | null {
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

export { alertFingerprint };
