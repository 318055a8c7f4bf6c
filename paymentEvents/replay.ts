// `billops webhooks retry`: stored payment events whose processing failed, acted on again through the ingress's own claim → act → finish path.
import type { Pool } from 'pg';
import type { ActionContext } from './act';
import { WAITING_FOR_TENANT, type Claim, type FinalStatus } from '../db/webhookEvents';
import { LEASE_SECONDS, processEvent, TEMPORAL_TIMEOUT_MS } from './process';
import { MalformedEventError, type VerifiedEvent, type WebhookProvider } from '../domain/paymentEvents';
import { readPaystackEvent } from './read/paystack';
import { readStripeEvent } from './read/stripe';

export interface ReplayDependencies extends Omit<ActionContext, 'temporalTimeoutMs'> {
  /** As the ingress: a Temporal call that takes longer fails the event instead of hanging; default 10 s. */
  temporalTimeoutMs?: number;
  /** As the ingress: a 'processing' claim younger than this belongs to a live delivery; default 60 s. */
  leaseSeconds?: number;
}

export interface ReplayRequest {
  /** Events received within the last this many hours. */
  hours: number;
}

export type ReplayOutcome =
  /** Acted on now: its final status. */
  | FinalStatus
  /** Acting failed again; the row stays 'failed' with the reason. */
  | 'failed'
  /** Older than the policy's webhook retry window: not acted on, left as it was for a person to settle. */
  | 'expired'
  /** A delivery finished it, or holds a live claim on it, between the listing and our claim. */
  | 'skipped';

export interface ReplayedEvent {
  provider: WebhookProvider;
  eventKey: string;
  eventType: string;
  receivedAt: string;
  /** The row's status before this run: failed, received, or processing with an expired claim. */
  previousStatus: string;
  outcome: ReplayOutcome;
  tenantId?: string;
  workflowId?: string;
  /** Why it failed, why nothing was done, or why it was skipped or expired. */
  reason?: string;
  /** Deliveries and retries so far, this one included. */
  attempts?: number;
}

export interface ReplayReport {
  hours: number;
  /** Events received at or after this instant were considered. */
  since: string;
  /** The policy's retry window (webhookRetry.maxDays); events received before `expiredBefore` are expired. */
  retryWindowDays: number;
  expiredBefore: string;
  events: ReplayedEvent[];
  totals: { ok: number; failing: number; expired: number; skipped: number };
}

interface PendingRow {
  id: string;
  provider: WebhookProvider;
  event_key: string;
  event_type: string;
  payload: unknown;
  status: string;
  attempts: number;
  error: string | null;
  received_at: Date;
  expired: boolean;
}

/**
 * Acts again on every verified payment event received within the last `hours` whose processing failed, was never
 * done, or was abandoned by a crashed delivery, oldest first (a provider's events for one tenant keep their order).
 * Each is claimed exactly as a delivery claims it, so a concurrent delivery or a second run never acts twice.
 */
export async function retryFailedWebhooks(
  deps: ReplayDependencies,
  request: ReplayRequest,
): Promise<ReplayReport> {
  if (!Number.isSafeInteger(request.hours) || request.hours <= 0) {
    throw new RangeError(`hours must be a positive whole number, got ${request.hours}`);
  }
  const leaseSeconds = deps.leaseSeconds ?? LEASE_SECONDS;
  const retryWindowDays = deps.policy.webhookRetry.maxDays;
  const clock = await databaseClock(deps.pool, request.hours, retryWindowDays);
  const rows = await pendingEvents(deps.pool, clock, leaseSeconds);
  const context: ActionContext = {
    ...deps,
    temporalTimeoutMs: deps.temporalTimeoutMs ?? TEMPORAL_TIMEOUT_MS,
  };

  const events: ReplayedEvent[] = [];
  for (const row of rows) {
    const base = {
      provider: row.provider,
      eventKey: row.event_key,
      eventType: row.event_type,
      receivedAt: row.received_at.toISOString(),
      previousStatus: row.status,
    };
    if (row.expired) {
      events.push({
        ...base,
        outcome: 'expired',
        attempts: row.attempts,
        reason:
          `received more than ${retryWindowDays} days ago, beyond the webhook retry window: settle it by hand ` +
          `(the provider's dashboard, then billops reconcile)${row.error ? `; last error: ${row.error}` : ''}`,
      });
      continue;
    }
    events.push({ ...base, ...(await replayOne(context, row, leaseSeconds)) });
  }

  return {
    hours: request.hours,
    since: clock.since.toISOString(),
    retryWindowDays,
    expiredBefore: clock.expiredBefore.toISOString(),
    events,
    totals: {
      ok: events.filter((e) => isOk(e.outcome)).length,
      failing: events.filter((e) => e.outcome === 'failed').length,
      expired: events.filter((e) => e.outcome === 'expired').length,
      skipped: events.filter((e) => e.outcome === 'skipped').length,
    },
  };
}

