// Legal holds on a tenant's data: placed and released by operators, read by the deletion guard (one active per tenant).
import type { ClientBase, Pool } from 'pg';
import { inTransaction } from './pool';

type Queryable = Pick<ClientBase, 'query'>;

export interface LegalHold {
  id: number;
  tenantId: string;
  reason: string;
  operator: string;
  placedAt: Date;
  releasedAt: Date | null;
  releasedBy: string | null;
  releaseReason: string | null;
}

/** A hold that cannot be placed or released as asked: unknown tenant, nothing to release, already held, data gone. */
export class LegalHoldRefused extends Error {
  override name = 'LegalHoldRefused';
}

interface LegalHoldRow {
  id: number;
  tenant_id: string;
  reason: string;
  operator: string;
  placed_at: Date;
  released_at: Date | null;
  released_by: string | null;
  release_reason: string | null;
}

const COLUMNS = 'id, tenant_id, reason, operator, placed_at, released_at, released_by, release_reason';

function fromRow(row: LegalHoldRow): LegalHold {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    reason: row.reason,
    operator: row.operator,
    placedAt: row.placed_at,
    releasedAt: row.released_at,
    releasedBy: row.released_by,
    releaseReason: row.release_reason,
  };
}

/** How an operator lifts the hold; quoted in the deletion guard's refusal and in the CLI's answers. */
export function releaseCommand(tenantId: string): string {
  return `billops tenants hold ${tenantId} --release --reason "..."`;
}

/** The tenant's active hold, if any. */
export async function activeLegalHold(db: Queryable, tenantId: string): Promise<LegalHold | undefined> {
  const { rows } = await db.query<LegalHoldRow>(
    `SELECT ${COLUMNS} FROM legal_holds WHERE tenant_id = $1 AND released_at IS NULL`,
    [tenantId],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Every active hold, oldest first. */
export async function listActiveLegalHolds(db: Queryable): Promise<LegalHold[]> {
  const { rows } = await db.query<LegalHoldRow>(
    `SELECT ${COLUMNS} FROM legal_holds WHERE released_at IS NULL ORDER BY placed_at, id`,
  );
  return rows.map(fromRow);
}

/**
 * Locks the tenant row (shared with other holds, exclusive against a deletion in progress), so a hold and a deletion
 * never pass each other: whichever comes second sees the first.
 */
async function lockTenant(db: Queryable, tenantId: string): Promise<{ deletedAt: Date | null }> {
  const { rows } = await db.query<{ deleted_at: Date | null }>(
    'SELECT deleted_at FROM tenants WHERE id = $1 FOR SHARE',
    [tenantId],
  );
  const row = rows[0];
  if (!row) {
    throw new LegalHoldRefused(`no tenant ${tenantId} (billops tenants list shows every tenant's id)`);
  }
  return { deletedAt: row.deleted_at };
}

export async function placeLegalHold(
  pool: Pool,
  hold: { tenantId: string; reason: string; operator: string },
): Promise<LegalHold> {
  return inTransaction(pool, async (client) => {
    const { deletedAt } = await lockTenant(client, hold.tenantId);
    if (deletedAt) {
      throw new LegalHoldRefused(
        `tenant ${hold.tenantId}'s data was deleted at ${deletedAt.toISOString()}: nothing is left to hold ` +
          '(invoices and payments are kept for accounting regardless)',
      );
    }
    const existing = await activeLegalHold(client, hold.tenantId);
    if (existing) {
      throw new LegalHoldRefused(
        `tenant ${hold.tenantId} is already on legal hold since ${existing.placedAt.toISOString()} ` +
          `(placed by ${existing.operator}: "${existing.reason}"); it stays until ${releaseCommand(hold.tenantId)}`,
      );
    }
    const { rows } = await client.query<LegalHoldRow>(
      `INSERT INTO legal_holds (tenant_id, reason, operator) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [hold.tenantId, hold.reason, hold.operator],
    );
    return fromRow(rows[0] as LegalHoldRow);
  });
}

export async function releaseLegalHold(
  pool: Pool,
  release: { tenantId: string; reason: string; operator: string },
): Promise<LegalHold> {
  return inTransaction(pool, async (client) => {
    await lockTenant(client, release.tenantId);
    const { rows } = await client.query<LegalHoldRow>(
      `UPDATE legal_holds SET released_at = now(), released_by = $2, release_reason = $3
       WHERE tenant_id = $1 AND released_at IS NULL RETURNING ${COLUMNS}`,
      [release.tenantId, release.operator, release.reason],
    );
    if (!rows[0])
      throw new LegalHoldRefused(`tenant ${release.tenantId} has no active legal hold to release`);
    return fromRow(rows[0]);
  });
}
