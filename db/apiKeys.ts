// The API keys usage producers present: created with a random secret shown once, stored as its SHA-256, listed, revoked.
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { ClientBase } from 'pg';

type Queryable = Pick<ClientBase, 'query'>;

/** Usage producers write and read usage; gateways and the product read access (`access:read`) and acknowledge notices. */
export const API_KEY_SCOPES = ['usage:write', 'usage:read', 'access:read', 'notices:write'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** The file under the data directory where `npm start` keeps the local demo key that `billops usage load` reads. */
export const LOCAL_API_KEY_FILE = 'usage-api-key';

/** bk_<id>_<secret>: the id finds the row, the whole key is hashed; 32 random bytes make a plain SHA-256 enough. */
const KEY_FORMAT = /^bk_([a-z0-9]{12})_[A-Za-z0-9_-]{43}$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** How often last_used_at is written at most, so a busy producer costs no write per request. */
const LAST_USED_RESOLUTION = '1 minute';

/** An API key as listed: everything but its secret, which is never stored. */
export interface ApiKey {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
  /** The tenants its events may name; null: every tenant. */
  tenants: string[] | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface NewApiKey {
  name: string;
  scopes: readonly ApiKeyScope[];
  tenants: readonly string[] | null;
}

/** A key that cannot be created as asked (a tenant that does not exist). */
export class ApiKeyInputError extends Error {
  override name = 'ApiKeyInputError';
}

export type ApiKeyCheck =
  | { ok: true; key: ApiKey }
  | { ok: false; problem: 'malformed' | 'unknown' | 'revoked' };

interface ApiKeyRow {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
  tenants: string[] | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'id, name, scopes, tenants, created_at, last_used_at, revoked_at';

function fromRow(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    tenants: row.tenants,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  };
}

function sha256(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Creates a key and returns it with its secret, which exists nowhere else afterwards. */
export async function createApiKey(
  db: Queryable,
  input: NewApiKey,
): Promise<{ key: ApiKey; secret: string }> {
  if (input.tenants) {
    const { rows } = await db.query<{ id: string }>(
      `SELECT t.id FROM unnest($1::text[]) AS t(id)
       WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE tenants.id = t.id AND deleted_at IS NULL)`,
      [input.tenants],
    );
    if (rows.length > 0) {
      throw new ApiKeyInputError(
        `unknown tenant ${rows.map((r) => r.id).join(', ')}: add it first (billops tenants add) or leave it out`,
      );
    }
  }
  const id = Array.from({ length: 12 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join('');
  const secret = `bk_${id}_${randomBytes(32).toString('base64url')}`;
  const { rows } = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (id, name, secret_hash, scopes, tenants) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
    [
      id,
      input.name,
      sha256(secret),
      [...new Set(input.scopes)],
      input.tenants ? [...new Set(input.tenants)] : null,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error('creating the API key returned no row');
  return { key: fromRow(row), secret };
}

/** Every key, newest first, without secrets. */
export async function listApiKeys(db: Queryable): Promise<ApiKey[]> {
  const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys ORDER BY created_at DESC, id`);
  return rows.map(fromRow);
}

/** Revokes a key from now on; answers the key as it now stands and whether it was revoked already, or undefined. */
export async function revokeApiKey(
  db: Queryable,
  id: string,
): Promise<{ key: ApiKey; alreadyRevoked: boolean } | undefined> {
  // The self-join reads the row as it was before this statement, so `already` tells a second revoke from the first.
  const { rows } = await db.query<ApiKeyRow & { already: boolean }>(
    `UPDATE api_keys k SET revoked_at = COALESCE(old.revoked_at, now())
     FROM api_keys old WHERE old.id = k.id AND k.id = $1
     RETURNING ${COLUMNS.replace(/(\w+)/g, 'k.$1')}, old.revoked_at IS NOT NULL AS already`,
    [id],
  );
  const row = rows[0];
  return row ? { key: fromRow(row), alreadyRevoked: row.already } : undefined;
}

/**
 * The key a producer presented, found by its id and compared by hash in constant time; a revoked key is refused.
 * Records when the key was last used (at most once a minute).
 */
export async function authenticateApiKey(db: Queryable, presented: string): Promise<ApiKeyCheck> {
  const id = KEY_FORMAT.exec(presented)?.[1];
  if (!id) return { ok: false, problem: 'malformed' };
  const { rows } = await db.query<ApiKeyRow & { secret_hash: Buffer }>(
    `SELECT ${COLUMNS}, secret_hash FROM api_keys WHERE id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row || !timingSafeEqual(row.secret_hash, sha256(presented))) return { ok: false, problem: 'unknown' };
  if (row.revoked_at) return { ok: false, problem: 'revoked' };
  await db.query(
    `UPDATE api_keys SET last_used_at = now()
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '${LAST_USED_RESOLUTION}')`,
    [id],
  );
  return { ok: true, key: fromRow(row) };
}
