// Payment processor outage (seed 000 "Payment Processing Failure"): probe the processor, check its key and webhook
// endpoints, find the accounts it affects, steer their dunning lifecycles, and retry their payments once it is back.
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Pool } from 'pg';
import { signalPaymentSucceeded } from '../../../temporal/dunning';
import type { Money } from '../../../domain/money';
import { createPaymentActivities, type PaymentAttemptResult, type PaymentGateways } from '../../payments';
import {
  findOutageAffectedAccounts,
  listOutageOpenInvoices,
  steerOutageDunning,
  type AffectedAccounts,
  type DunningSteerRequest,
  type DunningSteerResult,
  type OutageInvoice,
} from './affectedAccounts';
import {
  checkProcessorWebhooks,
  probeBackupProcessor,
  probeProcessor,
  type BackupProcessorCheck,
  type OutageProcessor,
  type ProcessorProbe,
  type WebhookEndpointCheck,
} from './probes';

export type {
  AffectedAccounts,
  DunningSteerRequest,
  DunningSteerResult,
  OutageInvoice,
} from './affectedAccounts';
export type { BackupProcessorCheck, OutageProcessor, ProcessorProbe, WebhookEndpointCheck } from './probes';

export interface ProcessorOutageDependencies extends PaymentGateways {
  pool: Pool;
  billingPortalUrl: string;
  /** BILLOPS_BACKUP_PROCESSOR: where new payments go while the tenant's own processor is down. */
  backupProcessor?: OutageProcessor;
  /** Signals dunning lifecycles (the mass action); absent: those steps are skipped with the reason. */
  temporalClient?: Client;
}

export type OutagePaymentRetry = PaymentAttemptResult | { outcome: 'not_collected'; reason: string };

export function createProcessorOutageActivities(deps: ProcessorOutageDependencies) {
  const { pool } = deps;
  const payments = createPaymentActivities({
    pool,
    stripe: deps.stripe,
    paystack: deps.paystack,
    billingPortalUrl: deps.billingPortalUrl,
  });

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

  return {
    /** Seed 000 "Check payment processor status": one call to the processor's API, bounded by the timeout. */
    async probeProcessor(req: { processor: OutageProcessor; timeoutMs: number }): Promise<ProcessorProbe> {
      return probeProcessor(deps, req.processor, req.timeoutMs);
    },

    /** Seed 000 "Verify ... webhook endpoints": Stripe's registered endpoints, their URL and status. */
    async checkProcessorWebhooks(req: {
      processor: OutageProcessor;
      timeoutMs: number;
    }): Promise<WebhookEndpointCheck> {
      return checkProcessorWebhooks(deps.stripe, req);
    },

    /** Seed 000 "Switch to backup payment processor if available": configured, another processor, and answering. */
    async probeBackupProcessor(req: {
      processor: OutageProcessor;
      timeoutMs: number;
    }): Promise<BackupProcessorCheck> {
      return probeBackupProcessor(deps, deps.backupProcessor, req);
    },

    /** Tenants in dunning on the processor, and tenants whose payment failed on it since the outage began. */
    async findOutageAffectedAccounts(req: {
      processor: OutageProcessor;
      since: string;
      /** An outage confined to some accounts: only these count. */
      tenantIds?: string[];
    }): Promise<AffectedAccounts> {
      return findOutageAffectedAccounts(pool, deps.temporalClient, req);
    },

    /** The dunning mass action over the lifecycles found: grace extension, pause or resume, each delivered once. */
    async steerOutageDunning(req: DunningSteerRequest): Promise<DunningSteerResult> {
      return steerOutageDunning(requireClient(), req);
    },

    /** The open invoices of these tenants with something left to pay, and their total: the revenue at risk. */
    async listOutageOpenInvoices(req: {
      tenantIds: string[];
    }): Promise<{ invoices: OutageInvoice[]; due: Money | null }> {
      return listOutageOpenInvoices(pool, req);
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

export type ProcessorOutageActivities = ReturnType<typeof createProcessorOutageActivities>;
