-- Rollups and backfills select events by time window across tenants: index occurred_at so a window reads only its rows.

-- Up Migration

CREATE INDEX usage_events_occurred_at_idx ON usage_events (occurred_at);

-- Down Migration

DROP INDEX usage_events_occurred_at_idx;
