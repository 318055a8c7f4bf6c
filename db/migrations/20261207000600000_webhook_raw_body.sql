-- The bytes of a signed webhook delivery whose payload PostgreSQL could not keep as sent (a \u0000 or lone surrogate
-- escape, bytes that are not UTF-8): payload then holds a cleaned copy, raw_body the original, so the event is stored
-- and its signature can still be checked. NULL for every ordinary event.

-- Up Migration

ALTER TABLE webhook_events ADD COLUMN raw_body bytea;

-- Down Migration

ALTER TABLE webhook_events DROP COLUMN raw_body;
