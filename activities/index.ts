// All activity groups, built from the worker's dependencies; the type is what workflows proxy.
import type { Pool } from 'pg';
import { createDecisionActivities } from './decisions';
import { createDunningRecordActivities } from './dunningRecords';
import { createEmailActivities } from './email';
import { createIncidentActivities } from './incidents';
import { createInvoicingActivities } from './invoicing';
import type { Mailer } from './mailer';
import { createNoticeActivities } from './notices';
import { createOverageActivities } from './overage';
import { createPagingActivities, type PagingOptions } from './paging';
import { createPaymentActivities, type PaymentGateways } from './payments';
import { createRollupActivities } from './rollups';
import { createServiceControlActivities } from './serviceControls';
import { createStuckTransactionActivities } from './stuckTransactions';
import { createTenantDataActivities } from './tenantData';
import { createUsageIntegrityActivities } from './usageIntegrity';

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
}

export interface IncidentDependencies {
  paging: PagingOptions;
  statusPageWebhookUrl?: string;
  opsEmail: string;
  reportsDir: string;
  backupProcessor?: 'stripe' | 'paystack';
  scaleUpHook?: string;
  failoverHook?: string;
  healthUrl?: string;
}

export function createActivities(deps: ActivityDependencies) {
  const { pool } = deps;
  const email = createEmailActivities({ pool, mailer: deps.mailer, from: deps.mailFrom });
  return {
    ...email,
    ...createPagingActivities(deps.incidents.paging),
    ...createIncidentActivities({
      pool,
      email,
      opsEmail: deps.incidents.opsEmail,
      reportsDir: deps.incidents.reportsDir,
      statusPageWebhookUrl: deps.incidents.statusPageWebhookUrl,
    }),
    ...createNoticeActivities({ pool }),
    ...createPaymentActivities({ pool, ...deps.gateways, billingPortalUrl: deps.billingPortalUrl }),
    ...createServiceControlActivities({ pool }),
    ...createDunningRecordActivities({ pool }),
    ...createDecisionActivities({ pool, decisionsLogPath: deps.decisionsLogPath }),
    ...createTenantDataActivities({ pool }),
    ...createInvoicingActivities({ pool }),
    ...createRollupActivities({ pool }),
    ...createOverageActivities({ pool }),
    ...createUsageIntegrityActivities({ pool }),
    ...createStuckTransactionActivities({ pool, ...deps.gateways }),
  };
}

export type BillopsActivities = ReturnType<typeof createActivities>;
