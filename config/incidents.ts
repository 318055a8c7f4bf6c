// The incident settings: where incidents reach people and the outside world, and the outage hooks they run.
import { z } from 'zod';
import { isUrlWith, secret, url } from './variables';

/** Each part optional: unset means not configured. */
export interface IncidentSettings {
  pagerDutyRoutingKey?: string;
  pagerDutyEventsUrl?: string;
  slackWebhookUrl?: string;
  statusPageWebhookUrl?: string;
  /** Who receives the 48-hour root-cause reminder. */
  opsEmail: string;
  /** Incident reports (Markdown) are written here as well as stored in the incidents table. */
  reportsDir: string;
  /** The processor new payments switch to while the tenant's own is down. */
  backupProcessor?: 'stripe' | 'paystack';
  /** Billing system outage hooks: an http(s) URL is POSTed to; anything else is run as a command. */
  scaleUpHook?: string;
  failoverHook?: string;
  /** The billing API's health endpoint probed in a billing system outage. */
  healthUrl?: string;
}

const incidentSchema = z.object({
  PAGERDUTY_ROUTING_KEY: secret(null, 'the Events API v2 integration key'),
  PAGERDUTY_EVENTS_URL: url(['http:', 'https:'], 'must be an http:// or https:// URL').optional(),
  SLACK_WEBHOOK_URL: z
    .string()
    .refine(isUrlWith(['http:', 'https:']), 'must be an http:// or https:// incoming-webhook URL')
    .optional(),
  STATUS_PAGE_WEBHOOK_URL: url(['http:', 'https:'], 'must be an http:// or https:// URL').optional(),
  BILLOPS_OPS_EMAIL: z
    .string()
    .regex(/^[^<>\s@]+@[^<>\s@]+$/, 'must be an email address, e.g. billing-ops@example.com')
    .default('billing-ops@billops.local'),
  INCIDENT_REPORTS_DIR: z.string().optional(),
  BILLOPS_BACKUP_PROCESSOR: z
    .enum(['stripe', 'paystack'], { message: 'must be stripe or paystack' })
    .optional(),
  BILLOPS_SCALE_UP_HOOK: z.string().optional(),
  BILLOPS_FAILOVER_HOOK: z.string().optional(),
  BILLOPS_HEALTH_URL: url(['http:', 'https:'], 'must be an http:// or https:// URL').optional(),
});

/** The incident variables, in the order their problems are listed. */
export const incidentVariables = incidentSchema.shape;

/** `dataDir` holds the reports when INCIDENT_REPORTS_DIR is unset. */
export function incidentSettings(env: z.output<typeof incidentSchema>, dataDir: string): IncidentSettings {
  return {
    pagerDutyRoutingKey: env.PAGERDUTY_ROUTING_KEY,
    pagerDutyEventsUrl: env.PAGERDUTY_EVENTS_URL,
    slackWebhookUrl: env.SLACK_WEBHOOK_URL,
    statusPageWebhookUrl: env.STATUS_PAGE_WEBHOOK_URL,
    opsEmail: env.BILLOPS_OPS_EMAIL,
    reportsDir: env.INCIDENT_REPORTS_DIR ?? `${dataDir.replace(/\/+$/, '')}/incidents`,
    backupProcessor: env.BILLOPS_BACKUP_PROCESSOR,
    scaleUpHook: env.BILLOPS_SCALE_UP_HOOK,
    failoverHook: env.BILLOPS_FAILOVER_HOOK,
    healthUrl: env.BILLOPS_HEALTH_URL,
  };
}
