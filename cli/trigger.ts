// `billops trigger <event>`, as `stripe trigger` does: a realistic Stripe or Paystack event, or an Alertmanager alert by
// rule name, signed with the configured secrets and sent to the ingress; prints the workflow it reached and its Web UI link.
import { createHmac } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { Pool } from 'pg';
import type { BillopsConfig } from '../config/env';
import { listTenants, getTenant, type Tenant } from '../db/tenants';
import { formatMinorUnits } from '../domain/money';
import {
  paystackSampleEvent,
  SAMPLE_PAYSTACK_EVENTS,
  SAMPLE_STRIPE_EVENTS,
  stripeSampleEvent,
  type SamplePaystackEvent,
  type SampleStripeEvent,
} from '../paymentEvents/sampleEvents';
import {
  cliConfig,
  localRuntime,
  oneOf,
  positiveWholeNumber,
  printJson,
  RefusedError,
  refuseStaleRuntime,
  temporalAddress,
  UsageError,
  withDatabase,
} from './common';
import { tenantFlag } from './flags';
import { alertLabels, alertNotification, SAMPLE_ALERT_NAMES, type AlertSeverity } from './sampleAlerts';

/** What a made-up invoice is for when --amount is not given and the tenant has no open one: 49.00 in its currency. */
const DEFAULT_AMOUNT_MINOR = 4900;
/** How many tenant ids an unknown --tenant lists. */
const TENANTS_LISTED = 20;
const SEND_TIMEOUT_MS = 30_000;

type Target =
  | { provider: 'stripe'; type: SampleStripeEvent }
  | { provider: 'paystack'; type: SamplePaystackEvent }
  | { provider: 'alertmanager'; type: string };

interface Sent {
  event: string;
  provider: Target['provider'];
  /** Stripe's event id, Paystack's event key, or the alert's fingerprint. */
  eventId: string;
  tenantId?: string;
  ingressUrl: string;
  /** What the ingress says it did: processed, ignored, stored_for_incident, failed; incident, alert_resolved, ... */
  status: string;
  workflowId?: string;
  webUiUrl?: string;
  reason?: string;
}

const PROCESSORS = ['stripe', 'paystack'] as const;

function knownEvents(): string {
  return [
    `  Stripe:       ${SAMPLE_STRIPE_EVENTS.join(', ')}`,
    `  Paystack:     ${SAMPLE_PAYSTACK_EVENTS.join(', ')}`,
    `  Alertmanager: ${SAMPLE_ALERT_NAMES.join(', ')} (firing; --resolved for resolved)`,
  ].join('\n');
}

/** The event's provider: its name, disambiguated by --processor; an unknown name lists the known ones. */
function targetFor(name: string | undefined, processor: 'stripe' | 'paystack' | undefined): Target {
  if (name === undefined) throw new UsageError(`which event? known events:\n${knownEvents()}`);
  const stripe = SAMPLE_STRIPE_EVENTS.find((e) => e === name);
  const paystack = SAMPLE_PAYSTACK_EVENTS.find((e) => e === name);
  if (stripe && processor !== 'paystack') return { provider: 'stripe', type: stripe };
  if (paystack && processor !== 'stripe') return { provider: 'paystack', type: paystack };
  if (stripe || paystack) {
    const other = stripe ? 'a Stripe' : 'a Paystack';
    throw new UsageError(`${name} is ${other} event, not ${processor}'s; known events:\n${knownEvents()}`);
  }
  if (SAMPLE_ALERT_NAMES.includes(name)) return { provider: 'alertmanager', type: name };
  throw new UsageError(`unknown event ${JSON.stringify(name)}; known events:\n${knownEvents()}`);
}

export async function trigger(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      amount: { type: 'string' },
      currency: { type: 'string' },
      processor: { type: 'string' },
      severity: { type: 'string' },
      resolved: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 1) throw new UsageError(`unexpected argument: ${positionals[1]}`);
  const processor = oneOf(values.processor, PROCESSORS, '--processor');
  const target = targetFor(positionals[0], processor);
  const tenantId = tenantFlag(values.tenant);
  const amount =
    values.amount === undefined ? undefined : positiveWholeNumber(values.amount, '--amount (minor units)');
  const currency = values.currency?.trim().toUpperCase();
  if (currency !== undefined && !/^[A-Z]{3}$/.test(currency)) {
    throw new UsageError(
      `--currency must be a three-letter ISO 4217 code such as USD or NGN (got ${values.currency})`,
    );
  }
  if (target.provider !== 'alertmanager' && (values.resolved || values.severity !== undefined)) {
    throw new UsageError('--resolved and --severity are for alerts only');
  }

  const config = cliConfig();
  // A runtime file left by an `npm start` that is gone means no ingress either: say so rather than "not reachable".
  refuseStaleRuntime();
  const sent =
    target.provider === 'alertmanager'
      ? await sendAlert(config, target.type, {
          processor: processor ?? 'stripe',
          severity: oneOf(values.severity, ['warning', 'critical'] as const, '--severity') ?? 'warning',
          resolved: values.resolved ?? false,
          tenantId,
        })
      : await sendPaymentEvent(config, target, { tenantId, amount, currency });
  if (sent.workflowId) sent.webUiUrl = webUiLink(config, sent.workflowId);

  if (values.json) printJson(sent);
  else printSent(sent);
  // Stored but not acted on, or an alert the ingress could not hand to Temporal: nothing was reached.
  return sent.status === 'failed' ? 1 : 0;
}

