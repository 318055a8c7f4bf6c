// Service control holds: one row per source restricting a tenant, the enforced service_controls row kept as the most
// restrictive active hold in the same transaction, and a history row for each change of a source's hold.
import type { ClientBase, Pool, PoolClient } from 'pg';
import {
  enforcedRestriction,
  holdLevel,
  isActive,
  isRestricted,
  nextRestriction,
  sameRestriction,
  UNRESTRICTED,
  type HoldLevel,
  type Restriction,
  type ServiceControlHold,
  type ServiceControlSource,
} from '../domain/serviceControls';
import { recordOutboundEvent } from './outboundWebhooks';
import { inTransaction } from './pool';

type Db = Pick<ClientBase, 'query'>;

export interface HoldView extends ServiceControlHold {
  level: HoldLevel;
}

/** What the API gateway enforces for a tenant (the service_controls row), and the holds it comes from. */
export interface EnforcedServiceControls extends Restriction {
  tenantId: string;
  reason: string | null;
  workflowId: string | null;
  updatedBy: string;
  /** ISO-8601 UTC. */
  updatedAt: string;
  /** The source whose change produced this state; null before holds existed. */
  source: ServiceControlSource | null;
  /** Every hold, active or past its `until`, by source. */
  holds: HoldView[];
}

export interface HoldChange {
  tenantId: string;
  source: ServiceControlSource;
  workflowId: string;
  operator: string;
  reason: string;
  /** The fields of this source's hold to set; the others keep their value. All of UNRESTRICTED lifts the hold. */
  fields: Partial<Restriction>;
  /** ISO-8601; undefined keeps the hold's current end, null makes it open-ended. */
  until?: string | null;
}

interface ControlsRow {
  tenant_id: string;
  rate_limit_percent: number;
  api_blocked: boolean;
  suspended: boolean;
  read_only: boolean;
  reason: string | null;
  workflow_id: string | null;
  updated_by: string;
  updated_at: Date;
  source: ServiceControlSource | null;
}

interface HoldRow {
  source: ServiceControlSource;
  rate_limit_percent: number;
  api_blocked: boolean;
  suspended: boolean;
  read_only: boolean;
  reason: string;
  workflow_id: string | null;
  since: Date;
  until: Date | null;
}

/**
 * Sets one source's hold and re-derives the enforced row, in the caller's transaction when given a client, else in
 * one of its own. The tenant's service_controls row is locked first, so changes from several sources queue up. A
 * change that alters nothing (a retried activity) writes nothing. Undefined when the tenant does not exist.
 */
export async function changeServiceControlHold(
  db: Pool | PoolClient,
  change: HoldChange,
): Promise<EnforcedServiceControls | undefined> {
  return 'release' in db ? changeIn(db, change) : inTransaction(db, (client) => changeIn(client, change));
}

/** The hold removed: what this source restricted is lifted, what other sources hold stays. */
export function liftServiceControlHold(
  db: Pool | PoolClient,
  change: Omit<HoldChange, 'fields' | 'until'>,
): Promise<EnforcedServiceControls | undefined> {
  return changeServiceControlHold(db, { ...change, fields: UNRESTRICTED, until: null });
}

export async function readServiceControls(
  db: Db,
  tenantId: string,
): Promise<EnforcedServiceControls | undefined> {
  const { rows } = await db.query<ControlsRow>(
    `SELECT t.id AS tenant_id, COALESCE(sc.rate_limit_percent, 100) AS rate_limit_percent,
            COALESCE(sc.api_blocked, false) AS api_blocked, COALESCE(sc.suspended, false) AS suspended,
            COALESCE(sc.read_only, false) AS read_only, sc.reason, sc.workflow_id, sc.source,
            COALESCE(sc.updated_by, 'system') AS updated_by, COALESCE(sc.updated_at, t.created_at) AS updated_at
     FROM tenants t LEFT JOIN service_controls sc ON sc.tenant_id = t.id
     WHERE t.id = $1`,
    [tenantId],
  );
  const row = rows[0];
  return row ? toEnforced(row, await holdsOf(db, tenantId)) : undefined;
}

/** When the tenant's data was deleted (null: not deleted); undefined when there is no such tenant. */
export async function tenantDeletedAt(db: Db, tenantId: string): Promise<Date | null | undefined> {
  const { rows } = await db.query<{ deleted_at: Date | null }>(
    'SELECT deleted_at FROM tenants WHERE id = $1',
    [tenantId],
  );
  return rows[0] ? rows[0].deleted_at : undefined;
}

