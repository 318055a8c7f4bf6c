-- Usage invoices: one line per meter priced from rollups × the rate in force, delivery state and hold records.

-- Up Migration

ALTER TABLE invoices
  -- Set on invoices built from usage rollups: the idempotency key of the generation run that created the invoice.
  ADD COLUMN generation_key text,
  ADD COLUMN delivered_at timestamptz,
  -- Who last held or released delivery, and why: manual overrides are documented.
  ADD COLUMN delivery_hold_reason text,
  ADD COLUMN delivery_hold_changed_by text,
  ADD COLUMN delivery_hold_changed_at timestamptz;
-- One usage invoice per tenant and period; a voided one may be generated again.
CREATE UNIQUE INDEX invoices_usage_tenant_period_key ON invoices (tenant_id, period_start, period_end)
  WHERE generation_key IS NOT NULL AND status <> 'void';
CREATE INDEX invoices_open_undelivered_idx ON invoices (tenant_id) WHERE status = 'open' AND delivered_at IS NULL;

-- A retried release finds the holds it released by its key.
ALTER TABLE billing_holds
  ADD COLUMN release_reason text,
  ADD COLUMN release_idempotency_key text;
CREATE INDEX billing_holds_release_key_idx ON billing_holds (release_idempotency_key)
  WHERE release_idempotency_key IS NOT NULL;

CREATE TABLE invoice_lines (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  invoice_id text NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
  meter text NOT NULL CONSTRAINT invoice_lines_meter_format CHECK (meter ~ '^[a-z][a-z0-9_.]{0,63}$'),
  quantity numeric NOT NULL CONSTRAINT invoice_lines_quantity_not_negative CHECK (quantity >= 0),
  -- The rate version that priced the line; a rate that priced an invoice cannot be deleted.
  rate_id bigint NOT NULL REFERENCES rates (id) ON DELETE RESTRICT,
  -- Rounded once for the whole line (half up), never per event.
  amount_minor bigint NOT NULL CONSTRAINT invoice_lines_amount_not_negative CHECK (amount_minor >= 0),
  description text NOT NULL CONSTRAINT invoice_lines_description_present CHECK (btrim(description) <> ''),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT invoice_lines_one_per_meter UNIQUE (invoice_id, meter)
);
CREATE INDEX invoice_lines_rate_idx ON invoice_lines (rate_id);

-- Down Migration

DROP TABLE invoice_lines;
DROP INDEX billing_holds_release_key_idx;
ALTER TABLE billing_holds
  DROP COLUMN release_idempotency_key,
  DROP COLUMN release_reason;
DROP INDEX invoices_open_undelivered_idx;
DROP INDEX invoices_usage_tenant_period_key;
ALTER TABLE invoices
  DROP COLUMN delivery_hold_changed_at,
  DROP COLUMN delivery_hold_changed_by,
  DROP COLUMN delivery_hold_reason,
  DROP COLUMN delivered_at,
  DROP COLUMN generation_key;
