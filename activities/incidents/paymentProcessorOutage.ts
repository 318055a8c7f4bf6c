// Payment processor outage (seed 000 "Payment Processing Failure"): probe the processor, check its key and webhook
// endpoints, find the accounts it affects, steer their dunning lifecycles, and retry their payments once it is back.
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import {
  dunningQuery,
  dunningWorkflowId,
  signalDunning,
  signalPaymentSucceeded,
  type MassSignal,
} from '../../temporal/dunning';
import { GRPC, grpcCode } from '../../temporal/grpc';
import type { Money } from '../../domain/money';
import {
  createPaymentActivities,
  type PaymentAttemptResult,
  type PaymentGateways,
  type PaystackGateway,
  type StripeGateway,
} from '../payments';
import { interpretStripeError } from '../../drivers/stripe';

export type OutageProcessor = 'stripe' | 'paystack';

export interface ProcessorOutageDependencies extends PaymentGateways {
  pool: Pool;
  billingPortalUrl: string;
  /** BILLOPS_BACKUP_PROCESSOR: where new payments go while the tenant's own processor is down. */
  backupProcessor?: OutageProcessor;
  /** Signals dunning lifecycles (the mass action); absent: those steps are skipped with the reason. */
  temporalClient?: Client;
}

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

export interface AffectedAccounts {
  tenantIds: string[];
  dunning: { workflowIds: string[]; source: 'visibility' | 'dunning_records' };
  /** Tenants with a payment failed on the processor since the outage began. */
  failedPaymentTenantIds: string[];
  /** Whether this worker can signal the lifecycles (it has a Temporal client). */
  canSteerDunning: boolean;
}

export interface DunningSteerRequest {
  /** Workflow id + step: the same key never reaches a lifecycle twice (batch job id, signal request id). */
  idempotencyKey: string;
  workflowIds: string[];
  action: 'extendGrace' | 'pause' | 'resume';
  /** For extendGrace. */
  hours?: number;
  reason: string;
  operator: string;
}

export interface DunningSteerResult {
  /** batch: server-side batch operations; signals: one signal per lifecycle (a server without batch operations). */
  via: 'batch' | 'signals' | 'none';
  selected: number;
  reached: number;
  failed: number;
}

export interface OutageInvoice {
  tenantId: string;
  invoiceId: string;
  amountDueMinor: number;
  currency: string;
}

export type OutagePaymentRetry = PaymentAttemptResult | { outcome: 'not_collected'; reason: string };

const PROCESSOR_NAMES: Record<OutageProcessor, string> = { stripe: 'Stripe', paystack: 'Paystack' };
// Seed 004 "Test API connectivity": verify a reference that does not exist; an answer proves the API and the key.
const PAYSTACK_PROBE_PATH = '/transaction/verify/billops-connectivity-probe';
// The ingress route Stripe must deliver to (DESIGN.md "HTTP ingress").
const STRIPE_WEBHOOK_PATH = '/webhooks/stripe';
/** A batch still running after this is waited for again by the activity's retry (same job id, no second signal). */
const BATCH_WAIT_MS = 40_000;

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

