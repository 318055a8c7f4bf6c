-- webhook_events finished in place: the claim writes tenant_id, no column the finishing update sets is indexed, and
-- pages keep room for it, so PostgreSQL makes it a HOT update (no index entry written, no new page).

-- Up Migration

-- Every read of recent events bounds received_at (webhooks retry, the signature-failure count); status only filters.
DROP INDEX webhook_events_status_received_idx;
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at);
-- next_attempt_at is never queried; the column stays.
DROP INDEX webhook_events_retry_due_idx;
-- A row is inserted once and updated once or twice: a fifth of each page is left for those versions.
ALTER TABLE webhook_events SET (fillfactor = 80);

-- Down Migration

ALTER TABLE webhook_events RESET (fillfactor);
DROP INDEX webhook_events_received_idx;
CREATE INDEX webhook_events_retry_due_idx ON webhook_events (next_attempt_at) WHERE status = 'failed';
CREATE INDEX webhook_events_status_received_idx ON webhook_events (status, received_at);
