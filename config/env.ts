// billops configuration from the environment (DESIGN.md "Configuration"): every problem at once, secrets never echoed.
import { z } from 'zod';

export interface BillopsConfig {
  temporal: {
    /** host:port; absent means the embedded dev server. */
    address?: string;
    namespace: string;
    apiKey?: string;
    tls?: { certPath: string; keyPath: string };
  };
  taskQueue: string;
  /** Absent means the embedded PostgreSQL. */
  databaseUrl?: string;
  /** Absent means the embedded SMTP catcher. */
  smtpUrl?: string;
  stripe: { secretKey?: string; webhookSecret?: string; apiBase?: string };
  paystack: {
    secretKey?: string;
    publicKey?: string;
    webhookSecret?: string;
    sandboxMode: boolean;
    baseUrl: string;
    timeoutSeconds: number;
    maxRetries: number;
  };
  alertmanagerToken?: string;
  /** JSON file of alertname → incident kind routes laid over the defaults (config/alertRouting.ts). */
  alertRoutesFile?: string;
  ingress: { host: string; port: number };
  decisionsLogPath: string;
  policyFile?: string;
  dataDir: string;
  billingPortalUrl: string;
  mailFrom: string;
  /** Where incidents reach people and the outside world (each part optional: unset means not configured). */
  incidents: {
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
  };
  /** Ports of the Temporal dev server `npm start` runs when TEMPORAL_ADDRESS is unset. */
  embedded: { temporalPort: number; uiPort: number };
}

