-- A replayed critical operation keeps what its activity answered (a payment's outcome and reference, the service
-- controls written), so the queue is its own record of what happened after a billing system outage.

-- Up Migration

ALTER TABLE queued_operations ADD COLUMN result jsonb;
CREATE INDEX queued_operations_workflow_idx ON queued_operations (workflow_id, id) WHERE status = 'queued';

-- Down Migration

DROP INDEX queued_operations_workflow_idx;
ALTER TABLE queued_operations DROP COLUMN result;
