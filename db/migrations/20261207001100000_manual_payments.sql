-- Seed 000 "Enable manual payment acceptance" and "Document all manual overrides": one audit row per payment an
-- operator recorded by hand (`billops payments record`), beside its payment_transactions row (processor 'manual').

-- Up Migration

CREATE TABLE manual_payments (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  payment_transaction_id uuid NOT NULL UNIQUE REFERENCES payment_transactions (id) ON DELETE RESTRICT,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  invoice_id text NOT NULL REFERENCES invoices (id) ON DELETE RESTRICT,
  -- The customer's or the bank's reference: one manual payment per reference, so a re-run records nothing twice.
  reference text NOT NULL UNIQUE CONSTRAINT manual_payments_reference_present CHECK (btrim(reference) <> ''),
  method text NOT NULL CONSTRAINT manual_payments_method_known CHECK (method IN ('bank_transfer', 'card', 'other')),
  amount_minor bigint NOT NULL CONSTRAINT manual_payments_amount_positive CHECK (amount_minor > 0),
  currency char(3) NOT NULL CONSTRAINT manual_payments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
  operator text NOT NULL CONSTRAINT manual_payments_operator_present CHECK (btrim(operator) <> ''),
  reason text NOT NULL CONSTRAINT manual_payments_reason_present CHECK (btrim(reason) <> ''),
  -- What the payment did to its invoice when it was recorded.
  applied text NOT NULL CONSTRAINT manual_payments_applied_known CHECK (applied IN ('paid', 'partial')),
  recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX manual_payments_tenant_recorded_idx ON manual_payments (tenant_id, recorded_at DESC);
CREATE INDEX manual_payments_invoice_idx ON manual_payments (invoice_id);
CREATE TRIGGER manual_payments_append_only BEFORE UPDATE OR DELETE ON manual_payments
  FOR EACH ROW EXECUTE FUNCTION billops_forbid_change();

-- Down Migration

DROP TABLE manual_payments;
