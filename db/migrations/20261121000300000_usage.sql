-- Usage metering: raw usage events, the hourly rollups computed from them, and each aggregation run.

-- Up Migration

CREATE TABLE usage_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  meter text NOT NULL CONSTRAINT usage_events_meter_format CHECK (meter ~ '^[a-z][a-z0-9_.]{0,63}$'),
  quantity numeric NOT NULL CONSTRAINT usage_events_quantity_not_negative CHECK (quantity >= 0),
  occurred_at timestamptz NOT NULL,
  idempotency_key text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT usage_events_idempotency_key_unique UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX usage_events_tenant_meter_occurred_idx ON usage_events (tenant_id, meter, occurred_at);
-- "Check usage_events ingestion (last event timestamp)" and backfills by arrival window.
CREATE INDEX usage_events_received_idx ON usage_events (received_at);

CREATE TABLE rollup_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  window_start timestamptz NOT NULL,
  window_end timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'running' CONSTRAINT rollup_runs_status_known CHECK (status IN ('running', 'succeeded', 'failed')),
  attempt integer NOT NULL DEFAULT 1 CONSTRAINT rollup_runs_attempt_positive CHECK (attempt > 0),
  workflow_id text,
  events_processed bigint CONSTRAINT rollup_runs_events_not_negative CHECK (events_processed >= 0),
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  error text,
  CONSTRAINT rollup_runs_window_ordered CHECK (window_end > window_start),
  CONSTRAINT rollup_runs_finished_has_time CHECK (status = 'running' OR finished_at IS NOT NULL),
  CONSTRAINT rollup_runs_failure_has_error CHECK (status <> 'failed' OR error IS NOT NULL)
);
CREATE INDEX rollup_runs_status_started_idx ON rollup_runs (status, started_at DESC);
CREATE INDEX rollup_runs_window_idx ON rollup_runs (window_start, window_end);

CREATE TABLE usage_rollups (
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  meter text NOT NULL CONSTRAINT usage_rollups_meter_format CHECK (meter ~ '^[a-z][a-z0-9_.]{0,63}$'),
  -- The start of the hour, whatever the session time zone (epoch seconds divisible by 3600).
  hour timestamptz NOT NULL CONSTRAINT usage_rollups_hour_aligned CHECK (extract(epoch FROM hour) % 3600 = 0),
  quantity numeric NOT NULL CONSTRAINT usage_rollups_quantity_not_negative CHECK (quantity >= 0),
  event_count bigint NOT NULL CONSTRAINT usage_rollups_event_count_not_negative CHECK (event_count >= 0),
  run_id bigint REFERENCES rollup_runs (id) ON DELETE SET NULL,
  computed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, meter, hour)
);
CREATE INDEX usage_rollups_hour_idx ON usage_rollups (hour);

-- Down Migration

DROP TABLE usage_rollups;
DROP TABLE rollup_runs;
DROP TABLE usage_events;
