// Alertmanager notifications (webhook version 4) for the shipped alert rules, as `billops trigger <RuleName>` sends
// them: the rule's labels (deploy/prometheus/alerts.yml), its summary, and Alertmanager's fingerprint of the label set.
import { alertFingerprint } from '../domain/alertFingerprint';
import { DEFAULT_ALERT_ROUTES } from '../config/alertRouting';

export type AlertSeverity = 'warning' | 'critical';

/** What each shipped rule groups by (its one extra label) and its summaries, as deploy/prometheus/alerts.yml has them. */
const RULES: Record<string, { by?: 'processor' | 'provider'; summary: Record<AlertSeverity, string> }> = {
  PaymentSuccessRateLow: {
    by: 'processor',
    summary: { warning: 'Payment success rate below 95%', critical: 'Payment success rate below 90%' },
  },
  WebhookProcessingDelayed: {
    by: 'provider',
    summary: {
      warning: 'Webhook processing time (p95) exceeds 5s',
      critical: 'Webhook processing time (p95) exceeds 15s',
    },
  },
  FailedWebhookRateHigh: {
    by: 'provider',
    summary: { warning: 'Failed webhook rate above 5%', critical: 'Failed webhook rate above 10%' },
  },
  WebhookTenantUnknown: {
    by: 'provider',
    summary: {
      warning: 'Payment events for an unknown tenant',
      critical: 'Payment events for an unknown tenant',
    },
  },
  DunningConversionRateLow: {
    summary: { warning: 'Dunning conversion rate below 50%', critical: 'Dunning conversion rate below 30%' },
  },
  BillingApiLatencyHigh: {
    summary: { warning: 'Billing API p95 latency above 500ms', critical: 'Billing API p95 latency above 2s' },
  },
};

/** The alertnames billops routes by default: the rules of deploy/prometheus/alerts.yml. */
export const SAMPLE_ALERT_NAMES: readonly string[] = Object.keys(DEFAULT_ALERT_ROUTES);

/** The labels the rule's alert carries: alertname, severity, incident_kind, and the processor (or provider) it names. */
export function alertLabels(
  name: string,
  opts: { severity: AlertSeverity; processor?: string; tenantId?: string },
): Record<string, string> {
  const kind = DEFAULT_ALERT_ROUTES[name]?.kind;
  const by = RULES[name]?.by;
  return {
    alertname: name,
    severity: opts.severity,
    ...(kind ? { incident_kind: kind } : {}),
    ...(by && opts.processor ? { [by]: opts.processor } : {}),
    ...(opts.tenantId ? { tenant_id: opts.tenantId } : {}),
  };
}

/** One notification carrying the one alert, firing (started five minutes ago) or resolved now. */
export function alertNotification(
  labels: Record<string, string>,
  resolved: boolean,
): { body: string; fingerprint: string } {
  const name = labels.alertname ?? '';
  const severity: AlertSeverity = labels.severity === 'critical' ? 'critical' : 'warning';
  const where = labels.processor ?? labels.provider;
  const annotations = {
    summary: RULES[name]?.summary[severity] ?? name,
    description: `Sent by billops trigger${where ? ` for ${where}` : ''}.`,
  };
  const status = resolved ? 'resolved' : 'firing';
  const now = Date.now();
  const fingerprint = alertFingerprint(labels);
  const alert = {
    status,
    labels,
    annotations,
    startsAt: new Date(now - 5 * 60_000).toISOString(),
    // Alertmanager's zero time for an alert that has not ended.
    endsAt: resolved ? new Date(now).toISOString() : '0001-01-01T00:00:00Z',
    generatorURL: `http://127.0.0.1:9090/graph?g0.expr=ALERTS%7Balertname%3D%22${name}%22%7D`,
    fingerprint,
  };
  const notification = {
    version: '4',
    groupKey: `{}:{alertname="${name}"}`,
    truncatedAlerts: 0,
    status,
    receiver: 'billops',
    groupLabels: { alertname: name },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: 'http://127.0.0.1:9093',
    alerts: [alert],
  };
  return { body: JSON.stringify(notification), fingerprint };
}

export { alertFingerprint };
