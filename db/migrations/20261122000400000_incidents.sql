-- Incidents as the dashboard and reports see them, the operational overrides an incident sets (and clears), the
-- critical operations queued while billing is read-only, and the status-page updates posted.

-- Up Migration

CREATE TABLE incidents (
  workflow_id text PRIMARY KEY,
  kind text NOT NULL CONSTRAINT incidents_kind_format CHECK (kind ~ '^[a-z][a-z_]{0,63}$'),
  incident_key text NOT NULL,
  severity text NOT NULL CONSTRAINT incidents_severity_known CHECK (severity IN ('P1', 'P2', 'P3', 'P4')),
  status text NOT NULL DEFAULT 'open'
    CONSTRAINT incidents_status_known CHECK (status IN ('open', 'acknowledged', 'resolved', 'closed')),
  summary text NOT NULL,
  source text NOT NULL,
  opened_at timestamptz NOT NULL,
  opened_by text NOT NULL,
  acknowledged_at timestamptz,
  acknowledged_by text,
  escalation_level smallint NOT NULL DEFAULT 0,
  resolved_at timestamptz,
  resolved_by text,
  resolution text,
  tenants_affected integer NOT NULL DEFAULT 0,
  credits_minor bigint NOT NULL DEFAULT 0,
  credits_currency char(3),
  report_md text,
  rca_summary text,
  rca_by text,
  rca_at timestamptz,
  rca_reminded_at timestamptz,
  timeline jsonb NOT NULL DEFAULT '[]'::jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_open_idx ON incidents (kind, opened_at DESC) WHERE status <> 'closed';

-- Seed 000 "Document all manual overrides": each one set by an incident, kept after it is cleared.
CREATE TABLE operational_overrides (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL CONSTRAINT operational_overrides_name_format CHECK (name ~ '^[a-z][a-z0-9_.:-]{0,127}$'),
  value jsonb NOT NULL DEFAULT '{}'::jsonb,
  reason text NOT NULL CONSTRAINT operational_overrides_reason_present CHECK (btrim(reason) <> ''),
  workflow_id text,
  idempotency_key text NOT NULL UNIQUE,
  set_by text NOT NULL,
  set_at timestamptz NOT NULL DEFAULT now(),
  cleared_at timestamptz,
  cleared_by text,
  CONSTRAINT operational_overrides_clear_has_who CHECK ((cleared_at IS NULL) = (cleared_by IS NULL))
);
-- At most one active override per name (e.g. one processor route, one read-only switch).
CREATE UNIQUE INDEX operational_overrides_active_key ON operational_overrides (name) WHERE cleared_at IS NULL;

-- Seed 000 "Queue critical operations (payments, suspensions)" while billing writes fail; replayed afterwards.
CREATE TABLE queued_operations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CONSTRAINT queued_operations_kind_known CHECK (kind IN ('payment', 'suspension', 'service_control', 'other')),
  tenant_id text,
  payload jsonb NOT NULL,
  idempotency_key text NOT NULL UNIQUE,
  status text NOT NULL DEFAULT 'queued' CONSTRAINT queued_operations_status_known CHECK (status IN ('queued', 'replayed', 'failed')),
  workflow_id text,
  queued_at timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz,
  error text
);
CREATE INDEX queued_operations_queued_idx ON queued_operations (queued_at) WHERE status = 'queued';

CREATE TABLE status_page_updates (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  idempotency_key text NOT NULL UNIQUE,
  workflow_id text,
  status text NOT NULL CONSTRAINT status_page_updates_status_known
    CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
  message text NOT NULL,
  delivered text NOT NULL CONSTRAINT status_page_updates_delivered_known CHECK (delivered IN ('posted', 'not_configured')),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration

DROP TABLE status_page_updates;
DROP TABLE queued_operations;
DROP TABLE operational_overrides;
DROP TABLE incidents;