export function isOk(outcome: ReplayOutcome): boolean {
  return outcome === 'processed' || outcome === 'ignored' || outcome === 'stored_for_incident';
}

/** The same claim → act → finish|fail a delivery takes (process.ts), on the stored payload. */
async function replayOne(
  ctx: ActionContext,
  row: PendingRow,
  leaseSeconds: number,
): Promise<Pick<ReplayedEvent, 'outcome' | 'tenantId' | 'workflowId' | 'reason' | 'attempts'>> {
  let event: VerifiedEvent | undefined;
  let unreadable: string | undefined;
  try {
    event = readStored(row);
  } catch (err) {
    if (!(err instanceof MalformedEventError)) throw err;
    unreadable = `${err.name}: ${err.message}`;
  }
  const processed = await processEvent(ctx, event ?? claimOnly(row), storedBody(row), {
    leaseSeconds,
    unreadable: event ? undefined : (unreadable ?? 'the stored payload could not be read'),
  });
  switch (processed.kind) {
    case 'done': {
      const { done } = processed;
      // Still waiting for its tenant: the row stays 'failed' with the reason (finishEvents), so it is reported so.
      if (done.status === 'ignored' && done.note?.startsWith(WAITING_FOR_TENANT)) {
        return { outcome: 'failed', reason: done.note, attempts: processed.attempt };
      }
      return {
        outcome: done.status,
        tenantId: done.tenantId,
        workflowId: done.workflowId,
        reason: done.note,
        attempts: processed.attempt,
      };
    }
    case 'failed':
      return { outcome: 'failed', reason: processed.reason, attempts: processed.attempt };
    default:
      return skipped(processed);
  }
}

function skipped(claim: Exclude<Claim, { kind: 'claimed' }>) {
  return {
    outcome: 'skipped' as const,
    reason:
      claim.kind === 'duplicate'
        ? `a delivery finished it meanwhile (${claim.status})`
        : 'a delivery is acting on it right now',
  };
}

/**
 * The stored payload read by the ingress's own parser. Its signature was verified when it was stored, so it is not
 * checked again; the key stays the stored one (a Paystack key may be a digest of the original bytes, which jsonb
 * does not keep).
 */
function readStored(row: PendingRow): VerifiedEvent {
  const event =
    row.provider === 'stripe'
      ? readStripeEvent(row.payload)
      : readPaystackEvent(row.payload, storedBody(row));
  return { ...event, key: row.event_key };
}

/** claimEvent reads only the identity of the event; an unreadable payload is claimed so its failure is recorded. */
function claimOnly(row: PendingRow): VerifiedEvent {
  return {
    provider: row.provider,
    key: row.event_key,
    type: row.event_type,
    intent: { kind: 'ignore', reason: 'the stored payload could not be read' },
  };
}

function storedBody(row: PendingRow): Buffer {
  return Buffer.from(JSON.stringify(row.payload), 'utf8');
}

/**
 * What a retry may take: the statuses claimEvent takes again, among verified stripe and paystack events. A failed
 * payment whose tenant was unknown is among them: it is stored 'failed' waiting for its tenant (WAITING_FOR_TENANT).
 */
async function pendingEvents(
  pool: Pool,
  clock: { since: Date; expiredBefore: Date },
  leaseSeconds: number,
): Promise<PendingRow[]> {
  const { rows } = await pool.query<PendingRow>(
    `SELECT id, provider, event_key, event_type, payload, status, attempts, error, received_at,
            received_at < $2 AS expired
       FROM webhook_events
      WHERE provider IN ('stripe', 'paystack')
        AND signature_valid
        AND received_at >= $1
        AND (status IN ('failed', 'received')
             OR (status = 'processing' AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $3))))
      ORDER BY received_at, id`,
    [clock.since, clock.expiredBefore, leaseSeconds],
  );
  return rows;
}

/** The window's edges on the database's clock, which is the one received_at was written with. */
async function databaseClock(
  pool: Pool,
  hours: number,
  retryWindowDays: number,
): Promise<{ since: Date; expiredBefore: Date }> {
  const { rows } = await pool.query<{ since: Date; expired_before: Date }>(
    `SELECT now() - make_interval(hours => $1) AS since, now() - make_interval(days => $2) AS expired_before`,
    [hours, retryWindowDays],
  );
  const row = rows[0];
  if (!row) throw new Error('the database did not answer SELECT now()');
  return { since: row.since, expiredBefore: row.expired_before };
}
