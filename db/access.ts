// What the product's gateway reads for a tenant (its access: state, holds, payment link, open notices), the change log
// gateways sync from, and the in-app notices: listed, acknowledged, and posted or withdrawn with dunning's hold.
import type { ClientBase } from 'pg';
import { enforcedRestriction, isActive, type ServiceControlSource } from '../domain/serviceControls';
import { formatNoticeTime } from '../domain/templates';
import { readServiceControls, type EnforcedServiceControls } from './serviceControls';

type Db = Pick<ClientBase, 'query'>;

export const ACCESS_STATES = ['active', 'throttled', 'blocked', 'suspended', 'deleted'] as const;
export type AccessState = (typeof ACCESS_STATES)[number];

export interface AccessHold {
  source: ServiceControlSource;
  /** ISO-8601 UTC. */
  since: string;
  /** ISO-8601 UTC; absent: until lifted. */
  until?: string;
  reason: string;
}

/** An in-app notice (the runbook's "dashboard notification"), for the product's dashboard banner. */
export interface Notice {
  id: string;
  kind: string;
  message: string;
  /** ISO-8601 UTC: when it was posted, the date of the warning, limit or suspension it announces. */
  createdAt: string;
  /** Set once acknowledged by the tenant or withdrawn by billops. */
  dismissedAt?: string;
  /** `api-key:<id>` when acknowledged through the API; `billops: ...` when withdrawn. */
  dismissedBy?: string;
}

export interface TenantAccess {
  tenantId: string;
  state: AccessState;
  /** 100 is normal capacity; 0 when deleted. */
  rateLimitPercent: number;
  /** Billing is read-only for the tenant (a billing-system outage); the product's own API is not limited by it. */
  readOnly: boolean;
  /** The active holds, by source. */
  holds: AccessHold[];
  /** The hosted page of the oldest unpaid invoice, while one is due. */
  paymentUrl?: string;
  /** The open (not dismissed) notices, oldest first. */
  notices: Notice[];
}

interface NoticeRow {
  id: string;
  kind: string;
  message: string;
  created_at: Date;
  dismissed_at: Date | null;
  dismissed_by: string | null;
}

const NOTICE_COLUMNS = 'id::text AS id, kind, message, created_at, dismissed_at, dismissed_by';

function toNotice(row: NoticeRow): Notice {
  return {
    id: row.id,
    kind: row.kind,
    message: row.message,
    createdAt: row.created_at.toISOString(),
    ...(row.dismissed_at ? { dismissedAt: row.dismissed_at.toISOString() } : {}),
    ...(row.dismissed_by ? { dismissedBy: row.dismissed_by } : {}),
  };
}

/** A notice as the access query builds it, already in the answer's shape. */
type NoticeJson = Pick<Notice, 'id' | 'kind' | 'message' | 'createdAt'>;

/** ISO-8601 UTC with milliseconds, as Date.toISOString writes it. */
const ISO_UTC = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * A tenant's access now: the enforced state is the most restrictive active hold (domain enforcedRestriction), so a
 * hold past its `until` stops counting at once. Undefined when there is no such tenant.
 */
