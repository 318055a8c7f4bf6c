-- Billing system outage hooks (seed 000 §3 scale-up and failover): one row per step that ran a hook, keeping its
-- redacted outcome; at most one run under way per incident and hook, whichever worker was asked.

-- Up Migration

CREATE TABLE outage_hook_runs (
  idempotency_key text PRIMARY KEY,
  workflow_id text NOT NULL,
  action text NOT NULL CONSTRAINT outage_hook_runs_action_known CHECK (action IN ('scale_up', 'failover')),
  status text NOT NULL DEFAULT 'running'
    CONSTRAINT outage_hook_runs_status_known CHECK (status IN ('running', 'finished', 'abandoned')),
  -- Which call holds the run: only it finishes or releases the row.
  claim_id uuid NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  -- The hook's timeout and a margin: past it the run's worker is taken to be gone and the hook may run again.
  lease_until timestamptz NOT NULL,
  finished_at timestamptz,
  result jsonb
);
CREATE UNIQUE INDEX outage_hook_runs_one_running ON outage_hook_runs (workflow_id, action) WHERE status = 'running';

-- Down Migration

DROP TABLE outage_hook_runs;
