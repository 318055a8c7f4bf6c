// billops configuration from the environment (DESIGN.md "Configuration"): every problem at once, secrets never echoed.
// Each area's variables and settings live beside this file (temporal.ts, payments.ts, incidents.ts); this one joins them.
import { z } from 'zod';
import { incidentVariables, incidentSettings, type IncidentSettings } from './incidents';
import {
  paymentVariables,
  paystackProblems,
  paystackSettings,
  stripeSettings,
  type PaystackSettings,
  type StripeSettings,
} from './payments';
import {
  embeddedTemporalVariables,
  temporalProblems,
  temporalSettings,
  temporalVariables,
  type TemporalSettings,
} from './temporal';
import { port, secret, url, type ConfigProblem, type Env } from './variables';

export type { ConfigProblem } from './variables';

export interface BillopsConfig {
  temporal: TemporalSettings;
  taskQueue: string;
  /** Absent means the embedded PostgreSQL. */
  databaseUrl?: string;
  /** Absent means the embedded SMTP catcher. */
  smtpUrl?: string;
  stripe: StripeSettings;
  paystack: PaystackSettings;
  alertmanagerToken?: string;
  /** JSON file of alertname → incident kind routes laid over the defaults (config/alertRouting.ts). */
  alertRoutesFile?: string;
  ingress: { host: string; port: number };
  /** GET /v1/tenants/{id}/access: how long a gateway may cache an answer (Cache-Control: max-age). */
  access: { maxAgeSeconds: number };
  decisionsLogPath: string;
  policyFile?: string;
  dataDir: string;
  billingPortalUrl: string;
  mailFrom: string;
  /** Where incidents reach people and the outside world (each part optional: unset means not configured). */
  incidents: IncidentSettings;
  /** Ports of the Temporal dev server `npm start` runs when TEMPORAL_ADDRESS is unset. */
  embedded: { temporalPort: number; uiPort: number };
}

export type ConfigResult = { ok: true; config: BillopsConfig } | { ok: false; problems: ConfigProblem[] };

export const SECRET_VARIABLES = [
  'TEMPORAL_API_KEY',
  'STRIPE_SECRET_KEY',
  'STRIPE_WEBHOOK_SECRET',
  'PAYSTACK_SECRET_KEY',
  'PAYSTACK_WEBHOOK_SECRET',
  'ALERTMANAGER_TOKEN',
  'PAGERDUTY_ROUTING_KEY',
  'SLACK_WEBHOOK_URL',
] as const;

/** Secrets plus the URLs that may carry a password: their values never appear in a problem. */
const UNECHOED: ReadonlySet<string> = new Set<string>([
  ...SECRET_VARIABLES,
  'DATABASE_URL',
  'SMTP_URL',
  // Hook URLs and commands may carry tokens.
  'STATUS_PAGE_WEBHOOK_URL',
  'BILLOPS_SCALE_UP_HOOK',
  'BILLOPS_FAILOVER_HOOK',
]);

/** One entry per variable: unset (absent or empty) yields the default or undefined. */
const envSchema = z.object({
  ...temporalVariables,
  BILLOPS_TASK_QUEUE: z
    .string()
    .regex(/^\S+$/, 'must be a task queue name without spaces')
    .default('billing-incidents'),
  DATABASE_URL: url(
    ['postgres:', 'postgresql:'],
    'must be a postgres:// or postgresql:// URL with a host',
  ).optional(),
  SMTP_URL: url(['smtp:', 'smtps:'], 'must be an smtp:// or smtps:// URL with a host').optional(),
  ...paymentVariables,
  ALERTMANAGER_TOKEN: secret(null, 'the bearer token Alertmanager sends'),
  BILLOPS_ALERT_ROUTES: z.string().optional(),
  INGRESS_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.:_-]+$/, 'must be a host name or IP address to listen on, without scheme or port')
    .default('127.0.0.1'),
  INGRESS_PORT: port(8080),
  BILLOPS_ACCESS_MAX_AGE_SECONDS: z
    .string()
    .regex(/^\d{1,5}$/, 'must be a whole number of seconds from 0 to 86400')
    .transform(Number)
    .refine((n) => n <= 86_400, 'must be a whole number of seconds from 0 to 86400')
    .optional()
    .transform((n) => n ?? 5),
  DECISIONS_LOG_PATH: z.string().optional(),
  BILLOPS_POLICY_FILE: z.string().optional(),
  BILLOPS_DATA_DIR: z.string().default('.data'),
  BILLOPS_BILLING_PORTAL_URL: url(['http:', 'https:'], 'must be an http:// or https:// URL').default(
    'http://127.0.0.1:8080/billing',
  ),
  BILLOPS_MAIL_FROM: z
    .string()
    .regex(
      /^(?:[^<>\r\n]*<[^<>\s@]+@[^<>\s@]+>|[^<>\s@]+@[^<>\s@]+)$/,
      'must be an address, e.g. billing@example.com or "billops <billing@example.com>"',
    )
    .default('billops <billing@billops.local>'),
  ...embeddedTemporalVariables,
  ...incidentVariables,
});