export function createProcessorOutageActivities(deps: ProcessorOutageDependencies) {
  const { pool } = deps;
  const payments = createPaymentActivities({
    pool,
    stripe: deps.stripe,
    paystack: deps.paystack,
    billingPortalUrl: deps.billingPortalUrl,
  });

  async function probe(processor: OutageProcessor, timeoutMs: number): Promise<ProcessorProbe> {
    const started = Date.now();
    const gateway = processor === 'stripe' ? deps.stripe : deps.paystack;
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

  function requireClient(): Client {
    if (!deps.temporalClient) {
      // Retryable: another worker of the fleet (the one that found the lifecycles) has a client.
      throw ApplicationFailure.retryable(
        'this worker has no Temporal client, so it cannot signal dunning lifecycles',
        'TemporalClientMissing',
      );
    }
    return deps.temporalClient;
  }

  /** Running dunning lifecycles on the processor: from visibility, or the open dunning records where it has none. */
  async function runningDunning(
    processor: OutageProcessor,
  ): Promise<AffectedAccounts['dunning'] & { tenantIds: string[] }> {
    const client = deps.temporalClient;
    if (client) {
      try {
        const workflowIds: string[] = [];
        for await (const wf of client.workflow.list({
          query: dunningQuery(`PaymentProcessor = '${processor}'`),
        })) {
          workflowIds.push(wf.workflowId);
        }
        const prefix = dunningWorkflowId('');
        const ours = workflowIds.filter((id) => id.startsWith(prefix));
        return {
          source: 'visibility',
          workflowIds: ours,
          tenantIds: ours.map((id) => id.slice(prefix.length)),
        };
      } catch (error) {
        // A server without list support (standard visibility, the time-skipping test server): the database knows too.
        if (grpcCode(error) !== GRPC.unimplemented) throw error;
      }
    }
    const { rows } = await pool.query<{ tenant_id: string; workflow_id: string }>(
      `SELECT d.tenant_id, d.workflow_id FROM dunning_records d JOIN tenants t ON t.id = d.tenant_id
        WHERE d.closed_at IS NULL AND t.payment_processor = $1 AND t.deleted_at IS NULL
        ORDER BY d.tenant_id`,
      [processor],
    );
    return {
      source: 'dunning_records',
      workflowIds: rows.map((r) => r.workflow_id),
      tenantIds: rows.map((r) => r.tenant_id),
    };
  }

  function massSignalOf(req: DunningSteerRequest): MassSignal {
    if (req.action === 'extendGrace') {
      if (!req.hours || req.hours <= 0) {
        throw ApplicationFailure.nonRetryable(
          'extendGrace needs a positive number of hours',
          'InvalidRequest',
        );
      }
      return {
        kind: 'extendGrace',
        extension: { hours: req.hours, reason: req.reason, operator: req.operator },
      };
    }
    return { kind: req.action, action: { operator: req.operator, reason: req.reason } };
  }

  return {
    /** Seed 000 "Check payment processor status": one call to the processor's API, bounded by the timeout. */
    async probeProcessor(req: { processor: OutageProcessor; timeoutMs: number }): Promise<ProcessorProbe> {
      return probe(req.processor, req.timeoutMs);
    },

    /** Seed 000 "Verify ... webhook endpoints": Stripe's registered endpoints, their URL and status. */
    async checkProcessorWebhooks(req: {
      processor: OutageProcessor;
      timeoutMs: number;
    }): Promise<WebhookEndpointCheck> {
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
      if (!deps.stripe) {
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
          deps.stripe.sdk.webhookEndpoints.list(
            { limit: 100 },
            { timeout: req.timeoutMs, maxNetworkRetries: 0 },
          ),
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
    },

    /** Seed 000 "Switch to backup payment processor if available": configured, another processor, and answering. */
    async probeBackupProcessor(req: {
      processor: OutageProcessor;
      timeoutMs: number;
    }): Promise<BackupProcessorCheck> {
      const backup = deps.backupProcessor;
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
      const found = await probe(backup, req.timeoutMs);
      return {
        backup,
        healthy: found.healthy,
        reason: found.healthy
          ? `${PROCESSOR_NAMES[backup]} is healthy (${found.latencyMs} ms)`
          : `${PROCESSOR_NAMES[backup]} is not usable either: ${found.detail}`,
      };
    },

    /** Tenants in dunning on the processor, and tenants whose payment failed on it since the outage began. */
    async findOutageAffectedAccounts(req: {
      processor: OutageProcessor;
      since: string;
      /** An outage confined to some accounts: only these count. */
      tenantIds?: string[];
    }): Promise<AffectedAccounts> {
      const only = req.tenantIds ? new Set(req.tenantIds) : null;
      const within = (tenantId: string) => only === null || only.has(tenantId);
      const running = await runningDunning(req.processor);
      const lifecycles = running.workflowIds
        .map((workflowId, i) => ({ workflowId, tenantId: running.tenantIds[i]! }))
        .filter((l) => within(l.tenantId));
      const dunning = {
        source: running.source,
        workflowIds: lifecycles.map((l) => l.workflowId),
        tenantIds: lifecycles.map((l) => l.tenantId),
      };
      const { rows } = await pool.query<{ tenant_id: string }>(
        `SELECT DISTINCT p.tenant_id FROM payment_transactions p JOIN tenants t ON t.id = p.tenant_id
          WHERE p.processor = $1 AND p.status = 'failed' AND p.updated_at >= $2 AND t.deleted_at IS NULL
          ORDER BY p.tenant_id`,
        [req.processor, req.since],
      );
      const failed = rows.map((r) => r.tenant_id).filter(within);
      return {
        tenantIds: [...new Set([...dunning.tenantIds, ...failed])].sort(),
        dunning: { workflowIds: dunning.workflowIds, source: dunning.source },
        failedPaymentTenantIds: failed,
        canSteerDunning: deps.temporalClient !== undefined,
      };
    },

    /** The dunning mass action over the lifecycles found: grace extension, pause or resume, each delivered once. */
    async steerOutageDunning(req: DunningSteerRequest): Promise<DunningSteerResult> {
      const client = requireClient();
      if (req.workflowIds.length === 0) return { via: 'none', selected: 0, reached: 0, failed: 0 };
      const { via, selected, reached, failed } = await signalDunning(
        client,
        { workflowIds: req.workflowIds },
        massSignalOf(req),
        { idempotencyKey: req.idempotencyKey, requestedBy: 'outage', waitMs: BATCH_WAIT_MS },
      );
      return { via, selected, reached, failed };
    },

    /** The open invoices of these tenants with something left to pay, and their total: the revenue at risk. */
    async listOutageOpenInvoices(req: {
      tenantIds: string[];
    }): Promise<{ invoices: OutageInvoice[]; due: Money | null }> {
      if (req.tenantIds.length === 0) return { invoices: [], due: null };
      const { rows } = await pool.query<{ tenant_id: string; id: string; due: string; currency: string }>(
        `SELECT tenant_id, id, (total_minor - amount_paid_minor)::text AS due, currency FROM invoices
          WHERE tenant_id = ANY($1::text[]) AND status = 'open' AND total_minor > amount_paid_minor
          ORDER BY tenant_id, due_at NULLS LAST, id`,
        [req.tenantIds],
      );
      const invoices = rows.map((r) => ({
        tenantId: r.tenant_id,
        invoiceId: r.id,
        amountDueMinor: Number(r.due),
        currency: r.currency,
      }));
      return { invoices, due: largestCurrencyTotal(invoices) };
    },

    /**
     * Runbook "Retry Payment" once the processor is back, under the incident's own key; a payment that still fails is
     * left to the tenant's dunning lifecycle, which hears of a success through `paymentSucceeded`.
     */
    async retryPaymentAfterOutage(req: {
      idempotencyKey: string;
      tenantId: string;
      invoiceId: string;
    }): Promise<OutagePaymentRetry> {
      let result: PaymentAttemptResult;
      try {
        result = await payments.retryInvoicePayment({ ...req, attempt: 1 });
      } catch (error) {
        // The processor's refusal or trouble is this payment's outcome; our own (database) trouble is retried.
        if (!(error instanceof ApplicationFailure)) throw error;
        return { outcome: 'not_collected', reason: error.message };
      }
      if (result.outcome === 'succeeded' && deps.temporalClient) {
        try {
          await signalPaymentSucceeded(deps.temporalClient, req.tenantId, {
            invoiceId: req.invoiceId,
            reference: result.reference,
          });
        } catch (error) {
          // No lifecycle runs for this tenant: the payment needs nobody else told.
          if (!(error instanceof WorkflowNotFoundError)) throw error;
        }
      }
      return result;
    },
  };
}

/** Per currency, the largest total: the report's single revenue-impact figure. */
function largestCurrencyTotal(invoices: OutageInvoice[]): Money | null {
  const totals = new Map<string, number>();
  for (const i of invoices) totals.set(i.currency, (totals.get(i.currency) ?? 0) + i.amountDueMinor);
  const [currency, amountMinor] = [...totals.entries()].sort((a, b) => b[1] - a[1])[0] ?? [];
  return currency === undefined || amountMinor === undefined ? null : { amountMinor, currency };
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname.replace(/\/+$/, '');
  } catch {
    return '';
  }
}
export type ProcessorOutageActivities = ReturnType<typeof createProcessorOutageActivities>;