export interface ConfigProblem {
  /** The environment variable, e.g. INGRESS_PORT. */
  variable: string;
  /** Why it is wrong; never the value of a secret. */
  problem: string;
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

const PORT_RE = /^\d{1,5}$/;
const isPort = (v: string) => PORT_RE.test(v) && Number(v) >= 1 && Number(v) <= 65535;
const isUrlWith = (protocols: string[]) => (v: string) => {
  try {
    const url = new URL(v);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
};

const port = (fallback: number) =>
  z
    .string()
    .refine(isPort, 'must be a whole number from 1 to 65535')
    .transform(Number)
    .optional()
    .transform((p) => p ?? fallback);
const secret = (prefix: string | null, what: string) =>
  (prefix === null ? z.string() : z.string().startsWith(prefix, `must start with ${prefix} (${what})`))
    .refine((v) => v === v.trim(), 'has leading or trailing whitespace; remove it from the value')
    .optional();
const url = (protocols: string[], hint: string) => z.string().refine(isUrlWith(protocols), hint);

/** One entry per variable: unset (absent or empty) yields the default or undefined. */
const envSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .refine(
      (v) =>
        /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.test(v) &&
        isPort(v.slice(v.lastIndexOf(':') + 1)),
      {
        message:
          'must be host:port without a scheme, e.g. temporal.example.com:7233 (unset it for the embedded dev server)',
      },
    )
    .optional(),
  TEMPORAL_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a namespace name (letters, digits, ".", "-", "_")')
    .default('default'),
  TEMPORAL_API_KEY: secret(null, 'a Temporal Cloud API key'),
  TEMPORAL_TLS_CERT: z.string().optional(),
  TEMPORAL_TLS_KEY: z.string().optional(),
  BILLOPS_TASK_QUEUE: z
    .string()
    .regex(/^\S+$/, 'must be a task queue name without spaces')
    .default('billing-incidents'),
  DATABASE_URL: url(
    ['postgres:', 'postgresql:'],
    'must be a postgres:// or postgresql:// URL with a host',
  ).optional(),
  SMTP_URL: url(['smtp:', 'smtps:'], 'must be an smtp:// or smtps:// URL with a host').optional(),
  STRIPE_SECRET_KEY: secret('sk_', 'a Stripe secret key'),
  STRIPE_WEBHOOK_SECRET: secret('whsec_', 'the signing secret of the Stripe webhook endpoint'),
  STRIPE_API_BASE: url(
    ['http:', 'https:'],
    'must be an http:// or https:// URL, e.g. http://127.0.0.1:12111',
  ).optional(),
  PAYSTACK_SECRET_KEY: secret('sk_', 'a Paystack secret key, sk_test_... or sk_live_...'),
  PAYSTACK_PUBLIC_KEY: z.string().startsWith('pk_', 'must start with pk_ (a Paystack public key)').optional(),
  PAYSTACK_WEBHOOK_SECRET: secret(null, 'the Paystack webhook secret'),
  PAYSTACK_SANDBOX_MODE: z
    .string()
    .regex(/^(true|false|1|0)$/i, 'must be true, false, 1 or 0')
    .transform((v) => /^(true|1)$/i.test(v))
    .default('true'),
  PAYSTACK_BASE_URL: url(['http:', 'https:'], 'must be an http:// or https:// URL').default(
    'https://api.paystack.co',
  ),
  PAYSTACK_TIMEOUT_SECONDS: z
    .string()
    .regex(/^[1-9]\d{0,5}$/, 'must be a whole number of seconds, at least 1')
    .transform(Number)
    .default('30'),
  PAYSTACK_MAX_RETRIES: z
    .string()
    .regex(/^(\d|10)$/, 'must be a whole number from 0 to 10')
    .transform(Number)
    .default('3'),
  ALERTMANAGER_TOKEN: secret(null, 'the bearer token Alertmanager sends'),
  BILLOPS_ALERT_ROUTES: z.string().optional(),
  INGRESS_HOST: z
    .string()
    .regex(/^[A-Za-z0-9.:_-]+$/, 'must be a host name or IP address to listen on, without scheme or port')
    .default('127.0.0.1'),
  INGRESS_PORT: port(8080),
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
  TEMPORAL_UI_PORT: port(8233),
  TEMPORAL_PORT: port(7233),
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

type Env = Record<string, string | undefined>;

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
  const problems: ConfigProblem[] = [];
  const cert = set.TEMPORAL_TLS_CERT;
  const key = set.TEMPORAL_TLS_KEY;
  if (cert !== undefined && key === undefined) {
    problems.push({
      variable: 'TEMPORAL_TLS_KEY',
      problem: 'must be set when TEMPORAL_TLS_CERT is (both or neither)',
    });
  }
  if (key !== undefined && cert === undefined) {
    problems.push({
      variable: 'TEMPORAL_TLS_CERT',
      problem: 'must be set when TEMPORAL_TLS_KEY is (both or neither)',
    });
  }
  if (set.TEMPORAL_ADDRESS === undefined) {
    // Credentials without an address would silently run on the embedded dev server instead of the intended cluster.
    for (const name of ['TEMPORAL_API_KEY', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'] as const) {
      if (set[name] !== undefined) {
        problems.push({
          variable: name,
          problem: 'needs TEMPORAL_ADDRESS; the embedded dev server takes no credentials',
        });
      }
    }
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
  const sandbox = set.PAYSTACK_SANDBOX_MODE;
  const paystackKey = set.PAYSTACK_SECRET_KEY;
  const sandboxOn = sandbox === undefined || /^(true|1)$/i.test(sandbox);
  const sandboxOff = sandbox !== undefined && /^(false|0)$/i.test(sandbox);
  if (sandboxOn && paystackKey?.startsWith('sk_live_')) {
    problems.push({
      variable: 'PAYSTACK_SANDBOX_MODE',
      problem: 'is true (the default) but PAYSTACK_SECRET_KEY is a live key; set it to false for production',
    });
  }
  if (sandboxOff && paystackKey?.startsWith('sk_test_')) {
    problems.push({
      variable: 'PAYSTACK_SANDBOX_MODE',
      problem: 'is false but PAYSTACK_SECRET_KEY is a test key',
    });
  }
  return problems;
}

function toConfig(env: z.output<typeof envSchema>): BillopsConfig {
  const { TEMPORAL_TLS_CERT: certPath, TEMPORAL_TLS_KEY: keyPath } = env;
  return {
    temporal: {
      address: env.TEMPORAL_ADDRESS,
      namespace: env.TEMPORAL_NAMESPACE,
      apiKey: env.TEMPORAL_API_KEY,
      tls: certPath !== undefined && keyPath !== undefined ? { certPath, keyPath } : undefined,
    },
    taskQueue: env.BILLOPS_TASK_QUEUE,
    databaseUrl: env.DATABASE_URL,
    smtpUrl: env.SMTP_URL,
    stripe: {
      secretKey: env.STRIPE_SECRET_KEY,
      webhookSecret: env.STRIPE_WEBHOOK_SECRET,
      apiBase: env.STRIPE_API_BASE,
    },
    paystack: {
      secretKey: env.PAYSTACK_SECRET_KEY,
      publicKey: env.PAYSTACK_PUBLIC_KEY,
      webhookSecret: env.PAYSTACK_WEBHOOK_SECRET,
      sandboxMode: env.PAYSTACK_SANDBOX_MODE,
      baseUrl: env.PAYSTACK_BASE_URL,
      timeoutSeconds: env.PAYSTACK_TIMEOUT_SECONDS,
      maxRetries: env.PAYSTACK_MAX_RETRIES,
    },
    alertmanagerToken: env.ALERTMANAGER_TOKEN,
    alertRoutesFile: env.BILLOPS_ALERT_ROUTES,
    ingress: { host: env.INGRESS_HOST, port: env.INGRESS_PORT },
    // Without its own variable the log lives in the data directory, which is `.data/DECISIONS.log` by default.
    decisionsLogPath: env.DECISIONS_LOG_PATH ?? `${env.BILLOPS_DATA_DIR.replace(/\/+$/, '')}/DECISIONS.log`,
    policyFile: env.BILLOPS_POLICY_FILE,
    dataDir: env.BILLOPS_DATA_DIR,
    billingPortalUrl: env.BILLOPS_BILLING_PORTAL_URL,
    mailFrom: env.BILLOPS_MAIL_FROM,
    incidents: {
      pagerDutyRoutingKey: env.PAGERDUTY_ROUTING_KEY,
      pagerDutyEventsUrl: env.PAGERDUTY_EVENTS_URL,
      slackWebhookUrl: env.SLACK_WEBHOOK_URL,
      statusPageWebhookUrl: env.STATUS_PAGE_WEBHOOK_URL,
      opsEmail: env.BILLOPS_OPS_EMAIL,
      reportsDir: env.INCIDENT_REPORTS_DIR ?? `${env.BILLOPS_DATA_DIR.replace(/\/+$/, '')}/incidents`,
      backupProcessor: env.BILLOPS_BACKUP_PROCESSOR,
      scaleUpHook: env.BILLOPS_SCALE_UP_HOOK,
      failoverHook: env.BILLOPS_FAILOVER_HOOK,
      healthUrl: env.BILLOPS_HEALTH_URL,
    },
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
