-- API keys for usage producers (stored as a SHA-256 of the secret), and idempotency keys scoped to the producer.

-- Up Migration

CREATE TABLE api_keys (
  -- The non-secret part of the key (bk_<id>_<secret>): how a presented key is found before its hash is compared.
  id text PRIMARY KEY CONSTRAINT api_keys_id_format CHECK (id ~ '^[a-z0-9]{12}$'),
  name text NOT NULL DEFAULT '',
  secret_hash bytea NOT NULL CONSTRAINT api_keys_secret_hash_sha256 CHECK (octet_length(secret_hash) = 32),
  scopes text[] NOT NULL CONSTRAINT api_keys_scopes_known
    CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['usage:write', 'usage:read']::text[]),
  -- NULL: every tenant.
  tenants text[] CONSTRAINT api_keys_tenants_not_empty CHECK (tenants IS NULL OR cardinality(tenants) > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);

-- The producer is the API key that sent the event; events recorded before keys existed have none.
ALTER TABLE usage_events ADD COLUMN producer_key_id text REFERENCES api_keys (id) ON DELETE RESTRICT;
ALTER TABLE usage_events DROP CONSTRAINT usage_events_idempotency_key_unique;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_idempotency_key_unique
  UNIQUE NULLS NOT DISTINCT (tenant_id, idempotency_key, producer_key_id);

-- Down Migration

ALTER TABLE usage_events DROP CONSTRAINT usage_events_idempotency_key_unique;
ALTER TABLE usage_events DROP COLUMN producer_key_id;
ALTER TABLE usage_events ADD CONSTRAINT usage_events_idempotency_key_unique UNIQUE (tenant_id, idempotency_key);
DROP TABLE api_keys;