export async function readTenantAccess(
  db: Db,
  tenantId: string,
  now: number = Date.now(),
): Promise<TenantAccess | undefined> {
  const controls = await readServiceControls(db, tenantId);
  if (!controls) return undefined;
  // One round trip for the rest: deletion, the payment link, the open notices.
  const { rows } = await db.query<{
    deleted_at: Date | null;
    payment_url: string | null;
    notices: NoticeJson[];
  }>(
    `SELECT t.deleted_at,
            (SELECT i.hosted_invoice_url FROM invoices i
             WHERE i.tenant_id = t.id AND i.status = 'open' AND i.hosted_invoice_url IS NOT NULL
               AND i.amount_paid_minor < i.total_minor
             ORDER BY i.due_at NULLS LAST, i.created_at, i.id LIMIT 1) AS payment_url,
            COALESCE((SELECT json_agg(json_build_object('id', n.id::text, 'kind', n.kind, 'message', n.message,
                                                        'createdAt', ${ISO_UTC('n.created_at')})
                                      ORDER BY n.created_at, n.id)
                      FROM dashboard_notifications n WHERE n.tenant_id = t.id AND n.dismissed_at IS NULL),
                     '[]'::json) AS notices
     FROM tenants t WHERE t.id = $1`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return accessOf(controls, row.deleted_at, row.payment_url, row.notices, now);
}

function accessOf(
  controls: EnforcedServiceControls,
  deletedAt: Date | null,
  paymentUrl: string | null,
  notices: Notice[],
  now: number,
): TenantAccess {
  const restriction = enforcedRestriction(controls.holds, now);
  const holds = controls.holds
    .filter((h) => isActive(h, now))
    .map((h) => ({
      source: h.source,
      since: h.since,
      ...(h.until ? { until: h.until } : {}),
      reason: h.reason,
    }));
  if (deletedAt) {
    return {
      tenantId: controls.tenantId,
      state: 'deleted',
      rateLimitPercent: 0,
      readOnly: true,
      holds,
      notices,
    };
  }
  const state: AccessState = restriction.suspended
    ? 'suspended'
    : restriction.apiBlocked
      ? 'blocked'
      : restriction.rateLimitPercent < 100
        ? 'throttled'
        : 'active';
  return {
    tenantId: controls.tenantId,
    state,
    rateLimitPercent: restriction.rateLimitPercent,
    readOnly: restriction.readOnly,
    holds,
    ...(paymentUrl ? { paymentUrl } : {}),
    notices,
  };
}

// ---- Sync: GET /v1/access?changedSince= ----

/** A page of tenants whose access changed, with the cursor to ask from next. */
export interface AccessChanges {
  tenants: TenantAccess[];
  nextCursor: string;
  /** More tenants changed in the same window: ask again with nextCursor at once. */
  hasMore: boolean;
}

/** A changedSince value that is not a cursor this API gave out. */
export class AccessCursorError extends Error {
  override name = 'AccessCursorError';
}

/**
 * The cursor is the snapshot of the previous sync (which changes it saw committed), so a change committed late is
 * handed out once and never skipped; while a window is paged through, it also carries the window's end and the last
 * tenant given.
 */
interface Cursor {
  /** Changes visible in this snapshot were handed out already. */
  from: string;
  /** The window's end while paging; absent: up to now. */
  to?: string;
  /** The last tenant of the previous page of this window. */
  after?: string;
}

const SNAPSHOT = /^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/;
/** Before anything was logged: the first sync lists every tenant whose access ever changed. */
const BEGINNING = '1:1:';

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

export function decodeCursor(value: string | undefined): Cursor {
  if (value === undefined || value === '') return { from: BEGINNING };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const c = parsed as Partial<Cursor> | undefined;
  const ok =
    typeof c === 'object' &&
    c !== null &&
    typeof c.from === 'string' &&
    SNAPSHOT.test(c.from) &&
    (c.to === undefined || (typeof c.to === 'string' && SNAPSHOT.test(c.to))) &&
    (c.after === undefined || typeof c.after === 'string');
  if (!ok) {
    throw new AccessCursorError(
      'changedSince is not a cursor this API gave out: pass the nextCursor of a previous answer, or leave it out to start over',
    );
  }
  return {
    from: c.from!,
    ...(c.to ? { to: c.to } : {}),
    ...(c.after !== undefined ? { after: c.after } : {}),
  };
}

/**
 * Every tenant whose access changed since the cursor (those of `tenants` only, when given), in tenant id order,
 * `limit` per page. Holds whose `until` passed are logged first, so an expiry reaches syncing gateways too.
 */
export async function accessChangedSince(
  db: Db,
  changedSince: string | undefined,
  opts: { limit: number; tenants: readonly string[] | null; now?: number },
): Promise<AccessChanges> {
  const cursor = decodeCursor(changedSince);
  await db.query(
    `INSERT INTO tenant_access_changes (tenant_id, what, hold_source, hold_until)
     SELECT tenant_id, 'hold ended', source, until FROM service_control_holds WHERE until <= now()
     ON CONFLICT (tenant_id, hold_source, hold_until) WHERE hold_until IS NOT NULL DO NOTHING`,
  );
  const to =
    cursor.to ??
    (await db.query<{ snapshot: string }>('SELECT pg_current_snapshot()::text AS snapshot')).rows[0]!
      .snapshot;
  const { rows } = await db.query<{ tenant_id: string }>(
    `SELECT DISTINCT c.tenant_id FROM tenant_access_changes c
     WHERE c.xid >= pg_snapshot_xmin($1::pg_snapshot)
       AND NOT pg_visible_in_snapshot(c.xid, $1::pg_snapshot)
       AND pg_visible_in_snapshot(c.xid, $2::pg_snapshot)
       AND ($3::text IS NULL OR c.tenant_id > $3)
       AND ($4::text[] IS NULL OR c.tenant_id = ANY($4::text[]))
     ORDER BY c.tenant_id LIMIT $5`,
    [cursor.from, to, cursor.after ?? null, opts.tenants, opts.limit + 1],
  );
  const page = rows.slice(0, opts.limit).map((r) => r.tenant_id);
  const hasMore = rows.length > opts.limit;
  const tenants: TenantAccess[] = [];
  for (const id of page) {
    const access = await readTenantAccess(db, id, opts.now);
    if (access) tenants.push(access);
  }
  const next: Cursor = hasMore ? { from: cursor.from, to, after: page[page.length - 1]! } : { from: to };
  return { tenants, nextCursor: encodeCursor(next), hasMore };
}

// ---- Notices ----

/** The tenant's open notices, oldest first. */
export async function openNotices(db: Db, tenantId: string): Promise<Notice[]> {
  const { rows } = await db.query<NoticeRow>(
    `SELECT ${NOTICE_COLUMNS} FROM dashboard_notifications
     WHERE tenant_id = $1 AND dismissed_at IS NULL ORDER BY created_at, id`,
    [tenantId],
  );
  return rows.map(toNotice);
}

/**
 * Marks the tenant's notice acknowledged by `by`; one acknowledged or withdrawn already answers as it stands.
 * Undefined when the tenant has no such notice.
 */
export async function acknowledgeNotice(
  db: Db,
  tenantId: string,
  noticeId: string,
  by: string,
): Promise<Notice | undefined> {
  if (!/^\d{1,18}$/.test(noticeId)) return undefined;
  const updated = await db.query<NoticeRow>(
    `UPDATE dashboard_notifications SET dismissed_at = now(), dismissed_by = $3
     WHERE tenant_id = $1 AND id = $2 AND dismissed_at IS NULL RETURNING ${NOTICE_COLUMNS}`,
    [tenantId, noticeId, by],
  );
  if (updated.rows[0]) return toNotice(updated.rows[0]);
  const { rows } = await db.query<NoticeRow>(
    `SELECT ${NOTICE_COLUMNS} FROM dashboard_notifications WHERE tenant_id = $1 AND id = $2`,
    [tenantId, noticeId],
  );
  return rows[0] ? toNotice(rows[0]) : undefined;
}

/** The notice each level of dunning's hold posts (the runbook's soft limit, hard limit and suspension). */
const LIMIT_NOTICES = {
  throttled: {
    kind: 'softLimit',
    message: (percent: number, at: string) =>
      `Service limited to ${percent}% of normal capacity since ${at}: payment is overdue. Pay the outstanding invoice to restore full service.`,
  },
  blocked: {
    kind: 'hardLimit',
    message: (_percent: number, at: string) =>
      `New API requests blocked since ${at}: payment is overdue. Pay the outstanding invoice to restore service.`,
  },
  suspended: {
    kind: 'suspension',
    message: (_percent: number, at: string) =>
      `Account suspended since ${at}: payment could not be collected. Paying the outstanding balance restores your service.`,
  },
} as const;

/** The kinds dunning posts, withdrawn together when its hold is lifted. */
export const DUNNING_NOTICE_KINDS = ['downgradeWarning', 'softLimit', 'hardLimit', 'suspension'] as const;

/**
 * After a change of dunning's hold: its current level's notice is posted once per hold and level (a retried activity
 * posts nothing new); with no dunning hold left (payment recovered, grace extended), dunning's open notices are
 * withdrawn, so no banner outlives the restriction it announced.
 */
export async function syncDunningNotices(
  db: Db,
  controls: EnforcedServiceControls,
  now: Date = new Date(),
): Promise<void> {
  const hold = controls.holds.find((h) => h.source === 'dunning' && isActive(h, now.getTime()));
  if (!hold) {
    await db.query(
      `UPDATE dashboard_notifications SET dismissed_at = now(), dismissed_by = 'billops: service restored'
       WHERE tenant_id = $1 AND dismissed_at IS NULL AND kind = ANY($2::text[])`,
      [controls.tenantId, DUNNING_NOTICE_KINDS],
    );
    return;
  }
  if (hold.level === 'read_only') return;
  const notice = LIMIT_NOTICES[hold.level];
  await db.query(
    `INSERT INTO dashboard_notifications (idempotency_key, tenant_id, kind, message)
     VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING`,
    [
      `dunning-hold/${controls.tenantId}/${hold.since}/${notice.kind}`,
      controls.tenantId,
      notice.kind,
      notice.message(hold.rateLimitPercent, formatNoticeTime(now)),
    ],
  );
}
