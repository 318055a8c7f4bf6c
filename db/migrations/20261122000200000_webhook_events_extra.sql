-- Webhook ingress statuses: refunds, disputes and subscription events kept for their incident workflows, rejected signatures counted, and a claim time so a crashed delivery can be taken over.

-- Up Migration

ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_status_known;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_status_known CHECK (
  status IN ('received', 'processing', 'processed', 'failed', 'ignored', 'stored_for_incident', 'rejected')
);
-- A delivery claims its row ('processing') when it starts acting; a claim older than the ingress's lease is abandoned.
ALTER TABLE webhook_events ADD COLUMN claimed_at timestamptz;
-- A row whose signature did not verify is never acted on: its status says so.
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_unverified_rejected
  CHECK (signature_valid OR status = 'rejected');

-- Down Migration

ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_unverified_rejected;
ALTER TABLE webhook_events DROP COLUMN claimed_at;
-- Rejected deliveries were only counted; events kept for an incident go back to waiting.
DELETE FROM webhook_events WHERE status = 'rejected';
UPDATE webhook_events SET status = 'received' WHERE status = 'stored_for_incident';
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_status_known;
ALTER TABLE webhook_events ADD CONSTRAINT webhook_events_status_known CHECK (
  status IN ('received', 'processing', 'processed', 'failed', 'ignored')
);
