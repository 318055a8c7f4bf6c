// All activity groups, built from the worker's dependencies; the type is what workflows proxy.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { createAttentionActivities } from './attention';
import { createBillingOutageActivities } from './incidents/billingSystemOutage';
import { createDecisionActivities } from './decisions';
import { createDisputeActivities } from './incidents/billingDispute';
import { createDunningRecordActivities } from './dunningRecords';
import { createEmailActivities } from './email';
import { createIncidentActivities, type IncidentDependencies } from './incidents/common';
import { createInvoicingActivities } from './invoicing';
import type { Mailer } from '../drivers/smtp';
import { createNoticeActivities } from './notices';
import { createOutboundWebhookActivities, dispatchingAfter } from './outboundWebhooks';
import { createOverageActivities } from './usage/overage';
import { createPagingActivities } from './paging';
import { createPaymentActivities, type PaymentGateways } from './payments';
import { createProcessorOutageActivities } from './incidents/paymentProcessorOutage';
import { createRefundActivities } from './incidents/refund';
import { createRollupActivities } from './usage/rollups';
import { createServiceControlActivities } from './serviceControls';
import { createStuckTransactionActivities } from './incidents/stuckTransactions';
import { createSubscriptionActivities } from './subscriptions';
import { createTenantDataActivities } from './tenantData';
import { createUsageIncidentActivities } from './incidents/usageMeteringFailure';
import { createUsageIntegrityActivities } from './usage/integrity';
import { createWebhookRecoveryActivities } from './incidents/webhookFailure';

export interface ActivityDependencies {
  pool: Pool;
  mailer: Mailer;
  mailFrom: string;
  /** Processors with credentials configured; a tenant on any other processor gets retries recorded as failed. */
  gateways: PaymentGateways;
  billingPortalUrl: string;
  decisionsLogPath: string;
  /** Where incidents page people, post status updates and write reports. */
  incidents: IncidentDependencies;
  /** For activities that signal or start workflows (webhook replay, dunning mass actions); absent: those steps are refused. */
  temporalClient?: Client;
}

export function createActivities(deps: ActivityDependencies) {
  const { pool } = deps;
  const email = createEmailActivities({ pool, mailer: deps.mailer, from: deps.mailFrom });
  const paging = createPagingActivities(deps.incidents.paging);
  // The groups that write outbound webhook events wake their delivery workflows once the change committed.
  const webhooks = { pool, temporalClient: deps.temporalClient };
  return {
    ...email,
    ...paging,
    ...createAttentionActivities({ email, paging, opsEmail: deps.incidents.opsEmail }),
    ...dispatchingAfter(
      createIncidentActivities({
        pool,
        email,
        opsEmail: deps.incidents.opsEmail,
        reportsDir: deps.incidents.reportsDir,
        statusPageWebhookUrl: deps.incidents.statusPageWebhookUrl,
      }),
      webhooks,
    ),
    ...createNoticeActivities({ pool }),
    ...createPaymentActivities({ pool, ...deps.gateways, billingPortalUrl: deps.billingPortalUrl }),
    ...dispatchingAfter(createServiceControlActivities({ pool }), webhooks),
    ...dispatchingAfter(createDunningRecordActivities({ pool }), webhooks),
    ...createOutboundWebhookActivities(webhooks),
    ...createDecisionActivities({ pool, decisionsLogPath: deps.decisionsLogPath }),
    ...createTenantDataActivities({ pool, ...deps.gateways }),
    ...createInvoicingActivities({ pool }),
    ...createRollupActivities({ pool }),
    ...createOverageActivities({ pool }),
    ...createUsageIntegrityActivities({ pool }),
    ...createStuckTransactionActivities({ pool, ...deps.gateways }),
    ...createUsageIncidentActivities({ pool }),
    ...createDisputeActivities({ pool, ...deps.gateways }),
    ...createRefundActivities({ pool, ...deps.gateways }),
    ...createSubscriptionActivities({ pool, ...deps.gateways }),
    ...createBillingOutageActivities({
      pool,
      incidents: deps.incidents,
      gateways: deps.gateways,
      billingPortalUrl: deps.billingPortalUrl,
      temporalClient: deps.temporalClient,
    }),
    ...createWebhookRecoveryActivities({
      pool,
      ...deps.gateways,
      temporalClient: deps.temporalClient,
      billingPortalUrl: deps.billingPortalUrl,
    }),
    ...createProcessorOutageActivities({
      pool,
      ...deps.gateways,
      billingPortalUrl: deps.billingPortalUrl,
      backupProcessor: deps.incidents.backupProcessor,
      temporalClient: deps.temporalClient,
    }),
  };
}

export type BillopsActivities = ReturnType<typeof createActivities>;
export type { IncidentDependencies };
