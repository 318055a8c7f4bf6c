-- Outbound webhooks to the product's endpoints: the endpoints (with a current and, while it rotates, a previous
-- secret), the outbox of events written in the same transaction as the change they describe, one delivery per event
-- and endpoint kept in order per (endpoint, tenant), and every attempt of a delivery.

-- Up Migration

CREATE TABLE webhook_endpoints (
  id text PRIMARY KEY,
  url text NOT NULL CONSTRAINT webhook_endpoints_url_http CHECK (url ~ '^https?://'),
  -- null: every event type / every tenant
  events text[],
  tenants text[],
  -- The receiver needs the secret itself to verify, so it is kept (never printed after `endpoints add`).
  secret text NOT NULL,
  previous_secret text,
  previous_secret_expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  removed_at timestamptz
);

CREATE TABLE webhook_outbox_events (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id text NOT NULL UNIQUE,
  type text NOT NULL,
  tenant_id text,
  -- The exact body every attempt sends and signs.
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_outbox_events_tenant_idx ON webhook_outbox_events (tenant_id, seq);

CREATE TABLE webhook_deliveries (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  endpoint_id text NOT NULL REFERENCES webhook_endpoints (id),
  event_seq bigint NOT NULL REFERENCES webhook_outbox_events (seq),
  -- The tenant id, or '_' for an event that concerns no single tenant: deliveries of one stream go out in order.
  stream text NOT NULL,
  status text NOT NULL DEFAULT 'pending'
    CONSTRAINT webhook_deliveries_status_known CHECK (status IN ('pending', 'delivered', 'failed')),
  -- 1, then one more each time an operator redelivers it; attempts count within the round.
  round integer NOT NULL DEFAULT 1,
  attempts integer NOT NULL DEFAULT 0,
  -- On the delivering workflow's clock, so the retry schedule survives a new run.
  first_attempt_at timestamptz,
  last_attempt_at timestamptz,
  last_status integer,
  last_error text,
  finished_at timestamptz,
  -- When its stream's delivery workflow was last told about it; null: not yet.
  dispatched_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (endpoint_id, stream, event_seq)
  WHERE status = 'pending';
CREATE INDEX webhook_deliveries_undispatched_idx ON webhook_deliveries (id)
  WHERE status = 'pending' AND dispatched_at IS NULL;

CREATE TABLE webhook_delivery_attempts (
  delivery_id bigint NOT NULL REFERENCES webhook_deliveries (id),
  round integer NOT NULL,
  attempt integer NOT NULL,
  attempted_at timestamptz NOT NULL,
  status_code integer,
  error text,
  outcome text NOT NULL,
  PRIMARY KEY (delivery_id, round, attempt)
);

-- Down Migration

DROP TABLE webhook_delivery_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_outbox_events;
DROP TABLE webhook_endpoints;