/** Reads the environment; never throws, and lists every wrong variable rather than the first. */
export function parseConfig(env: Env): ConfigResult {
  const set: Env = {};
  for (const name of Object.keys(envSchema.shape)) {
    const value = env[name];
    // Empty counts as unset; whitespace is trimmed except from secrets, where it is reported instead.
    const kept = value === undefined || UNECHOED.has(name) ? value : value.trim();
    set[name] = kept === undefined || kept.trim() === '' ? undefined : kept;
  }
  const parsed = envSchema.safeParse(set);
  const problems = [...(parsed.success ? [] : fieldProblems(parsed.error, set)), ...combinationProblems(set)];
  if (!parsed.success || problems.length > 0) return { ok: false, problems };
  return { ok: true, config: toConfig(parsed.data) };
}

function fieldProblems(error: z.ZodError, set: Env): ConfigProblem[] {
  return error.issues.map((issue) => {
    const variable = String(issue.path[0]);
    const value = set[variable];
    const shown =
      UNECHOED.has(variable) || value === undefined ? '' : ` (got ${JSON.stringify(value.slice(0, 80))})`;
    return { variable, problem: `${issue.message}${shown}` };
  });
}

/** Rules across variables, checked on the raw values so they are reported alongside any field problem. */
function combinationProblems(set: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [...temporalProblems(set)];
  if (set.TEMPORAL_ADDRESS === undefined) {
    // npm start then runs the dev server and its Web UI beside the ingress, so the three ports must differ.
    const ports = [
      ['TEMPORAL_PORT', set.TEMPORAL_PORT ?? '7233'],
      ['TEMPORAL_UI_PORT', set.TEMPORAL_UI_PORT ?? '8233'],
      ['INGRESS_PORT', set.INGRESS_PORT ?? '8080'],
    ] as const;
    ports.forEach(([name, value], i) => {
      const clash = ports.slice(0, i).find(([, other]) => other === value);
      if (clash)
        problems.push({
          variable: name,
          problem: `is the same port as ${clash[0]} (${value}); pick another`,
        });
    });
  }
  return [...problems, ...paystackProblems(set)];
}

function toConfig(env: z.output<typeof envSchema>): BillopsConfig {
  return {
    temporal: temporalSettings(env),
    taskQueue: env.BILLOPS_TASK_QUEUE,
    databaseUrl: env.DATABASE_URL,
    smtpUrl: env.SMTP_URL,
    stripe: stripeSettings(env),
    paystack: paystackSettings(env),
    alertmanagerToken: env.ALERTMANAGER_TOKEN,
    alertRoutesFile: env.BILLOPS_ALERT_ROUTES,
    ingress: { host: env.INGRESS_HOST, port: env.INGRESS_PORT },
    access: { maxAgeSeconds: env.BILLOPS_ACCESS_MAX_AGE_SECONDS },
    // Without its own variable the log lives in the data directory, which is `.data/DECISIONS.log` by default.
    decisionsLogPath: env.DECISIONS_LOG_PATH ?? `${env.BILLOPS_DATA_DIR.replace(/\/+$/, '')}/DECISIONS.log`,
    policyFile: env.BILLOPS_POLICY_FILE,
    dataDir: env.BILLOPS_DATA_DIR,
    billingPortalUrl: env.BILLOPS_BILLING_PORTAL_URL,
    mailFrom: env.BILLOPS_MAIL_FROM,
    incidents: incidentSettings(env, env.BILLOPS_DATA_DIR),
    embedded: { temporalPort: env.TEMPORAL_PORT, uiPort: env.TEMPORAL_UI_PORT },
  };
}

/** A copy safe to print: secrets become '***', and so do passwords inside DATABASE_URL and SMTP_URL. */
export function redactConfig(config: BillopsConfig): BillopsConfig {
  const hide = (value: string | undefined) => (value === undefined ? undefined : '***');
  return {
    ...config,
    temporal: {
      ...config.temporal,
      apiKey: hide(config.temporal.apiKey),
      tls: config.temporal.tls && { ...config.temporal.tls },
    },
    databaseUrl: maskUrlPassword(config.databaseUrl),
    smtpUrl: maskUrlPassword(config.smtpUrl),
    stripe: {
      ...config.stripe,
      secretKey: hide(config.stripe.secretKey),
      webhookSecret: hide(config.stripe.webhookSecret),
    },
    paystack: {
      ...config.paystack,
      secretKey: hide(config.paystack.secretKey),
      webhookSecret: hide(config.paystack.webhookSecret),
    },
    alertmanagerToken: hide(config.alertmanagerToken),
    incidents: {
      ...config.incidents,
      pagerDutyRoutingKey: hide(config.incidents.pagerDutyRoutingKey),
      slackWebhookUrl: hide(config.incidents.slackWebhookUrl),
      statusPageWebhookUrl: hide(config.incidents.statusPageWebhookUrl),
      scaleUpHook: hide(config.incidents.scaleUpHook),
      failoverHook: hide(config.incidents.failoverHook),
    },
    ingress: { ...config.ingress },
    embedded: { ...config.embedded },
  };
}

function maskUrlPassword(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    if (url.password !== '') url.password = '***';
    // libpq also takes the password as a query parameter.
    if (url.searchParams.has('password')) url.searchParams.set('password', '***');
    return url.toString();
  } catch {
    return '***';
  }
}

/** One message for stderr: a header, one line per problem, and what to do next. */
export function formatConfigProblems(problems: ConfigProblem[]): string {
  const count = `${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}`;
  return [
    `billops: configuration is invalid (${count}):`,
    ...problems.map((p) => `  - ${p.variable}: ${p.problem}`),
    'Fix these environment variables and start again (an empty or unset variable takes its default).',
  ].join('\n');
}
