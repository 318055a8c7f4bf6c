// Which incident an Alertmanager alert opens: alertname → incident kind, defaults for every shipped rule, overridable.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { INCIDENT_KINDS, SEVERITIES, type IncidentKind, type Severity } from '../domain/policy';

/** What one alertname opens. */
export interface AlertRoute {
  kind: IncidentKind;
  /** A severity other than the policy's for the kind; absent: the policy's (the runbooks' matrix per incident type). */
  severity?: Severity;
  /** Fixed workflow params, laid under the ones read from the alert's labels (processor, provider, tenant). */
  params?: Record<string, unknown>;
}

/** alertname → route; null switches a name off (its alerts are answered 2xx and ignored, whatever their labels). */
export type AlertRouting = Readonly<Record<string, AlertRoute | null>>;

/**
 * One route per alertname in deploy/prometheus/alerts.yml (a warning and a critical rule share each name); the
 * rules' own `incident_kind` labels say the same, and test/integration/alerts.test.ts keeps the two in step.
 */
export const DEFAULT_ALERT_ROUTES: AlertRouting = {
  // Payment success rate < 95 % / < 90 % per processor: the processor is failing payments.
  PaymentSuccessRateLow: { kind: 'payment_processor_outage' },
  // Slow or failing webhook processing: events from the processor are not reaching billing state.
  WebhookProcessingDelayed: { kind: 'webhook_failure' },
  FailedWebhookRateHigh: { kind: 'webhook_failure' },
  // Payment events for a tenant billops does not have: failed payments wait for it, nothing is dunned meanwhile.
  WebhookTenantUnknown: { kind: 'webhook_failure' },
  // Dunning conversion < 50 % / < 30 %: dunning recovers through payment retries, so a collapse means the collection
  // path is failing; the processor-outage response (grace, automated suspensions stopped) protects the tenants it
  // would otherwise suspend. No kind is closer: billing_system_outage is billops itself being down, and would tell
  // the public status page about a business metric. The rule sums every processor, so the incident needs one named
  // (params.processor in BILLOPS_ALERT_ROUTES); without it the ingress answers the alert `ignored`, saying so.
  DunningConversionRateLow: { kind: 'payment_processor_outage' },
  // Billing API p95 latency > 500 ms / > 2 s: the billing system is degraded.
  BillingApiLatencyHigh: { kind: 'billing_system_outage' },
};

const routeSchema = z
  .object({
    kind: z.enum(INCIDENT_KINDS),
    severity: z.enum(SEVERITIES).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** The file: alertname → a kind, a route object, or null to switch a default off. */
export const alertRoutesFileSchema = z.record(
  z.string().trim().min(1, 'an alertname must not be empty').max(200),
  z.union([z.enum(INCIDENT_KINDS).transform((kind): AlertRoute => ({ kind })), routeSchema, z.null()], {
    error: `must be an incident kind (${INCIDENT_KINDS.join(', ')}), {"kind", "severity"?, "params"?} or null`,
  }),
  // zod 4 wraps a key's problems in one invalid_key issue ("Invalid key in record"): show the key's own.
  { error: (issue) => (issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined) },
);

export class AlertRoutesError extends Error {
  override name = 'AlertRoutesError';
}

/** The defaults with `input` (the parsed JSON file) laid over them; throws AlertRoutesError listing every problem. */
export function parseAlertRoutes(input: unknown, where = 'alert routes'): AlertRouting {
  const parsed = alertRoutesFileSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new AlertRoutesError(
      [
        `billops: ${where} are invalid, ${issues.length} ${issues.length === 1 ? 'problem' : 'problems'}:`,
        ...issues,
        'Each entry maps an alertname to an incident kind; alertnames left out keep their default route.',
      ].join('\n'),
    );
  }
  return { ...DEFAULT_ALERT_ROUTES, ...(parsed.data as Record<string, AlertRoute | null>) };
}

/** The defaults, overridden by the JSON file BILLOPS_ALERT_ROUTES names. */
export function loadAlertRoutes(file: string | undefined): AlertRouting {
  if (file === undefined) return DEFAULT_ALERT_ROUTES;
  const path = resolve(file);
  const where = `the alert routes (BILLOPS_ALERT_ROUTES=${path})`;
  let raw: string;
  try {
    raw = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : String(err);
    throw new AlertRoutesError(`billops: cannot read ${where}: ${why}`);
  }
  let input: unknown;
  try {
    input = JSON.parse(raw);
  } catch (err) {
    throw new AlertRoutesError(`billops: ${where} are not valid JSON: ${(err as Error).message}`);
  }
  return parseAlertRoutes(input, where);
}

export type RouteDecision =
  | { route: AlertRoute; via: 'alertname' | 'incident_kind label' }
  | { ignored: string };

/**
 * The route for an alert: its alertname's, else the `incident_kind` label every shipped rule carries (so a rule added
 * later opens its incident without a routing change), else none.
 */
export function routeAlert(routing: AlertRouting, labels: Record<string, string>): RouteDecision {
  const name = labels.alertname ?? '';
  if (Object.hasOwn(routing, name)) {
    const route = routing[name];
    return route
      ? { route, via: 'alertname' }
      : { ignored: `alertname ${name} is switched off in the routes` };
  }
  const labelled = INCIDENT_KINDS.find((k) => k === labels.incident_kind);
  if (labelled) return { route: { kind: labelled }, via: 'incident_kind label' };
  return {
    ignored:
      `no route for alertname ${name}` +
      (labels.incident_kind ? ` and incident_kind ${labels.incident_kind} is not a kind` : ''),
  };
}
