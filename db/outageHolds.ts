// The dunning hold a payment-processor outage places (operational_overrides `dunning_hold:<processor>`): read by a
// lifecycle that starts while the outage is open, so a late arrival gets the same grace and pause as the others.
import type { Pool } from 'pg';
import type { Processor } from '../domain/vocabulary';

export interface OutageDunningHold {
  /** The outage incident that placed it. */
  workflowId: string;
  reason: string;
  graceHours: number;
  suspensionsStopped: boolean;
}

export async function activeOutageDunningHold(
  pool: Pool,
  processor: Processor,
  tenantId: string,
): Promise<OutageDunningHold | null> {
  const { rows } = await pool.query<{ value: Record<string, unknown>; reason: string; workflow_id: string }>(
    `SELECT value, reason, workflow_id FROM operational_overrides
     WHERE name = $1 AND cleared_at IS NULL ORDER BY set_at DESC LIMIT 1`,
    [`dunning_hold:${processor}`],
  );
  const row = rows[0];
  if (!row) return null;
  // An outage scoped to some tenants holds only theirs.
  const scope = row.value.tenantIds;
  if (Array.isArray(scope) && !scope.includes(tenantId)) return null;
  const graceHours = Number(row.value.graceHours);
  return {
    workflowId: row.workflow_id,
    reason: row.reason,
    graceHours: Number.isFinite(graceHours) && graceHours > 0 ? graceHours : 0,
    suspensionsStopped: row.value.suspensionsStopped === true,
  };
}
