// Billing holds: what stops invoices being generated for a tenant or meter, placed and released under idempotency keys.
import type { ClientBase } from 'pg';

type Db = Pick<ClientBase, 'query'>;

export interface ActiveHold {
  tenant_id: string | null;
  meter: string | null;
}

export async function activeHolds(db: Db): Promise<ActiveHold[]> {
  const { rows } = await db.query<ActiveHold>(
    'SELECT tenant_id, meter FROM billing_holds WHERE released_at IS NULL',
  );
  return rows;
}

/** A hold with no tenant covers every tenant, with no meter every meter; `meter` null asks about the whole tenant. */
export function isHeld(holds: readonly ActiveHold[], tenantId: string | null, meter: string | null): boolean {
  return holds.some(
    (h) => (h.tenant_id === null || h.tenant_id === tenantId) && (h.meter === null || h.meter === meter),
  );
}

export interface HoldRow {
  id: number;
  tenant_id: string | null;
  meter: string | null;
  reason: string;
  held_by: string;
  created_at: Date;
  released_at: Date | null;
  released_by: string | null;
  release_reason: string | null;
}

const HOLD_COLUMNS =
  'id, tenant_id, meter, reason, held_by, created_at, released_at, released_by, release_reason';

/** The new hold, or nothing when the key already placed one; a tenant not in the tenants table fails with 23503. */
export async function insertHold(
  db: Db,
  hold: {
    tenantId: string | null;
    meter: string | null;
    reason: string;
    workflowId: string | null;
    idempotencyKey: string;
    operator: string;
  },
): Promise<HoldRow | undefined> {
  const { rows } = await db.query<HoldRow>(
    `INSERT INTO billing_holds (tenant_id, meter, reason, workflow_id, idempotency_key, held_by)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (idempotency_key) DO NOTHING
     RETURNING ${HOLD_COLUMNS}`,
    [hold.tenantId, hold.meter, hold.reason, hold.workflowId, hold.idempotencyKey, hold.operator],
  );
  return rows[0];
}

export async function holdPlacedUnder(db: Db, idempotencyKey: string): Promise<HoldRow | undefined> {
  const { rows } = await db.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM billing_holds WHERE idempotency_key = $1`,
    [idempotencyKey],
  );
  return rows[0];
}

export async function holdsReleasedUnder(db: Db, idempotencyKey: string): Promise<HoldRow[]> {
  const { rows } = await db.query<HoldRow>(
    `SELECT ${HOLD_COLUMNS} FROM billing_holds WHERE release_idempotency_key = $1 ORDER BY id`,
    [idempotencyKey],
  );
  return rows;
}

/** Releases the active holds with exactly this scope (null: all); answers them in any order. */
export async function releaseHolds(
  db: Db,
  release: {
    tenantId: string | null;
    meter: string | null;
    operator: string;
    reason: string;
    idempotencyKey: string;
  },
): Promise<HoldRow[]> {
  const { rows } = await db.query<HoldRow>(
    `UPDATE billing_holds
     SET released_at = now(), released_by = $3, release_reason = $4, release_idempotency_key = $5
     WHERE released_at IS NULL AND tenant_id IS NOT DISTINCT FROM $1::text AND meter IS NOT DISTINCT FROM $2::text
     RETURNING ${HOLD_COLUMNS}`,
    [release.tenantId, release.meter, release.operator, release.reason, release.idempotencyKey],
  );
  return rows;
}
