-- Legal holds: while one is active for a tenant its data must be kept, so the dunning lifecycle's deletion refuses.
-- Placed and released by operators (`billops tenants hold`); a released hold stays as the record of who and why.

-- Up Migration

CREATE TABLE legal_holds (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  reason text NOT NULL CONSTRAINT legal_holds_reason_present CHECK (btrim(reason) <> ''),
  operator text NOT NULL CONSTRAINT legal_holds_operator_present CHECK (btrim(operator) <> ''),
  placed_at timestamptz NOT NULL DEFAULT now(),
  released_at timestamptz,
  released_by text,
  release_reason text,
  -- A release says when, who and why, or nothing at all.
  CONSTRAINT legal_holds_release_complete CHECK (
    (released_at IS NULL AND released_by IS NULL AND release_reason IS NULL)
    OR (released_at IS NOT NULL AND btrim(released_by) <> '' AND btrim(release_reason) <> '')
  ),
  CONSTRAINT legal_holds_released_after_placed CHECK (released_at IS NULL OR released_at >= placed_at)
);
-- One active hold per tenant: a second matter adds to the reason of the first, so a release lifts everything at once.
CREATE UNIQUE INDEX legal_holds_one_active_per_tenant ON legal_holds (tenant_id) WHERE released_at IS NULL;
CREATE INDEX legal_holds_tenant_placed_idx ON legal_holds (tenant_id, placed_at DESC);

-- Down Migration

DROP TABLE legal_holds;