async function changeIn(client: Db, change: HoldChange): Promise<EnforcedServiceControls | undefined> {
  // Every tenant has its row from creation (a trigger); this covers one created before that trigger.
  await client.query(
    `INSERT INTO service_controls (tenant_id, reason, updated_by)
     SELECT id, 'tenant created', 'system' FROM tenants WHERE id = $1
     ON CONFLICT (tenant_id) DO NOTHING`,
    [change.tenantId],
  );
  const locked = await client.query<ControlsRow & { now: Date }>(
    'SELECT sc.*, now() AS now FROM service_controls sc WHERE tenant_id = $1 FOR UPDATE',
    [change.tenantId],
  );
  const stored = locked.rows[0];
  if (!stored) return undefined;
  const now = stored.now.getTime();
  const holds = await holdsOf(client, change.tenantId);
  const mine = holds.find((h) => h.source === change.source && isActive(h, now));
  const restriction = nextRestriction(mine, change.fields);
  const until = change.until === undefined ? (mine?.until ?? null) : change.until;
  const next: ServiceControlHold | null = isRestricted(restriction)
    ? {
        source: change.source,
        ...restriction,
        reason: change.reason,
        workflowId: change.workflowId,
        since: mine?.since ?? stored.now.toISOString(),
        until,
      }
    : null;
  const holdChanged = mine
    ? !next || !sameRestriction(mine, next) || !sameInstant(mine.until, next.until)
    : next !== null;

  const others = holds.filter((h) => h.source !== change.source);
  const after = enforcedRestriction(next ? [...others, next] : others, now);
  const before = restrictionOf(stored);

  if (holdChanged) {
    if (next) {
      await client.query(
        `INSERT INTO service_control_holds AS h
           (tenant_id, source, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, held_by,
            since, until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (tenant_id, source) DO UPDATE SET
           rate_limit_percent = EXCLUDED.rate_limit_percent, api_blocked = EXCLUDED.api_blocked,
           suspended = EXCLUDED.suspended, read_only = EXCLUDED.read_only, reason = EXCLUDED.reason,
           workflow_id = EXCLUDED.workflow_id, held_by = EXCLUDED.held_by, since = EXCLUDED.since,
           until = EXCLUDED.until`,
        [
          change.tenantId,
          change.source,
          next.rateLimitPercent,
          next.apiBlocked,
          next.suspended,
          next.readOnly,
          next.reason,
          next.workflowId,
          change.operator,
          next.since,
          next.until,
        ],
      );
    } else {
      await client.query('DELETE FROM service_control_holds WHERE tenant_id = $1 AND source = $2', [
        change.tenantId,
        change.source,
      ]);
    }
    await client.query(
      `INSERT INTO service_control_hold_changes
         (tenant_id, source, before, after, enforced_before, enforced_after, reason, workflow_id, changed_by)
       VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9)`,
      [
        change.tenantId,
        change.source,
        mine ? JSON.stringify(holdJson(mine)) : null,
        next ? JSON.stringify(holdJson(next)) : null,
        JSON.stringify(before),
        JSON.stringify(after),
        change.reason,
        change.workflowId,
        change.operator,
      ],
    );
  } else if (mine === undefined) {
    // A past hold of this source restricts nothing any more: tidy it away without a history row.
    await client.query(
      'DELETE FROM service_control_holds WHERE tenant_id = $1 AND source = $2 AND until <= now()',
      [change.tenantId, change.source],
    );
  }

  // The enforced row changes only when the most restrictive state does, described by the change that moved it.
  if (!sameRestriction(before, after)) {
    const stillHeld = others.filter((h) => isActive(h, now)).map((h) => `${h.source} (${h.reason})`);
    const reason = stillHeld.length
      ? `${change.reason}; also held by ${stillHeld.join(', ')}`
      : change.reason;
    await client.query(
      `UPDATE service_controls SET rate_limit_percent = $2, api_blocked = $3, suspended = $4, read_only = $5,
         reason = $6, workflow_id = $7, updated_by = $8, source = $9
       WHERE tenant_id = $1`,
      [
        change.tenantId,
        after.rateLimitPercent,
        after.apiBlocked,
        after.suspended,
        after.readOnly,
        reason,
        change.workflowId,
        change.operator,
        change.source,
      ],
    );
    // The product hears of it through the outbox, in this same transaction (db/outboundWebhooks.ts).
    await recordOutboundEvent(client, {
      type: 'tenant.access.changed',
      tenantId: change.tenantId,
      data: {
        tenantId: change.tenantId,
        state: holdLevel(after) ?? 'active',
        ...after,
        previous: { state: holdLevel(before) ?? 'active', ...before },
        source: change.source,
        reason,
      },
    });
  }
  return readServiceControls(client, change.tenantId);
}

async function holdsOf(db: Db, tenantId: string): Promise<HoldView[]> {
  const { rows } = await db.query<HoldRow>(
    `SELECT source, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, since, until
     FROM service_control_holds WHERE tenant_id = $1 ORDER BY source`,
    [tenantId],
  );
  return rows.map((r) => {
    const hold: ServiceControlHold = {
      source: r.source,
      rateLimitPercent: r.rate_limit_percent,
      apiBlocked: r.api_blocked,
      suspended: r.suspended,
      readOnly: r.read_only,
      reason: r.reason,
      workflowId: r.workflow_id,
      since: r.since.toISOString(),
      until: r.until ? r.until.toISOString() : null,
    };
    // The table keeps only rows that restrict something, so a level always exists.
    return { ...hold, level: holdLevel(hold) ?? 'throttled' };
  });
}

function holdJson(hold: ServiceControlHold) {
  return {
    ...restrictionOf(hold),
    level: holdLevel(hold),
    since: hold.since,
    until: hold.until,
    reason: hold.reason,
    workflowId: hold.workflowId,
  };
}

function restrictionOf(r: Restriction | ControlsRow): Restriction {
  return 'tenant_id' in r
    ? {
        rateLimitPercent: r.rate_limit_percent,
        apiBlocked: r.api_blocked,
        suspended: r.suspended,
        readOnly: r.read_only,
      }
    : {
        rateLimitPercent: r.rateLimitPercent,
        apiBlocked: r.apiBlocked,
        suspended: r.suspended,
        readOnly: r.readOnly,
      };
}

function sameInstant(a: string | null, b: string | null): boolean {
  return a === b || (a !== null && b !== null && Date.parse(a) === Date.parse(b));
}

function toEnforced(row: ControlsRow, holds: HoldView[]): EnforcedServiceControls {
  return {
    tenantId: row.tenant_id,
    ...restrictionOf(row),
    reason: row.reason,
    workflowId: row.workflow_id,
    updatedBy: row.updated_by,
    updatedAt: row.updated_at.toISOString(),
    source: row.source,
    holds,
  };
}
