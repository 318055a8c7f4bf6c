-- The email outbox claims a row with a lease instead of holding a transaction and a row lock while the SMTP server
-- answers: 'sending' while an attempt holds the lease, 'failed' when the server or the network refused it for now
-- (a retry claims it again), 'undeliverable' when the server refused it for good, with its reason in last_error.

-- Up Migration

ALTER TABLE email_outbox
  ADD COLUMN lease_token uuid,
  ADD COLUMN lease_expires_at timestamptz,
  ADD COLUMN undeliverable_at timestamptz;
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_status_known;
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_known
  CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'undeliverable'));
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_sending_has_lease
  CHECK (status <> 'sending' OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL));
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_undeliverable_has_reason
  CHECK (status <> 'undeliverable' OR (undeliverable_at IS NOT NULL AND last_error IS NOT NULL));

-- Down Migration

ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_undeliverable_has_reason;
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_sending_has_lease;
ALTER TABLE email_outbox DROP CONSTRAINT email_outbox_status_known;
-- Rows the older code cannot read: a claim becomes pending again, a refusal a failure.
UPDATE email_outbox SET status = 'pending' WHERE status = 'sending';
UPDATE email_outbox SET status = 'failed' WHERE status = 'undeliverable';
ALTER TABLE email_outbox ADD CONSTRAINT email_outbox_status_known
  CHECK (status IN ('pending', 'sent', 'failed'));
ALTER TABLE email_outbox
  DROP COLUMN undeliverable_at,
  DROP COLUMN lease_expires_at,
  DROP COLUMN lease_token;
