-- Which worker's DECISIONS.log a decision's line goes to: claimed before the line is appended, in its own transaction,
-- so a retry on another worker host never appends it a second time (the decisions table stays the record).

-- Up Migration

CREATE TABLE decision_log_writers (
  -- The decision's idempotency key; no foreign key: the claim is committed before the decisions row, and a claim
  -- outlives a decisions row whose COMMIT was lost after its line was appended.
  idempotency_key text PRIMARY KEY CONSTRAINT decision_log_writers_key_present CHECK (btrim(idempotency_key) <> ''),
  -- `<host>:<absolute path of its DECISIONS.log>`: the one log that appends the line.
  writer text NOT NULL CONSTRAINT decision_log_writers_writer_present CHECK (btrim(writer) <> ''),
  claimed_at timestamptz NOT NULL DEFAULT now()
);

-- Down Migration

DROP TABLE decision_log_writers;
