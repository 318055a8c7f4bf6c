-- The access API (GET /v1/tenants/{id}/access, GET /v1/access?changedSince=) and the in-app notices API: key scopes
-- for them, who dismissed a notice, and one log of every change to what a tenant's access answer says, whose writing
-- transaction is the cursor gateways sync from.

-- Up Migration

ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_known;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known CHECK (
  cardinality(scopes) > 0 AND scopes <@ ARRAY['usage:write', 'usage:read', 'access:read', 'notices:write']::text[]
);

-- dismissed_at is when a notice stopped showing; dismissed_by says whether the tenant acknowledged it (api-key:<id>)
-- or billops withdrew it (service restored).
ALTER TABLE dashboard_notifications ADD COLUMN dismissed_by text;

-- One row each time something in a tenant's access answer may have changed: a hold, the enforced controls, deletion,
-- a notice, a payment link. No foreign key, so a tenant's deletion is never blocked by its history here.
CREATE TABLE tenant_access_changes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id text NOT NULL,
  what text NOT NULL,
  -- Set for a hold whose `until` passed: logged once per hold end, when a gateway next syncs.
  hold_source text,
  hold_until timestamptz,
  changed_at timestamptz NOT NULL DEFAULT now(),
  -- The writing transaction: a sync cursor is a snapshot, so a change committed late (a lower id after a higher one)
  -- is still handed out once.
  xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX tenant_access_changes_xid_idx ON tenant_access_changes (xid);
CREATE UNIQUE INDEX tenant_access_changes_hold_expiry ON tenant_access_changes (tenant_id, hold_source, hold_until)
  WHERE hold_until IS NOT NULL;

CREATE FUNCTION billops_log_access_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tenant_access_changes (tenant_id, what) VALUES (NEW.tenant_id, TG_TABLE_NAME);
  RETURN NULL;
END;
$$;

CREATE FUNCTION billops_log_tenant_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO tenant_access_changes (tenant_id, what) VALUES (NEW.id, 'tenants');
  RETURN NULL;
END;
$$;

CREATE TRIGGER service_control_hold_changes_access AFTER INSERT ON service_control_hold_changes
  FOR EACH ROW EXECUTE FUNCTION billops_log_access_change();
CREATE TRIGGER service_controls_access AFTER UPDATE ON service_controls
  FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION billops_log_access_change();
CREATE TRIGGER dashboard_notifications_access AFTER INSERT OR UPDATE OF dismissed_at ON dashboard_notifications
  FOR EACH ROW EXECUTE FUNCTION billops_log_access_change();
CREATE TRIGGER invoices_access AFTER INSERT OR UPDATE OF status, hosted_invoice_url, amount_paid_minor ON invoices
  FOR EACH ROW EXECUTE FUNCTION billops_log_access_change();
CREATE TRIGGER tenants_access AFTER UPDATE OF deleted_at ON tenants
  FOR EACH ROW WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at) EXECUTE FUNCTION billops_log_tenant_deletion();

-- Down Migration

DROP TRIGGER tenants_access ON tenants;
DROP TRIGGER invoices_access ON invoices;
DROP TRIGGER dashboard_notifications_access ON dashboard_notifications;
DROP TRIGGER service_controls_access ON service_controls;
DROP TRIGGER service_control_hold_changes_access ON service_control_hold_changes;
DROP FUNCTION billops_log_tenant_deletion();
DROP FUNCTION billops_log_access_change();
DROP TABLE tenant_access_changes;
ALTER TABLE dashboard_notifications DROP COLUMN dismissed_by;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_known;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known CHECK (
  cardinality(scopes) > 0 AND scopes <@ ARRAY['usage:write', 'usage:read']::text[]
);
