// Outbound webhooks in the database: endpoints and their secrets, the outbox written in the caller's transaction,
// deliveries in order per (endpoint, tenant) and their attempts.
import { randomBytes } from 'node:crypto';
import type { ClientBase } from 'pg';
import { EndpointInputError, type EndpointSecrets } from './webhookEndpoints';
import {
  ANSWER_KEPT_CHARS,
  NO_TENANT_STREAM,
  type DeliveryStatus,
  type OutboundEventType,
} from '../domain/outboundWebhooks';

type Db = Pick<ClientBase, 'query'>;

export {
  createEndpoint,
  EndpointInputError,
  listEndpoints,
  removeEndpoint,
  rotateEndpointSecret,
  type EndpointSecrets,
  type NewEndpoint,
  type WebhookEndpoint,
} from './webhookEndpoints';

export interface OutboundEvent {
  type: OutboundEventType;
  /** null for an event that concerns no single tenant (an incident). */
  tenantId: string | null;
  data: Record<string, unknown>;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  url: string;
  eventId: string;
  eventType: OutboundEventType;
  tenantId: string | null;
  status: DeliveryStatus;
  round: number;
  attempts: number;
  firstAttemptAt: string | null;
  lastAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  finishedAt: string | null;
  createdAt: string;
}

/** What the delivering workflow needs to send one delivery. */
export interface PendingDelivery extends WebhookDelivery, EndpointSecrets {
  body: string;
  endpointRemoved: boolean;
}

interface DeliveryRow {
  id: string;
  endpoint_id: string;
  url: string;
  event_id: string;
  type: OutboundEventType;
  tenant_id: string | null;
  status: DeliveryStatus;
  round: number;
  attempts: number;
  first_attempt_at: Date | null;
  last_attempt_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  finished_at: Date | null;
  created_at: Date;
}

const DELIVERY_COLUMNS = `d.id::text AS id, d.endpoint_id, e.url, ev.id AS event_id, ev.type, ev.tenant_id, d.status,
  d.round, d.attempts, d.first_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.finished_at, d.created_at`;
const DELIVERY_FROM = `webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
  JOIN webhook_outbox_events ev ON ev.seq = d.event_seq`;

/**
 * Writes the event to the outbox and one pending delivery per live endpoint that wants it, in the caller's
 * transaction, so the event exists exactly when the change it describes does. Returns the event id.
 */
export async function recordOutboundEvent(db: Db, event: OutboundEvent): Promise<string> {
  const id = `evt_${randomBytes(12).toString('hex')}`;
  const { rows } = await db.query<{ seq: string; created_at: Date }>(
    `INSERT INTO webhook_outbox_events (id, type, tenant_id, body) VALUES ($1, $2, $3, '') RETURNING seq, created_at`,
    [id, event.type, event.tenantId],
  );
  const stored = rows[0]!;
  const body = JSON.stringify({
    id,
    type: event.type,
    created: stored.created_at.toISOString(),
    tenantId: event.tenantId,
    data: event.data,
  });
  await db.query('UPDATE webhook_outbox_events SET body = $2 WHERE seq = $1', [stored.seq, body]);
  // An endpoint limited to some tenants gets only their events; one for every tenant also gets tenantless ones.
  await db.query(
    `INSERT INTO webhook_deliveries (endpoint_id, event_seq, stream)
     SELECT e.id, $1, $4 FROM webhook_endpoints e
     WHERE e.removed_at IS NULL
       AND (e.events IS NULL OR $2 = ANY (e.events))
       AND (e.tenants IS NULL OR ($3::text IS NOT NULL AND $3 = ANY (e.tenants)))`,
    [stored.seq, event.type, event.tenantId, event.tenantId ?? NO_TENANT_STREAM],
  );
  return id;
}

/** The streams with a pending delivery their workflow has not been told about, oldest first. */
export async function undispatchedStreams(
  db: Db,
  limit = 100,
): Promise<{ endpointId: string; stream: string }[]> {
  const { rows } = await db.query<{ endpoint_id: string; stream: string }>(
    `SELECT endpoint_id, stream FROM webhook_deliveries
     WHERE status = 'pending' AND dispatched_at IS NULL
     GROUP BY endpoint_id, stream ORDER BY min(id) LIMIT $1`,
    [limit],
  );
  return rows.map((r) => ({ endpointId: r.endpoint_id, stream: r.stream }));
}

