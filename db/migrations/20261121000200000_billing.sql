-- Money: rates, invoices, payment transactions and credits/adjustments; amounts are bigint minor units beside a currency.

-- Up Migration

-- A rate applies to a whole tier or to one tenant (a negotiated price), from effective_from until a later rate.
CREATE TABLE rates (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  meter text NOT NULL CONSTRAINT rates_meter_format CHECK (meter ~ '^[a-z][a-z0-9_.]{0,63}$'),
  tier text CONSTRAINT rates_tier_known CHECK (tier IN ('free', 'pro', 'enterprise')),
  tenant_id text REFERENCES tenants (id) ON DELETE RESTRICT,
  effective_from timestamptz NOT NULL,
  pricing_model text NOT NULL CONSTRAINT rates_pricing_model_known CHECK (pricing_model IN ('per_unit', 'graduated')),
  -- Fractions of a minor unit are allowed: usage is often priced below one cent per unit.
  unit_price_minor numeric CONSTRAINT rates_unit_price_not_negative CHECK (unit_price_minor >= 0),
  -- Graduated tiers: [{"up_to": 1000000, "unit_price_minor": 0.05}, {"up_to": null, "unit_price_minor": 0.02}]
  tiers jsonb,
  currency char(3) NOT NULL CONSTRAINT rates_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT rates_tier_xor_tenant CHECK ((tier IS NULL) <> (tenant_id IS NULL)),
  CONSTRAINT rates_price_matches_model CHECK (
    (pricing_model = 'per_unit' AND unit_price_minor IS NOT NULL AND tiers IS NULL)
    OR (pricing_model = 'graduated' AND unit_price_minor IS NULL AND jsonb_typeof(tiers) = 'array'
        AND jsonb_array_length(tiers) > 0)
  )
);
CREATE UNIQUE INDEX rates_tier_meter_from_key ON rates (meter, tier, currency, effective_from) WHERE tenant_id IS NULL;
CREATE UNIQUE INDEX rates_tenant_meter_from_key ON rates (meter, tenant_id, currency, effective_from) WHERE tier IS NULL;

CREATE TABLE invoices (
  id text PRIMARY KEY DEFAULT gen_random_uuid()::text,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  subscription_id text REFERENCES subscriptions (id) ON DELETE RESTRICT,
  processor text NOT NULL DEFAULT 'none' CONSTRAINT invoices_processor_known CHECK (processor IN ('stripe', 'paystack', 'none')),
  processor_invoice_id text,
  period_start timestamptz NOT NULL,
  period_end timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'draft'
    CONSTRAINT invoices_status_known CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
  subtotal_minor bigint NOT NULL DEFAULT 0 CONSTRAINT invoices_subtotal_not_negative CHECK (subtotal_minor >= 0),
  total_minor bigint NOT NULL DEFAULT 0 CONSTRAINT invoices_total_not_negative CHECK (total_minor >= 0),
  amount_paid_minor bigint NOT NULL DEFAULT 0 CONSTRAINT invoices_amount_paid_not_negative CHECK (amount_paid_minor >= 0),
  currency char(3) NOT NULL CONSTRAINT invoices_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
  hosted_invoice_url text,
  -- Usage metering failure: stop invoice generation, and hold delivery until validation completes.
  generation_held boolean NOT NULL DEFAULT false,
  delivery_held boolean NOT NULL DEFAULT false,
  due_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  paid_at timestamptz,
  CONSTRAINT invoices_period_ordered CHECK (period_end > period_start),
  CONSTRAINT invoices_paid_within_total CHECK (amount_paid_minor <= total_minor),
  CONSTRAINT invoices_paid_has_time CHECK (status <> 'paid' OR paid_at IS NOT NULL),
  CONSTRAINT invoices_processor_id_unique UNIQUE (processor, processor_invoice_id)
);
CREATE INDEX invoices_tenant_created_idx ON invoices (tenant_id, created_at DESC);
CREATE INDEX invoices_open_due_idx ON invoices (due_at) WHERE status = 'open';
CREATE INDEX invoices_held_idx ON invoices (tenant_id) WHERE generation_held OR delivery_held;
CREATE TRIGGER invoices_updated_at BEFORE UPDATE ON invoices
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

