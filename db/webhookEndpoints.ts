// Outbound webhook endpoints in the database: the product's URLs, the events and tenants each wants, and their
// signing secrets (current, and the previous one while a rotation is under way).
import { randomBytes } from 'node:crypto';
import type { ClientBase } from 'pg';
import {
  endpointUrlProblem,
  isOutboundEventType,
  OUTBOUND_EVENT_TYPES,
  PREVIOUS_SECRET_VALID_HOURS,
  type OutboundEventType,
} from '../domain/outboundWebhooks';

type Db = Pick<ClientBase, 'query'>;

export class EndpointInputError extends Error {
  override name = 'EndpointInputError';
}

interface EndpointRow {
  id: string;
  url: string;
  events: string[] | null;
  tenants: string[] | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  removed_at: Date | null;
}

/** An endpoint as listed: never its secrets. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  /** null: every event type. */
  events: OutboundEventType[] | null;
  /** null: every tenant (and the events that concern no single tenant). */
  tenants: string[] | null;
  createdAt: string;
  removedAt: string | null;
  /** Until when the previous secret still signs, after a rotation. */
  previousSecretExpiresAt: string | null;
}

export interface EndpointSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: string | null;
}

export interface NewEndpoint {
  url: string;
  events: OutboundEventType[] | null;
  tenants: string[] | null;
}

/** whsec_ + 32 random bytes: the secret the receiver verifies with. */
function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

export async function createEndpoint(
  db: Db,
  input: NewEndpoint,
): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
  const problem = endpointUrlProblem(input.url);
  if (problem) throw new EndpointInputError(`endpoint URL refused: ${problem}`);
  const unknown = (input.events ?? []).filter((e) => !isOutboundEventType(e));
  if (unknown.length > 0) {
    throw new EndpointInputError(
      `unknown event type ${unknown.join(', ')}: use ${OUTBOUND_EVENT_TYPES.join(', ')}`,
    );
  }
  const id = `we_${randomBytes(6).toString('hex')}`;
  const secret = newSecret();
  const { rows } = await db.query<EndpointRow>(
    `INSERT INTO webhook_endpoints (id, url, events, tenants, secret) VALUES ($1, $2, $3, $4, $5) RETURNING *`,
    [id, input.url, input.events, input.tenants, secret],
  );
  return { endpoint: toEndpoint(rows[0]!), secret };
}

export async function listEndpoints(
  db: Db,
  opts: { includeRemoved?: boolean } = {},
): Promise<WebhookEndpoint[]> {
  const { rows } = await db.query<EndpointRow>(
    `SELECT * FROM webhook_endpoints WHERE $1::boolean OR removed_at IS NULL ORDER BY created_at, id`,
    [opts.includeRemoved ?? false],
  );
  return rows.map(toEndpoint);
}

/** Stops new deliveries to it; pending ones are marked failed as they come up. Undefined when there is no such endpoint. */
export async function removeEndpoint(
  db: Db,
  id: string,
): Promise<{ endpoint: WebhookEndpoint; alreadyRemoved: boolean } | undefined> {
  const { rows } = await db.query<EndpointRow & { was_removed: boolean }>(
    `UPDATE webhook_endpoints e SET removed_at = COALESCE(e.removed_at, now())
     FROM (SELECT id, removed_at IS NOT NULL AS was_removed FROM webhook_endpoints WHERE id = $1 FOR UPDATE) old
     WHERE e.id = old.id RETURNING e.*, old.was_removed`,
    [id],
  );
  const row = rows[0];
  return row ? { endpoint: toEndpoint(row), alreadyRemoved: row.was_removed } : undefined;
}

/** A new current secret; the old one keeps signing for PREVIOUS_SECRET_VALID_HOURS. Undefined: no such live endpoint. */
export async function rotateEndpointSecret(
  db: Db,
  id: string,
): Promise<{ endpoint: WebhookEndpoint; secret: string } | undefined> {
  const secret = newSecret();
  const { rows } = await db.query<EndpointRow>(
    `UPDATE webhook_endpoints SET previous_secret = secret, secret = $2,
       previous_secret_expires_at = now() + make_interval(hours => $3)
     WHERE id = $1 AND removed_at IS NULL RETURNING *`,
    [id, secret, PREVIOUS_SECRET_VALID_HOURS],
  );
  const row = rows[0];
  return row ? { endpoint: toEndpoint(row), secret } : undefined;
}

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    events: row.events as OutboundEventType[] | null,
    tenants: row.tenants,
    createdAt: row.created_at.toISOString(),
    removedAt: row.removed_at?.toISOString() ?? null,
    previousSecretExpiresAt: row.previous_secret_expires_at?.toISOString() ?? null,
  };
}