export async function markStreamDispatched(db: Db, endpointId: string, stream: string): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries SET dispatched_at = now()
     WHERE endpoint_id = $1 AND stream = $2 AND status = 'pending' AND dispatched_at IS NULL`,
    [endpointId, stream],
  );
}

/** The oldest pending delivery of the stream (event order), with what sending it needs; undefined when none. */
export function nextPendingDelivery(
  db: Db,
  endpointId: string,
  stream: string,
): Promise<PendingDelivery | undefined> {
  return pendingWhere(db, 'd.endpoint_id = $1 AND d.stream = $2', [endpointId, stream]);
}

/** One pending delivery by id, with what sending it needs; undefined when it is not pending (any more). */
export function pendingDelivery(db: Db, deliveryId: string): Promise<PendingDelivery | undefined> {
  return pendingWhere(db, 'd.id = $1', [deliveryId]);
}

async function pendingWhere(db: Db, where: string, params: unknown[]): Promise<PendingDelivery | undefined> {
  const { rows } = await db.query<
    DeliveryRow & {
      body: string;
      secret: string;
      previous_secret: string | null;
      previous_secret_expires_at: Date | null;
      removed_at: Date | null;
    }
  >(
    `SELECT ${DELIVERY_COLUMNS}, ev.body, e.secret, e.previous_secret, e.previous_secret_expires_at, e.removed_at
     FROM ${DELIVERY_FROM}
     WHERE ${where} AND d.status = 'pending'
     ORDER BY d.event_seq LIMIT 1`,
    params,
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    ...toDelivery(row),
    body: row.body,
    secret: row.secret,
    previousSecret: row.previous_secret,
    previousSecretExpiresAt: row.previous_secret_expires_at?.toISOString() ?? null,
    endpointRemoved: row.removed_at !== null,
  };
}

export interface AttemptRecord {
  deliveryId: string;
  round: number;
  attempt: number;
  /** On the delivering workflow's clock. */
  attemptedAt: string;
  statusCode: number | null;
  error: string | null;
  /** What the delivery becomes: still pending (retried), delivered, or failed for good. */
  outcome: DeliveryStatus;
}

/** Records one attempt and its outcome; a retried activity (same round and attempt) changes nothing again. */
export async function recordDeliveryAttempt(db: Db, a: AttemptRecord): Promise<void> {
  const error = a.error === null ? null : a.error.slice(0, ANSWER_KEPT_CHARS);
  const inserted = await db.query(
    `INSERT INTO webhook_delivery_attempts (delivery_id, round, attempt, attempted_at, status_code, error, outcome)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
    [a.deliveryId, a.round, a.attempt, a.attemptedAt, a.statusCode, error, a.outcome],
  );
  if (inserted.rowCount === 0) return;
  await db.query(
    `UPDATE webhook_deliveries SET attempts = $3, status = $4, last_attempt_at = $5,
       first_attempt_at = COALESCE(first_attempt_at, $5), last_status = $6, last_error = $7,
       finished_at = CASE WHEN $4 = 'pending' THEN NULL ELSE now() END
     WHERE id = $1 AND round = $2`,
    [a.deliveryId, a.round, a.attempt, a.outcome, a.attemptedAt, a.statusCode, error],
  );
}

/** Marks a pending delivery failed without an attempt (its endpoint was removed). */
export async function failDelivery(db: Db, deliveryId: string, reason: string): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries SET status = 'failed', last_error = $2, finished_at = now()
     WHERE id = $1 AND status = 'pending'`,
    [deliveryId, reason.slice(0, ANSWER_KEPT_CHARS)],
  );
}

export async function listDeliveries(
  db: Db,
  filter: { endpointId?: string; status?: DeliveryStatus; limit?: number } = {},
): Promise<WebhookDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM ${DELIVERY_FROM}
     WHERE ($1::text IS NULL OR d.endpoint_id = $1) AND ($2::text IS NULL OR d.status = $2)
     ORDER BY d.id DESC LIMIT $3`,
    [filter.endpointId ?? null, filter.status ?? null, filter.limit ?? 100],
  );
  return rows.map(toDelivery);
}

