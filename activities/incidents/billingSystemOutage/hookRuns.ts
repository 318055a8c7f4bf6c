// One outage hook run at a time per incident and hook, whichever worker is asked: a row in outage_hook_runs claims the
// run (a partial unique index allows one running row per incident and hook) and keeps its outcome, so a concurrent
// call waits and is answered with that outcome, and a repeat of the same step is answered from the row.
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';

export interface HookRunKey {
  idempotencyKey: string;
  workflowId: string;
  action: string;
}

interface RunRow<T> {
  idempotency_key: string;
  status: 'running' | 'finished' | 'abandoned';
  result: T | null;
}

const UNIQUE_VIOLATION = '23505';
const POLL_MS = 250;

export function createHookRuns(pool: Pool) {
  /** Frees the incident's hook from a run whose lease passed (its worker went away). */
  async function abandonExpired(key: HookRunKey): Promise<void> {
    await pool.query(
      `UPDATE outage_hook_runs SET status = 'abandoned', finished_at = now()
       WHERE workflow_id = $1 AND action = $2 AND status = 'running' AND lease_until < now()`,
      [key.workflowId, key.action],
    );
  }

  /** A claim id when this call may run the hook; null when another run holds it or this step already ran. */
  async function claim(key: HookRunKey, leaseSeconds: number): Promise<string | null> {
    const claimId = randomUUID();
    try {
      const { rowCount } = await pool.query(
        `INSERT INTO outage_hook_runs AS r (idempotency_key, workflow_id, action, claim_id, lease_until)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
         ON CONFLICT (idempotency_key) DO UPDATE
           SET status = 'running', claim_id = EXCLUDED.claim_id, started_at = now(),
               lease_until = EXCLUDED.lease_until, finished_at = NULL, result = NULL
           WHERE r.status = 'abandoned'`,
        [key.idempotencyKey, key.workflowId, key.action, claimId, leaseSeconds],
      );
      return rowCount === 1 ? claimId : null;
    } catch (err) {
      // Another step's run of the same hook for the same incident is under way (the partial unique index).
      if ((err as { code?: string }).code === UNIQUE_VIOLATION) return null;
      throw err;
    }
  }

  /** This step's finished row, else the run under way for the incident's hook, else nothing. */
  async function current<T>(key: HookRunKey): Promise<RunRow<T> | undefined> {
    const { rows } = await pool.query<RunRow<T>>(
      `SELECT idempotency_key, status, result FROM outage_hook_runs
       WHERE (idempotency_key = $1 AND status = 'finished')
          OR (workflow_id = $2 AND action = $3 AND status = 'running' AND lease_until >= now())
       ORDER BY (status = 'finished') DESC
       LIMIT 1`,
      [key.idempotencyKey, key.workflowId, key.action],
    );
    return rows[0];
  }

  return {
    /**
     * Runs `run` unless this step already ran (its outcome is returned) or the same hook runs for the same incident
     * (waits for it and returns its outcome). An error from `run` releases the claim, so a retry runs it again.
     */
    async once<T>(key: HookRunKey, leaseSeconds: number, run: () => Promise<T>): Promise<T> {
      for (;;) {
        await abandonExpired(key);
        const claimId = await claim(key, leaseSeconds);
        if (claimId !== null) {
          let result: T;
          try {
            result = await run();
          } catch (err) {
            await pool.query(`DELETE FROM outage_hook_runs WHERE idempotency_key = $1 AND claim_id = $2`, [
              key.idempotencyKey,
              claimId,
            ]);
            throw err;
          }
          await pool.query(
            `UPDATE outage_hook_runs SET status = 'finished', finished_at = now(), result = $3
             WHERE idempotency_key = $1 AND claim_id = $2`,
            [key.idempotencyKey, claimId, JSON.stringify(result)],
          );
          return result;
        }
        const seen = await current<T>(key);
        if (seen?.status === 'finished' && seen.result !== null) return seen.result;
        if (seen?.status === 'running') {
          const outcome = await waitFor<T>(seen.idempotency_key);
          if (outcome !== undefined) return outcome;
        }
        // Released, abandoned or gone meanwhile: try to claim again.
        await sleep(POLL_MS);
      }
    },
  };

  /** The outcome of the run keyed `idempotencyKey` once it finishes; undefined if it is released or its lease passes. */
  async function waitFor<T>(idempotencyKey: string): Promise<T | undefined> {
    for (;;) {
      await sleep(POLL_MS);
      const { rows } = await pool.query<{ status: string; result: T | null; expired: boolean }>(
        `SELECT status, result, lease_until < now() AS expired FROM outage_hook_runs WHERE idempotency_key = $1`,
        [idempotencyKey],
      );
      const row = rows[0];
      if (!row) return undefined;
      if (row.status === 'finished' && row.result !== null) return row.result;
      if (row.status !== 'running' || row.expired) return undefined;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
