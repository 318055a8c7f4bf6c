// What overage enforcement reads: a tenant's usage in a billing period from the hourly rollups, against its caps.
import type { Pool } from 'pg';
import type { MeterUsage } from '../../domain/overage';
import type { BillingTier } from '../../domain/policy';

export function createOverageActivities(deps: { pool: Pool }) {
  return {
    /** Tenants with a usage cap whose rollups changed in the window: the ones whose enforcement must look again. */
    async cappedTenantsWithUsage(req: {
      from: string;
      to: string;
    }): Promise<{ tenantId: string; tier: BillingTier }[]> {
      const { rows } = await deps.pool.query<{ tenant_id: string; tier: BillingTier }>(
        `SELECT DISTINCT r.tenant_id, t.tier
           FROM usage_rollups r
           JOIN usage_caps c ON c.tenant_id = r.tenant_id AND c.meter = r.meter
           JOIN tenants t ON t.id = r.tenant_id AND t.deleted_at IS NULL
          WHERE r.hour >= $1 AND r.hour < $2
          ORDER BY 1`,
        [req.from, req.to],
      );
      return rows.map((r) => ({ tenantId: r.tenant_id, tier: r.tier }));
    },

    /** Summed set-based in PostgreSQL; meters with a cap but no usage yet are listed at zero. */
    async measurePeriodUsage(req: {
      tenantId: string;
      periodStart: string;
      periodEnd: string;
    }): Promise<MeterUsage[]> {
      const { rows } = await deps.pool.query<{ meter: string; quantity: string; cap_units: number | null }>(
        `WITH used AS (
           SELECT meter, sum(quantity) AS quantity FROM usage_rollups
            WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 GROUP BY meter)
         SELECT coalesce(u.meter, c.meter) AS meter, coalesce(u.quantity, 0)::text AS quantity, c.cap_units
           FROM used u FULL OUTER JOIN (SELECT meter, cap_units FROM usage_caps WHERE tenant_id = $1) c ON c.meter = u.meter
          ORDER BY 1`,
        [req.tenantId, req.periodStart, req.periodEnd],
      );
      return rows.map((r) => ({ meter: r.meter, quantity: r.quantity, capUnits: r.cap_units }));
    },
  };
}
export type OverageActivities = ReturnType<typeof createOverageActivities>;
