// Payment processor outage, seed 000 "Check payment processor status" and "Verify ... webhook endpoints": one bounded
// call to Stripe's or Paystack's API, Stripe's registered webhook endpoints, and whether the backup processor answers.
import { ApplicationFailure } from '@temporalio/activity';
import Stripe from 'stripe';
import type { PaymentGateways } from '../../../drivers/gateways';
import type { PaystackGateway } from '../../../drivers/paystack';
import { interpretStripeError, type StripeGateway } from '../../../drivers/stripe';
import type { Processor } from '../../../domain/vocabulary';

export type OutageProcessor = Processor;

export interface ProcessorProbe {
  processor: OutageProcessor;
  healthy: boolean;
  /** The API answered (false: not configured, timeout, network trouble, 429 or 5xx). */
  reachable: boolean;
  /** null when the answer says nothing about the key. */
  keyAccepted: boolean | null;
  latencyMs: number;
  detail: string;
}

export interface WebhookEndpointCheck {
  processor: OutageProcessor;
  /** False when the processor cannot be asked (Paystack keeps its webhook URL in the dashboard) or did not answer. */
  checked: boolean;
  endpoints: { url: string; status: string; ours: boolean }[];
  /** What is wrong with the configuration, or null. */
  problem: string | null;
  detail: string;
}

export interface BackupProcessorCheck {
  backup: OutageProcessor | null;
  healthy: boolean;
  reason: string;
}

const PROCESSOR_NAMES: Record<OutageProcessor, string> = { stripe: 'Stripe', paystack: 'Paystack' };
// Seed 004 "Test API connectivity": verify a reference that does not exist; an answer proves the API and the key.
const PAYSTACK_PROBE_PATH = '/transaction/verify/billops-connectivity-probe';
// The ingress route Stripe must deliver to (DESIGN.md "HTTP ingress").
const STRIPE_WEBHOOK_PATH = '/webhooks/stripe';

class ProbeTimeout extends Error {}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function probeStripe(
  stripe: StripeGateway,
  timeoutMs: number,
): Promise<Omit<ProcessorProbe, 'latencyMs'>> {
  const base = { processor: 'stripe' as const };
  try {
    await withTimeout(
      stripe.sdk.balance.retrieve({}, { timeout: timeoutMs, maxNetworkRetries: 0 }),
      timeoutMs,
    );
    return {
      ...base,
      healthy: true,
      reachable: true,
      keyAccepted: true,
      detail: 'Stripe answered GET /v1/balance',
    };
  } catch (error) {
    if (error instanceof ProbeTimeout) {
      return {
        ...base,
        healthy: false,
        reachable: false,
        keyAccepted: null,
        detail: `Stripe: ${error.message}`,
      };
    }
    if (!(error instanceof Stripe.errors.StripeError)) throw error;
    const meaning = interpretStripeError(error);
    if (meaning.kind === 'auth') {
      return { ...base, healthy: false, reachable: true, keyAccepted: false, detail: meaning.message };
    }
    if (meaning.kind === 'retryable') {
      return { ...base, healthy: false, reachable: false, keyAccepted: null, detail: meaning.message };
    }
    return { ...base, healthy: false, reachable: true, keyAccepted: null, detail: meaning.message };
  }
}

async function probePaystack(
  paystack: PaystackGateway,
  timeoutMs: number,
): Promise<Omit<ProcessorProbe, 'latencyMs'>> {
  const base = { processor: 'paystack' as const };
  try {
    const answer = await withTimeout(paystack.request('GET', PAYSTACK_PROBE_PATH), timeoutMs);
    // "Transaction reference not found" is the expected answer: the API is up and took the key.
    return {
      ...base,
      healthy: true,
      reachable: true,
      keyAccepted: true,
      detail: `Paystack answered GET ${PAYSTACK_PROBE_PATH} with HTTP ${answer.httpStatus}`,
    };
  } catch (error) {
    if (error instanceof ApplicationFailure && error.type === 'ProcessorAuthFailed') {
      return { ...base, healthy: false, reachable: true, keyAccepted: false, detail: error.message };
    }
    if (error instanceof ProbeTimeout) {
      return {
        ...base,
        healthy: false,
        reachable: false,
        keyAccepted: null,
        detail: `Paystack: ${error.message}`,
      };
    }
    return { ...base, healthy: false, reachable: false, keyAccepted: null, detail: messageOf(error) };
  }
}

