-- One incidents row per occurrence: an alert that fires again (the same fingerprint, so the same workflow id) after
-- its incident was resolved opens a new occurrence, which must not overwrite the first one's row. Rows written before
-- this have occurrence '' and are adopted by their running incident on its next write.

-- Up Migration

ALTER TABLE incidents ADD COLUMN occurrence text NOT NULL DEFAULT '';
ALTER TABLE incidents DROP CONSTRAINT incidents_pkey;
ALTER TABLE incidents ADD CONSTRAINT incidents_pkey PRIMARY KEY (workflow_id, occurrence);

-- Down Migration

DELETE FROM incidents i USING incidents newer
 WHERE newer.workflow_id = i.workflow_id AND newer.opened_at > i.opened_at;
ALTER TABLE incidents DROP CONSTRAINT incidents_pkey;
ALTER TABLE incidents ADD CONSTRAINT incidents_pkey PRIMARY KEY (workflow_id);
ALTER TABLE incidents DROP COLUMN occurrence;
