// What overage enforcement reads: a tenant's usage in a billing period from the hourly rollups, against its caps.
import type { Pool } from 'pg';
import type { MeterUsage } from '../domain/overage';

export function createOverageActivities(deps: { pool: Pool }) {
  return {
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
