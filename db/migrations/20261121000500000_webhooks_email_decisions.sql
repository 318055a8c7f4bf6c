-- Inbound webhook events (deduplicated per provider), the email outbox behind exactly-once email, and the DECISIONS log.

-- Up Migration

CREATE TABLE webhook_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  provider text NOT NULL CONSTRAINT webhook_events_provider_known CHECK (provider IN ('stripe', 'paystack', 'alertmanager')),
  -- The provider's event id (Stripe evt_...), or a digest for providers without one; a replay has the same key.
  event_key text NOT NULL CONSTRAINT webhook_events_event_key_present CHECK (btrim(event_key) <> ''),
  event_type text NOT NULL,
  -- As the event names it, so no foreign key: an event for an unknown tenant is still recorded.
  tenant_id text,
  payload jsonb NOT NULL,
  signature_valid boolean NOT NULL,
  status text NOT NULL DEFAULT 'received'
    CONSTRAINT webhook_events_status_known CHECK (status IN ('received', 'processing', 'processed', 'failed', 'ignored')),
  attempts integer NOT NULL DEFAULT 0 CONSTRAINT webhook_events_attempts_not_negative CHECK (attempts >= 0),
  error text,
  received_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  next_attempt_at timestamptz,
  CONSTRAINT webhook_events_event_key_unique UNIQUE (provider, event_key),
  CONSTRAINT webhook_events_processed_has_time CHECK (status <> 'processed' OR processed_at IS NOT NULL),
  CONSTRAINT webhook_events_failure_has_error CHECK (status <> 'failed' OR error IS NOT NULL)
);
-- "webhooks retry --hours 24" and the failed-webhook rate read recent rows by status.
CREATE INDEX webhook_events_status_received_idx ON webhook_events (status, received_at);
CREATE INDEX webhook_events_retry_due_idx ON webhook_events (next_attempt_at) WHERE status = 'failed';
CREATE INDEX webhook_events_tenant_received_idx ON webhook_events (tenant_id, received_at DESC) WHERE tenant_id IS NOT NULL;

CREATE TABLE email_outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Workflow id + step: the same key always means the same message, sent at most once.
  idempotency_key text NOT NULL CONSTRAINT email_outbox_idempotency_key_unique UNIQUE,
  tenant_id text REFERENCES tenants (id) ON DELETE RESTRICT,
  to_address text NOT NULL CONSTRAINT email_outbox_to_address_format CHECK (to_address ~ '^[^@\s]+@[^@\s]+$'),
  subject text NOT NULL,
  body_text text NOT NULL,
  template text NOT NULL,
  status text NOT NULL DEFAULT 'pending' CONSTRAINT email_outbox_status_known CHECK (status IN ('pending', 'sent', 'failed')),
  message_id text,
  attempts integer NOT NULL DEFAULT 0 CONSTRAINT email_outbox_attempts_not_negative CHECK (attempts >= 0),
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  CONSTRAINT email_outbox_sent_has_message CHECK (status <> 'sent' OR (sent_at IS NOT NULL AND message_id IS NOT NULL))
);
CREATE INDEX email_outbox_pending_idx ON email_outbox (created_at) WHERE status = 'pending';
CREATE INDEX email_outbox_tenant_created_idx ON email_outbox (tenant_id, created_at DESC) WHERE tenant_id IS NOT NULL;

-- One row per DECISIONS.log line; `line` is the exact text written to the log.
CREATE TABLE decisions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL,
  operator text NOT NULL,
  action text NOT NULL DEFAULT 'billing_incident',
  incident_type text NOT NULL,
  tenants_count integer NOT NULL CONSTRAINT decisions_tenants_count_not_negative CHECK (tenants_count >= 0),
  impact text NOT NULL,
  resolution text NOT NULL,
  credits_minor bigint NOT NULL DEFAULT 0 CONSTRAINT decisions_credits_not_negative CHECK (credits_minor >= 0),
  credits_currency char(3) CONSTRAINT decisions_credits_currency_iso CHECK (credits_currency ~ '^[A-Z]{3}$'),
  executor text NOT NULL,
  line text NOT NULL CONSTRAINT decisions_line_single CHECK (line !~ '[\r\n]' AND btrim(line) <> ''),
  workflow_id text,
  -- Workflow id + run id, so a retried activity writes the line once.
  idempotency_key text CONSTRAINT decisions_idempotency_key_unique UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_at_idx ON decisions (at);
CREATE INDEX decisions_workflow_idx ON decisions (workflow_id) WHERE workflow_id IS NOT NULL;
CREATE TRIGGER decisions_append_only BEFORE UPDATE OR DELETE ON decisions
  FOR EACH ROW EXECUTE FUNCTION billops_forbid_change();

-- Down Migration

DROP TABLE decisions;
DROP TABLE email_outbox;
DROP TABLE webhook_events;
