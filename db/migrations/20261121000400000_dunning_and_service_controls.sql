-- Dunning records, per-tenant service controls with their append-only history, billing holds and dashboard notifications.

-- Up Migration

CREATE TABLE dunning_records (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  workflow_id text NOT NULL,
  phase text NOT NULL CONSTRAINT dunning_records_phase_known CHECK (
    phase IN ('retrying', 'grace', 'warning', 'soft_limited', 'hard_limited', 'suspended', 'deleted', 'recovered')
  ),
  invoice_ids text[] NOT NULL DEFAULT '{}',
  started_at timestamptz NOT NULL DEFAULT now(),
  grace_ends_at timestamptz,
  closed_at timestamptz,
  outcome text CONSTRAINT dunning_records_outcome_known CHECK (outcome IN ('recovered', 'deleted', 'canceled', 'written_off')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dunning_records_closed_has_outcome CHECK ((closed_at IS NULL) = (outcome IS NULL)),
  CONSTRAINT dunning_records_grace_after_start CHECK (grace_ends_at IS NULL OR grace_ends_at >= started_at)
);
-- One lifecycle per tenant at a time, as the workflow id dunning-<tenantId> is.
CREATE UNIQUE INDEX dunning_records_one_open_per_tenant ON dunning_records (tenant_id) WHERE closed_at IS NULL;
CREATE INDEX dunning_records_tenant_created_idx ON dunning_records (tenant_id, created_at DESC);
CREATE INDEX dunning_records_open_phase_idx ON dunning_records (phase) WHERE closed_at IS NULL;
CREATE TRIGGER dunning_records_updated_at BEFORE UPDATE ON dunning_records
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

-- What the API gateway enforces for a tenant right now; 100% is normal capacity, soft limit is 10%.
CREATE TABLE service_controls (
  tenant_id text PRIMARY KEY REFERENCES tenants (id) ON DELETE RESTRICT,
  rate_limit_percent smallint NOT NULL DEFAULT 100
    CONSTRAINT service_controls_rate_limit_percent_range CHECK (rate_limit_percent BETWEEN 0 AND 100),
  api_blocked boolean NOT NULL DEFAULT false,
  suspended boolean NOT NULL DEFAULT false,
  read_only boolean NOT NULL DEFAULT false,
  reason text,
  workflow_id text,
  updated_by text NOT NULL DEFAULT 'system',
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_controls_restricted_idx ON service_controls (tenant_id)
  WHERE rate_limit_percent < 100 OR api_blocked OR suspended OR read_only;
CREATE TRIGGER service_controls_updated_at BEFORE UPDATE ON service_controls
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

-- Every manual override is documented: each state a tenant's controls take is one row here, written by trigger.
CREATE TABLE service_control_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  rate_limit_percent smallint NOT NULL,
  api_blocked boolean NOT NULL,
  suspended boolean NOT NULL,
  read_only boolean NOT NULL,
  reason text,
  workflow_id text,
  changed_by text NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_control_changes_tenant_changed_idx ON service_control_changes (tenant_id, changed_at DESC);
CREATE TRIGGER service_control_changes_append_only BEFORE UPDATE OR DELETE ON service_control_changes
  FOR EACH ROW EXECUTE FUNCTION billops_forbid_change();

CREATE FUNCTION billops_record_service_control_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO service_control_changes
    (tenant_id, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, changed_by)
  VALUES
    (NEW.tenant_id, NEW.rate_limit_percent, NEW.api_blocked, NEW.suspended, NEW.read_only, NEW.reason,
     NEW.workflow_id, NEW.updated_by);
  RETURN NULL;
END;
$$;
CREATE TRIGGER service_controls_history_on_insert AFTER INSERT ON service_controls
  FOR EACH ROW EXECUTE FUNCTION billops_record_service_control_change();
-- A retried activity that sets the same state again adds no history row.
CREATE TRIGGER service_controls_history_on_update AFTER UPDATE ON service_controls
  FOR EACH ROW
  WHEN ((OLD.rate_limit_percent, OLD.api_blocked, OLD.suspended, OLD.read_only)
        IS DISTINCT FROM (NEW.rate_limit_percent, NEW.api_blocked, NEW.suspended, NEW.read_only))
  EXECUTE FUNCTION billops_record_service_control_change();

-- Every tenant has controls from the moment it exists, so enforcement never meets a missing row.
CREATE FUNCTION billops_create_service_controls() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO service_controls (tenant_id, reason, updated_by)
  VALUES (NEW.id, 'tenant created', 'system')
  ON CONFLICT (tenant_id) DO NOTHING;
  RETURN NULL;
END;
$$;
CREATE TRIGGER tenants_create_service_controls AFTER INSERT ON tenants
  FOR EACH ROW EXECUTE FUNCTION billops_create_service_controls();
INSERT INTO service_controls (tenant_id, reason, updated_by)
  SELECT id, 'tenant created', 'system' FROM tenants
  ON CONFLICT (tenant_id) DO NOTHING;

-- "Stop invoice generation" / "stop further billing for affected meter/tenant": no tenant means every tenant.
CREATE TABLE billing_holds (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text REFERENCES tenants (id) ON DELETE RESTRICT,
  meter text CONSTRAINT billing_holds_meter_format CHECK (meter ~ '^[a-z][a-z0-9_.]{0,63}$'),
  reason text NOT NULL CONSTRAINT billing_holds_reason_present CHECK (btrim(reason) <> ''),
  workflow_id text,
  idempotency_key text UNIQUE,
  held_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  released_by text,
  CONSTRAINT billing_holds_release_has_who CHECK ((released_at IS NULL) = (released_by IS NULL))
);
CREATE INDEX billing_holds_active_idx ON billing_holds (tenant_id, meter) WHERE released_at IS NULL;

-- The runbook's "dashboard notification": shown to the tenant until dismissed.
CREATE TABLE dashboard_notifications (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  kind text NOT NULL CONSTRAINT dashboard_notifications_kind_format CHECK (kind ~ '^[A-Za-z][A-Za-z0-9_.-]{0,63}$'),
  message text NOT NULL CONSTRAINT dashboard_notifications_message_present CHECK (btrim(message) <> ''),
  idempotency_key text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  dismissed_at timestamptz
);
CREATE INDEX dashboard_notifications_active_idx ON dashboard_notifications (tenant_id, created_at DESC)
  WHERE dismissed_at IS NULL;

-- Down Migration

DROP TABLE dashboard_notifications;
DROP TABLE billing_holds;
DROP TRIGGER tenants_create_service_controls ON tenants;
DROP FUNCTION billops_create_service_controls();
DROP TABLE service_controls;
DROP FUNCTION billops_record_service_control_change();
DROP TABLE service_control_changes;
DROP TABLE dunning_records;