// ---- Payment events ----

async function sendPaymentEvent(
  config: BillopsConfig,
  target: Exclude<Target, { provider: 'alertmanager' }>,
  opts: { tenantId?: string; amount?: number; currency?: string },
): Promise<Sent> {
  // Checked before the database is touched: nothing can be sent without it.
  const secret =
    target.provider === 'stripe'
      ? config.stripe.webhookSecret
      : (config.paystack.webhookSecret ?? config.paystack.secretKey);
  if (!secret) {
    throw new UsageError(
      target.provider === 'stripe'
        ? 'STRIPE_WEBHOOK_SECRET is not set: trigger signs Stripe events with the secret the ingress checks; set it to the ingress’s value'
        : 'PAYSTACK_WEBHOOK_SECRET (or PAYSTACK_SECRET_KEY) is not set: trigger signs Paystack events with the secret the ingress checks; set it to the ingress’s value',
    );
  }
  const { tenant, invoice } = await withDatabase(async (pool) => {
    const found = await knownTenant(pool, opts.tenantId);
    return { tenant: found, invoice: await invoiceToName(pool, found.id, target) };
  });
  const subject = {
    tenantId: tenant.id,
    tier: tenant.tier,
    email: tenant.billingEmail,
    customerId:
      (target.provider === 'stripe' ? tenant.stripeCustomerId : tenant.paystackCustomerCode) ?? undefined,
    amountMinor: opts.amount ?? invoice?.amountMinor ?? DEFAULT_AMOUNT_MINOR,
    currency: opts.currency ?? invoice?.currency ?? tenant.currency,
    processorInvoiceId: invoice?.processorInvoiceId,
  };
  const sample =
    target.provider === 'stripe'
      ? stripeSampleEvent(target.type, subject)
      : paystackSampleEvent(target.type, subject);
  const headers: Record<string, string> =
    target.provider === 'stripe'
      ? { 'stripe-signature': stripeSignature(sample.body, secret) }
      : { 'x-paystack-signature': createHmac('sha512', secret).update(sample.body).digest('hex') };
  const ingressUrl = ingressBase(config);
  const answer = await post(`${ingressUrl}/webhooks/${target.provider}`, sample.body, headers);
  const status = typeof answer.status === 'string' ? answer.status : 'received';
  return {
    event: target.type,
    provider: target.provider,
    eventId: sample.id,
    tenantId: tenant.id,
    ingressUrl,
    status: answer.duplicate === true ? 'duplicate' : status,
    ...(typeof answer.workflowId === 'string' ? { workflowId: answer.workflowId } : {}),
    reason:
      typeof answer.reason === 'string'
        ? answer.reason
        : `${sample.processorInvoiceId}, ${formatMinorUnits(subject.amountMinor, subject.currency)}`,
  };
}

/** The tenant --tenant names; missing or unknown: exit 2 with the ids of the tenants there are. */
async function knownTenant(pool: Pool, id: string | undefined): Promise<Tenant> {
  const tenant = id === undefined ? undefined : await getTenant(pool, id);
  if (tenant && !tenant.deletedAt) return tenant;
  const ids = (await listTenants(pool)).map((t) => t.id);
  const known =
    ids.length === 0
      ? 'there are no tenants yet: add one with billops tenants add'
      : `known tenants: ${ids.slice(0, TENANTS_LISTED).join(', ')}` +
        (ids.length > TENANTS_LISTED
          ? ` (and ${ids.length - TENANTS_LISTED} more: billops tenants list)`
          : '');
  throw new UsageError(
    id === undefined ? `--tenant is required; ${known}` : `unknown tenant ${id}; ${known}`,
  );
}

/**
 * The tenant's latest invoice at the processor that the event should name: an open one for a payment (so it reaches
 * the lifecycle that dunning it), a paid one for a refund or dispute. A failed payment names a new invoice, which the
 * ingress records as it records any real one; trigger itself writes nothing.
 */
