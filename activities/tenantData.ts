// Tenant data activities: the runbook's permanent deletion after the 90-day data retention, keeping what accounting must.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { writeServiceControls } from './serviceControls';

export interface DeleteTenantDataRequest {
  tenantId: string;
  workflowId: string;
  operator: string;
  reason: string;
}

export interface DeletedTenantData {
  /** Rows deleted per table; all zero when the tenant's data was already gone. */
  deleted: Record<string, number>;
}

/**
 * Usage and personal data deleted with the tenant. Kept: invoices, payment_transactions, credits_adjustments,
 * subscriptions, decisions, dunning_records and service_control_changes (financial and audit records), and
 * webhook_events (the processors' payment evidence, which also stops a replayed event from being processed again).
 */
const DELETED_TABLES = [
  'usage_events',
  'usage_rollups',
  'usage_caps',
  'dashboard_notifications',
  // Addresses and message bodies sent to the tenant.
  'email_outbox',
] as const;

export function createTenantDataActivities(deps: { pool: Pool }) {
  return {
    /** Deletes usage and personal data, scrubs the tenant row and keeps the account suspended, in one transaction. */
    async deleteTenantData(req: DeleteTenantDataRequest): Promise<DeletedTenantData> {
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN');
        // The row lock makes concurrent usage inserts (their foreign key check) wait until the deletion is done.
        const tenant = await client.query('SELECT id FROM tenants WHERE id = $1 FOR UPDATE', [req.tenantId]);
        if (tenant.rowCount === 0) {
          throw ApplicationFailure.nonRetryable(
            `tenant ${req.tenantId} is not in the tenants table`,
            'TenantUnknown',
          );
        }
        const deleted: Record<string, number> = {};
        for (const table of DELETED_TABLES) {
          const result = await client.query(`DELETE FROM ${table} WHERE tenant_id = $1`, [req.tenantId]);
          deleted[table] = result.rowCount ?? 0;
        }
        // The placeholder address satisfies the email CHECKs and can never be delivered (.invalid, RFC 2606).
        await client.query(
          `UPDATE tenants
           SET name = 'deleted tenant',
               email = 'deleted+' || id || '@invalid',
               billing_email = 'deleted+' || id || '@invalid',
               -- A saved card authorization: nothing may charge a deleted tenant.
               paystack_authorization_code = NULL,
               deleted_at = COALESCE(deleted_at, now())
           WHERE id = $1`,
          [req.tenantId],
        );
        await writeServiceControls(client, {
          tenantId: req.tenantId,
          workflowId: req.workflowId,
          operator: req.operator,
          reason: req.reason,
          suspended: true,
        });
        await client.query('COMMIT');
        return { deleted };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}
export type TenantDataActivities = ReturnType<typeof createTenantDataActivities>;
