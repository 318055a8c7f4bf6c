-- Service control holds: each source (dunning, overage, incident, operator, maintenance) holds its own restriction;
-- service_controls stays what the gateway reads, kept as the most restrictive active hold, and
-- service_control_hold_changes says which source changed what.

-- Up Migration

CREATE TABLE service_control_holds (
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  source text NOT NULL CONSTRAINT service_control_holds_source_known CHECK (
    source IN ('dunning', 'overage', 'incident', 'operator', 'maintenance')
  ),
  rate_limit_percent smallint NOT NULL
    CONSTRAINT service_control_holds_rate_limit_percent_range CHECK (rate_limit_percent BETWEEN 0 AND 100),
  api_blocked boolean NOT NULL,
  suspended boolean NOT NULL,
  read_only boolean NOT NULL,
  -- The hold's most restrictive effect (domain/serviceControls.ts holdLevel).
  level text NOT NULL GENERATED ALWAYS AS (
    CASE WHEN suspended THEN 'suspended' WHEN api_blocked THEN 'blocked' WHEN read_only THEN 'read_only'
         ELSE 'throttled' END
  ) STORED,
  reason text NOT NULL CONSTRAINT service_control_holds_reason_present CHECK (btrim(reason) <> ''),
  workflow_id text,
  held_by text NOT NULL,
  since timestamptz NOT NULL DEFAULT now(),
  until timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, source),
  -- A source that restricts nothing holds no row.
  CONSTRAINT service_control_holds_restricts CHECK (rate_limit_percent < 100 OR api_blocked OR suspended OR read_only),
  CONSTRAINT service_control_holds_until_after_since CHECK (until IS NULL OR until > since)
);
CREATE TRIGGER service_control_holds_updated_at BEFORE UPDATE ON service_control_holds
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

-- One row per change of one source's hold: the hold before and after (null: none), the enforced state around it.
CREATE TABLE service_control_hold_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  source text NOT NULL,
  before jsonb,
  after jsonb,
  enforced_before jsonb NOT NULL,
  enforced_after jsonb NOT NULL,
  reason text NOT NULL,
  workflow_id text,
  changed_by text NOT NULL,
  changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_control_hold_changes_tenant_changed_idx
  ON service_control_hold_changes (tenant_id, changed_at DESC);
CREATE TRIGGER service_control_hold_changes_append_only BEFORE UPDATE OR DELETE ON service_control_hold_changes
  FOR EACH ROW EXECUTE FUNCTION billops_forbid_change();

-- The source whose change produced the enforced state, copied into its history.
ALTER TABLE service_controls ADD COLUMN source text;
ALTER TABLE service_control_changes ADD COLUMN source text;

CREATE OR REPLACE FUNCTION billops_record_service_control_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO service_control_changes
    (tenant_id, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, changed_by, source)
  VALUES
    (NEW.tenant_id, NEW.rate_limit_percent, NEW.api_blocked, NEW.suspended, NEW.read_only, NEW.reason,
     NEW.workflow_id, NEW.updated_by, NEW.source);
  RETURN NULL;
END;
$$;

-- Today's restricted rows become holds of the source that wrote them when its workflow id says so, else `operator`.
WITH migrated AS (
  INSERT INTO service_control_holds
    (tenant_id, source, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, held_by, since)
  SELECT tenant_id,
         CASE WHEN workflow_id LIKE 'dunning-%' THEN 'dunning'
              WHEN workflow_id LIKE 'overage-%' THEN 'overage'
              WHEN workflow_id LIKE 'incident-%' THEN 'incident'
              ELSE 'operator' END,
         rate_limit_percent, api_blocked, suspended, read_only,
         COALESCE(NULLIF(btrim(reason), ''), 'restricted before holds existed'), workflow_id, updated_by, updated_at
  FROM service_controls
  WHERE rate_limit_percent < 100 OR api_blocked OR suspended OR read_only
  RETURNING *
)
INSERT INTO service_control_hold_changes
  (tenant_id, source, before, after, enforced_before, enforced_after, reason, workflow_id, changed_by)
SELECT tenant_id, source, NULL,
       jsonb_build_object('rateLimitPercent', rate_limit_percent, 'apiBlocked', api_blocked, 'suspended', suspended,
                          'readOnly', read_only, 'level', level, 'since', since, 'until', until, 'reason', reason),
       state, state, 'migrated from the single service_controls row', workflow_id, 'migration'
FROM (
  SELECT m.*, jsonb_build_object('rateLimitPercent', rate_limit_percent, 'apiBlocked', api_blocked,
                                 'suspended', suspended, 'readOnly', read_only) AS state
  FROM migrated m
) enforced;

-- Down Migration

CREATE OR REPLACE FUNCTION billops_record_service_control_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO service_control_changes
    (tenant_id, rate_limit_percent, api_blocked, suspended, read_only, reason, workflow_id, changed_by)
  VALUES
    (NEW.tenant_id, NEW.rate_limit_percent, NEW.api_blocked, NEW.suspended, NEW.read_only, NEW.reason,
     NEW.workflow_id, NEW.updated_by);
  RETURN NULL;
END;
$$;
ALTER TABLE service_control_changes DROP COLUMN source;
ALTER TABLE service_controls DROP COLUMN source;
DROP TABLE service_control_hold_changes;
DROP TABLE service_control_holds;