/** The attempts of a delivery, in order (all rounds). */
export async function deliveryAttempts(db: Db, deliveryId: string): Promise<AttemptRecord[]> {
  const { rows } = await db.query<{
    round: number;
    attempt: number;
    attempted_at: Date;
    status_code: number | null;
    error: string | null;
    outcome: DeliveryStatus;
  }>(
    `SELECT round, attempt, attempted_at, status_code, error, outcome FROM webhook_delivery_attempts
     WHERE delivery_id = $1 ORDER BY round, attempt`,
    [deliveryId],
  );
  return rows.map((r) => ({
    deliveryId,
    round: r.round,
    attempt: r.attempt,
    attemptedAt: r.attempted_at.toISOString(),
    statusCode: r.status_code,
    error: r.error,
    outcome: r.outcome,
  }));
}

/**
 * Puts a delivery back in its stream as pending, in a new round (attempts from zero, 7 days from its next attempt).
 * Undefined when there is no such delivery; refused while its endpoint is removed.
 */
export async function redeliver(db: Db, deliveryId: string): Promise<WebhookDelivery | undefined> {
  if (!/^\d+$/.test(deliveryId)) return undefined;
  const { rows } = await db.query<{ removed: boolean; stream: string }>(
    `SELECT e.removed_at IS NOT NULL AS removed, d.stream FROM webhook_deliveries d
     JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1`,
    [deliveryId],
  );
  const found = rows[0];
  if (!found) return undefined;
  if (found.removed) {
    throw new EndpointInputError(
      `delivery ${deliveryId}'s endpoint was removed: add the endpoint again instead`,
    );
  }
  await db.query(
    `UPDATE webhook_deliveries SET status = 'pending', round = round + 1, attempts = 0, first_attempt_at = NULL,
       last_attempt_at = NULL, last_status = NULL, last_error = NULL, finished_at = NULL, dispatched_at = NULL
     WHERE id = $1`,
    [deliveryId],
  );
  const again = await db.query<DeliveryRow>(
    `SELECT ${DELIVERY_COLUMNS} FROM ${DELIVERY_FROM} WHERE d.id = $1`,
    [deliveryId],
  );
  return toDelivery(again.rows[0]!);
}

/** A delivery's status and round; undefined when there is no such delivery. */
export async function deliveryState(
  db: Db,
  deliveryId: string,
): Promise<{ status: DeliveryStatus; round: number } | undefined> {
  const { rows } = await db.query<{ status: DeliveryStatus; round: number }>(
    'SELECT status, round FROM webhook_deliveries WHERE id = $1',
    [deliveryId],
  );
  return rows[0];
}

/** The stream a delivery belongs to, for waking its workflow. */
export async function deliveryStream(
  db: Db,
  deliveryId: string,
): Promise<{ endpointId: string; stream: string } | undefined> {
  if (!/^\d+$/.test(deliveryId)) return undefined;
  const { rows } = await db.query<{ endpoint_id: string; stream: string }>(
    'SELECT endpoint_id, stream FROM webhook_deliveries WHERE id = $1',
    [deliveryId],
  );
  return rows[0] ? { endpointId: rows[0].endpoint_id, stream: rows[0].stream } : undefined;
}

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    endpointId: row.endpoint_id,
    url: row.url,
    eventId: row.event_id,
    eventType: row.type,
    tenantId: row.tenant_id,
    status: row.status,
    round: row.round,
    attempts: row.attempts,
    firstAttemptAt: row.first_attempt_at?.toISOString() ?? null,
    lastAttemptAt: row.last_attempt_at?.toISOString() ?? null,
    lastStatus: row.last_status,
    lastError: row.last_error,
    finishedAt: row.finished_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
  };
}