async function invoiceToName(
  pool: Pool,
  tenantId: string,
  target: Exclude<Target, { provider: 'alertmanager' }>,
): Promise<{ processorInvoiceId: string; amountMinor: number; currency: string } | undefined> {
  const wants: Record<string, string> = {
    'invoice.paid': 'open',
    'charge.success': 'open',
    'charge.refunded': 'paid',
    'charge.dispute.created': 'paid',
    'refund.processed': 'paid',
  };
  const status = wants[target.type];
  if (!status) return undefined;
  const { rows } = await pool.query<{ processor_invoice_id: string; total_minor: string; currency: string }>(
    `SELECT processor_invoice_id, total_minor, currency FROM invoices
     WHERE tenant_id = $1 AND processor = $2 AND status = $3 AND processor_invoice_id IS NOT NULL
     ORDER BY created_at DESC LIMIT 1`,
    [tenantId, target.provider, status],
  );
  const row = rows[0];
  return row
    ? {
        processorInvoiceId: row.processor_invoice_id,
        amountMinor: Number(row.total_minor),
        currency: row.currency,
      }
    : undefined;
}

/** Stripe's scheme: `t=<unix>,v1=<HMAC-SHA256 of "t.body">`, checked with a five-minute tolerance. */
function stripeSignature(body: string, secret: string): string {
  const t = Math.floor(Date.now() / 1000);
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

// ---- Alerts ----

async function sendAlert(
  config: BillopsConfig,
  name: string,
  opts: { processor: string; severity: AlertSeverity; resolved: boolean; tenantId?: string },
): Promise<Sent> {
  const token = config.alertmanagerToken;
  if (!token) {
    throw new UsageError(
      'ALERTMANAGER_TOKEN is not set: trigger sends alerts with the token the ingress checks; set it to the ingress’s value',
    );
  }
  const labels = alertLabels(name, opts);
  const { body, fingerprint } = alertNotification(labels, opts.resolved);
  const ingressUrl = ingressBase(config);
  const answer = await post(`${ingressUrl}/alerts/alertmanager`, body, { authorization: `Bearer ${token}` });
  const result = (Array.isArray(answer.results) ? answer.results[0] : undefined) as
    | { outcome?: string; workflowId?: string; reason?: string }
    | undefined;
  return {
    event: name,
    provider: 'alertmanager',
    eventId: fingerprint,
    ...(opts.tenantId ? { tenantId: opts.tenantId } : {}),
    ingressUrl,
    status: result?.outcome ?? 'received',
    ...(result?.workflowId ? { workflowId: result.workflowId } : {}),
    reason:
      result?.reason ?? `${opts.resolved ? 'resolved' : 'firing'} ${opts.severity} alert ${fingerprint}`,
  };
}

// ---- The ingress and the Web UI ----

/** Where the ingress listens (INGRESS_HOST, INGRESS_PORT); a wildcard listen address is reached on loopback. */
function ingressBase(config: BillopsConfig): string {
  const { host, port } = config.ingress;
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

async function post(
  url: string,
  body: string,
  headers: Record<string, string>,
): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'billops-trigger', ...headers },
      body,
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new RefusedError(
      `the ingress at ${url} is not reachable (${why}): start billops with \`npm start\` (or the ingress alone: ` +
        '`node --import tsx ingress/main.ts`), or set INGRESS_HOST and INGRESS_PORT to where it listens',
    );
  }
  const text = await response.text();
  let answer: Record<string, unknown> = {};
  try {
    answer = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // Not JSON: reported below by status.
  }
  if (!response.ok) {
    const message = typeof answer.message === 'string' ? answer.message : text.slice(0, 300);
    throw new RefusedError(`the ingress at ${url} answered ${response.status}: ${message}`);
  }
  return answer;
}

/**
 * `<Web UI>/namespaces/<ns>/workflows/<id>`: the running `npm start`'s Web UI, else the dev server's UI port
 * (TEMPORAL_UI_PORT) on the Temporal host, Temporal Cloud's UI for a Cloud address.
 */
export function webUiLink(config: BillopsConfig, workflowId: string): string {
  const host = temporalAddress(config).replace(/:\d+$/, '');
  const started = localRuntime()?.temporal.webUi;
  const base = started
    ? started.replace(/\/+$/, '')
    : host.endsWith('.tmprl.cloud')
      ? 'https://cloud.temporal.io'
      : `http://${host}:${config.embedded.uiPort}`;
  return `${base}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function printSent(sent: Sent): void {
  const what =
    sent.provider === 'alertmanager'
      ? 'Alertmanager alert'
      : `${sent.provider === 'stripe' ? 'Stripe' : 'Paystack'} event`;
  console.log(
    `sent ${what} ${sent.event} (${sent.eventId})${sent.tenantId ? ` for tenant ${sent.tenantId}` : ''} to ${sent.ingressUrl}`,
  );
  console.log(`ingress:  ${sent.status}${sent.reason ? ` (${sent.reason})` : ''}`);
  if (sent.workflowId) {
    console.log(`workflow: ${sent.workflowId}`);
    console.log(`Web UI:   ${sent.webUiUrl}`);
  } else {
    console.log('workflow: none reached');
  }
}
