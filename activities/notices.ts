// Database activities behind customer notices: who a tenant's billing contact is, and the dashboard notification row.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';

export interface TenantContact {
  tenantId: string;
  name: string;
  tier: string;
  billingEmail: string;
  accountManagerEmail: string | null;
}

export interface DashboardNotification {
  idempotencyKey: string;
  tenantId: string;
  kind: string;
  message: string;
}

export function createNoticeActivities(deps: { pool: Pool }) {
  return {
    async getTenantContact(tenantId: string): Promise<TenantContact> {
      const { rows } = await deps.pool.query<{
        id: string;
        name: string;
        tier: string;
        billing_email: string | null;
        email: string;
        account_manager_email: string | null;
      }>('SELECT id, name, tier, billing_email, email, account_manager_email FROM tenants WHERE id = $1', [
        tenantId,
      ]);
      const row = rows[0];
      if (!row) {
        throw ApplicationFailure.nonRetryable(
          `tenant ${tenantId} is not in the tenants table`,
          'TenantUnknown',
        );
      }
      return {
        tenantId: row.id,
        name: row.name,
        tier: row.tier,
        billingEmail: row.billing_email ?? row.email,
        accountManagerEmail: row.account_manager_email,
      };
    },

    async addDashboardNotification(notification: DashboardNotification): Promise<void> {
      await deps.pool.query(
        `INSERT INTO dashboard_notifications (idempotency_key, tenant_id, kind, message)
         VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING`,
        [notification.idempotencyKey, notification.tenantId, notification.kind, notification.message],
      );
    },
  };
}
export type NoticeActivities = ReturnType<typeof createNoticeActivities>;
