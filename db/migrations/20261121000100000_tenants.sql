-- Tenants, their usage caps and subscriptions, plus the trigger helpers later migrations reuse.

-- Up Migration

-- Keeps updated_at honest whichever code path writes the row.
CREATE FUNCTION billops_set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

-- Audit tables are append-only: a correction is a new row, never an edit.
CREATE FUNCTION billops_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TABLE tenants (
  id text PRIMARY KEY CONSTRAINT tenants_id_format CHECK (id ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  name text NOT NULL CONSTRAINT tenants_name_present CHECK (btrim(name) <> ''),
  tier text NOT NULL CONSTRAINT tenants_tier_known CHECK (tier IN ('free', 'pro', 'enterprise')),
  email text NOT NULL CONSTRAINT tenants_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
  billing_email text NOT NULL CONSTRAINT tenants_billing_email_format CHECK (billing_email ~ '^[^@\s]+@[^@\s]+$'),
  account_manager_email text CONSTRAINT tenants_account_manager_email_format
    CHECK (account_manager_email ~ '^[^@\s]+@[^@\s]+$'),
  currency char(3) NOT NULL DEFAULT 'USD' CONSTRAINT tenants_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
  stripe_customer_id text UNIQUE,
  paystack_customer_code text UNIQUE,
  paystack_authorization_code text,
  payment_processor text NOT NULL DEFAULT 'none'
    CONSTRAINT tenants_payment_processor_known CHECK (payment_processor IN ('stripe', 'paystack', 'none')),
  normal_capacity_rps integer NOT NULL DEFAULT 100 CONSTRAINT tenants_normal_capacity_positive CHECK (normal_capacity_rps > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  -- The Free tier has no payment processing (upgrade required).
  CONSTRAINT tenants_free_tier_has_no_processor CHECK (tier <> 'free' OR payment_processor = 'none')
);
CREATE INDEX tenants_tier_idx ON tenants (tier) WHERE deleted_at IS NULL;
CREATE INDEX tenants_payment_processor_idx ON tenants (payment_processor) WHERE deleted_at IS NULL;

-- Usage cap per meter; overage policy (throttle at 120%, block at 150%, ...) is a percentage of this.
CREATE TABLE usage_caps (
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  meter text NOT NULL CONSTRAINT usage_caps_meter_format CHECK (meter ~ '^[a-z][a-z0-9_.]{0,63}$'),
  cap_units bigint NOT NULL CONSTRAINT usage_caps_cap_positive CHECK (cap_units > 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, meter)
);
CREATE TRIGGER usage_caps_updated_at BEFORE UPDATE ON usage_caps
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

CREATE TABLE subscriptions (
  id text PRIMARY KEY DEFAULT gen_random_uuid()::text,
  tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
  tier text NOT NULL CONSTRAINT subscriptions_tier_known CHECK (tier IN ('free', 'pro', 'enterprise')),
  status text NOT NULL
    CONSTRAINT subscriptions_status_known CHECK (status IN ('active', 'trialing', 'past_due', 'canceled', 'incomplete')),
  billing_cycle text NOT NULL DEFAULT 'monthly'
    CONSTRAINT subscriptions_billing_cycle_known CHECK (billing_cycle IN ('monthly', 'annual')),
  current_period_start timestamptz NOT NULL,
  current_period_end timestamptz NOT NULL,
  trial_ends_at timestamptz,
  cancel_at_period_end boolean NOT NULL DEFAULT false,
  cancellation_reason text,
  canceled_at timestamptz,
  processor text NOT NULL DEFAULT 'none' CONSTRAINT subscriptions_processor_known CHECK (processor IN ('stripe', 'paystack', 'none')),
  stripe_subscription_id text UNIQUE,
  paystack_subscription_code text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT subscriptions_period_ordered CHECK (current_period_end > current_period_start),
  CONSTRAINT subscriptions_trial_has_end CHECK (status <> 'trialing' OR trial_ends_at IS NOT NULL),
  CONSTRAINT subscriptions_canceled_has_time CHECK (status <> 'canceled' OR canceled_at IS NOT NULL)
);
-- One live subscription per tenant; canceled ones stay as history.
CREATE UNIQUE INDEX subscriptions_one_live_per_tenant ON subscriptions (tenant_id) WHERE status <> 'canceled';
CREATE INDEX subscriptions_status_period_end_idx ON subscriptions (status, current_period_end);
CREATE TRIGGER subscriptions_updated_at BEFORE UPDATE ON subscriptions
  FOR EACH ROW EXECUTE FUNCTION billops_set_updated_at();

-- Down Migration

DROP TABLE subscriptions;
DROP TABLE usage_caps;
DROP TABLE tenants;
DROP FUNCTION billops_forbid_change();
DROP FUNCTION billops_set_updated_at();