CREATE TABLE payment_transactions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  invoice_id text REFERENCES invoices (id) ON DELETE RESTRICT,
  -- 'manual': a payment accepted by hand while a processor is down.
  processor text NOT NULL CONSTRAINT payment_transactions_processor_known CHECK (processor IN ('stripe', 'paystack', 'manual')),
  reference text NOT NULL CONSTRAINT payment_transactions_reference_present CHECK (btrim(reference) <> ''),
  status text NOT NULL DEFAULT 'pending' CONSTRAINT payment_transactions_status_known
    CHECK (status IN ('pending', 'success', 'failed', 'refunded', 'partially_refunded')),
  amount_minor bigint NOT NULL CONSTRAINT payment_transactions_amount_positive CHECK (amount_minor > 0),
  currency char(3) NOT NULL CONSTRAINT payment_transactions_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
  gateway_response text,
  failure_code text,
  refund_reference text,
  refund_amount_minor bigint,
  refunded_at timestamptz,
  paid_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payment_transactions_reference_unique UNIQUE (processor, reference),
  CONSTRAINT payment_transactions_refund_within_amount
    CHECK (refund_amount_minor IS NULL OR (refund_amount_minor > 0 AND refund_amount_minor <= amount_minor)),
  CONSTRAINT payment_transactions_refund_recorded CHECK (
    status NOT IN ('refunded', 'partially_refunded')
    OR (refund_amount_minor IS NOT NULL AND refunded_at IS NOT NULL)
  ),
  CONSTRAINT payment_transactions_paid_has_time
    CHECK (status NOT IN ('success', 'refunded', 'partially_refunded') OR paid_at IS NOT NULL)
);
CREATE UNIQUE INDEX payment_transactions_refund_reference_key ON payment_transactions (processor, refund_reference)
  WHERE refund_reference IS NOT NULL;
CREATE INDEX payment_transactions_tenant_created_idx ON payment_transactions (tenant_id, created_at DESC);
CREATE INDEX payment_transactions_invoice_idx ON payment_transactions (invoice_id) WHERE invoice_id IS NOT NULL;
-- Stuck transactions and the success-rate check both scan recent rows by status.
CREATE INDEX payment_transactions_status_created_idx ON payment_transactions (status, created_at);
CREATE TRIGGER payment_transactions_updated_at BEFORE UPDATE ON payment_transactions
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

CREATE TABLE credits_adjustments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  invoice_id text REFERENCES invoices (id) ON DELETE RESTRICT,
  kind text NOT NULL CONSTRAINT credits_adjustments_kind_known CHECK (kind IN ('credit', 'adjustment_invoice', 'refund')),
  amount_minor bigint NOT NULL CONSTRAINT credits_adjustments_amount_positive CHECK (amount_minor > 0),
  currency char(3) NOT NULL CONSTRAINT credits_adjustments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
  reason text NOT NULL CONSTRAINT credits_adjustments_reason_present CHECK (btrim(reason) <> ''),
  processor text CONSTRAINT credits_adjustments_processor_known CHECK (processor IN ('stripe', 'paystack', 'manual')),
  processor_reference text,
  idempotency_key text NOT NULL UNIQUE,
  workflow_id text,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT credits_adjustments_reference_has_processor CHECK (processor_reference IS NULL OR processor IS NOT NULL)
);
CREATE UNIQUE INDEX credits_adjustments_processor_reference_key ON credits_adjustments (processor, processor_reference)
  WHERE processor_reference IS NOT NULL;
CREATE INDEX credits_adjustments_tenant_created_idx ON credits_adjustments (tenant_id, created_at DESC);
CREATE INDEX credits_adjustments_invoice_idx ON credits_adjustments (invoice_id) WHERE invoice_id IS NOT NULL;

-- Down Migration

DROP TABLE credits_adjustments;
DROP TABLE payment_transactions;
DROP TABLE invoices;
DROP TABLE rates;