/** Seed 000 "Check payment processor status": one call to the processor's API, bounded by the timeout. */
export async function probeProcessor(
  gateways: PaymentGateways,
  processor: OutageProcessor,
  timeoutMs: number,
): Promise<ProcessorProbe> {
  const started = Date.now();
  const gateway = processor === 'stripe' ? gateways.stripe : gateways.paystack;
  const found = !gateway
    ? {
        processor,
        healthy: false,
        reachable: false,
        keyAccepted: null,
        detail: `${PROCESSOR_NAMES[processor]} is not configured (no secret key)`,
      }
    : processor === 'stripe'
      ? await probeStripe(gateway as StripeGateway, timeoutMs)
      : await probePaystack(gateway as PaystackGateway, timeoutMs);
  return { ...found, latencyMs: Date.now() - started };
}

/** Seed 000 "Verify ... webhook endpoints": Stripe's registered endpoints, their URL and status. */
export async function checkProcessorWebhooks(
  stripe: StripeGateway | undefined,
  req: { processor: OutageProcessor; timeoutMs: number },
): Promise<WebhookEndpointCheck> {
  if (req.processor === 'paystack') {
    return {
      processor: 'paystack',
      checked: false,
      endpoints: [],
      problem: null,
      detail:
        'Paystack keeps its webhook URL in the dashboard (Settings → API Keys & Webhooks), not in its API: ' +
        'check it points at /webhooks/paystack',
    };
  }
  if (!stripe) {
    return {
      processor: 'stripe',
      checked: false,
      endpoints: [],
      problem: 'Stripe is not configured',
      detail: 'Stripe is not configured (no secret key)',
    };
  }
  let listed: Stripe.WebhookEndpoint[];
  try {
    const page = await withTimeout(
      stripe.sdk.webhookEndpoints.list({ limit: 100 }, { timeout: req.timeoutMs, maxNetworkRetries: 0 }),
      req.timeoutMs,
    );
    listed = page.data;
  } catch (error) {
    if (!(error instanceof ProbeTimeout || error instanceof Stripe.errors.StripeError)) throw error;
    const detail = `could not list the webhook endpoints: ${
      error instanceof Stripe.errors.StripeError ? interpretStripeError(error).message : error.message
    }`;
    return { processor: 'stripe', checked: false, endpoints: [], problem: null, detail };
  }
  const endpoints = listed.map((e) => ({
    url: e.url,
    status: e.status,
    ours: pathOf(e.url) === STRIPE_WEBHOOK_PATH,
  }));
  const ours = endpoints.filter((e) => e.ours);
  const problem =
    ours.length === 0
      ? `no registered endpoint points at ${STRIPE_WEBHOOK_PATH}`
      : ours.some((e) => e.status === 'enabled')
        ? null
        : `the endpoint at ${STRIPE_WEBHOOK_PATH} is ${ours.map((e) => e.status).join(', ')}`;
  const list = endpoints.map((e) => `${e.url} (${e.status})`).join(', ') || 'none';
  return {
    processor: 'stripe',
    checked: true,
    endpoints,
    problem,
    detail: `${endpoints.length} webhook endpoints: ${list}${problem ? `; ${problem}` : ''}`,
  };
}

/** Seed 000 "Switch to backup payment processor if available": configured, another processor, and answering. */
export async function probeBackupProcessor(
  gateways: PaymentGateways,
  backup: OutageProcessor | undefined,
  req: { processor: OutageProcessor; timeoutMs: number },
): Promise<BackupProcessorCheck> {
  if (!backup)
    return {
      backup: null,
      healthy: false,
      reason: 'no backup processor configured (BILLOPS_BACKUP_PROCESSOR)',
    };
  if (backup === req.processor) {
    return {
      backup: null,
      healthy: false,
      reason: `the backup processor is ${backup}, the one that is down`,
    };
  }
  const found = await probeProcessor(gateways, backup, req.timeoutMs);
  return {
    backup,
    healthy: found.healthy,
    reason: found.healthy
      ? `${PROCESSOR_NAMES[backup]} is healthy (${found.latencyMs} ms)`
      : `${PROCESSOR_NAMES[backup]} is not usable either: ${found.detail}`,
  };
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/+$/, '');
  } catch {
    return '';
  }
}
