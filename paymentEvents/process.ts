// The one path a stored payment event takes, for a delivery, a replay and a reconciliation alike: claim → act → finish,
// or fail, so a concurrent delivery or a second run never acts twice.
import { claimEvent, failEvent, finishEvent, type Claim, type ClaimOptions } from '../db/webhookEvents';
import { MalformedEventError, type VerifiedEvent } from '../domain/paymentEvents';
import { actOn, type ActionContext, type ActionOutcome } from './act';

/** How long a claim protects an event from a concurrent delivery before it counts as abandoned by a crash. */
export const LEASE_SECONDS = 60;
/** A Temporal call that takes longer fails the event (the sender retries) instead of hanging on it. */
export const TEMPORAL_TIMEOUT_MS = 10_000;

/** Marks an acted-on event done. The ingress hands it to its batched writes after the answer; others write at once. */
export type Finisher = (rowId: string, done: ActionOutcome) => Promise<void>;

export interface ProcessOptions {
  leaseSeconds?: number;
  /** The ingress's claim also records a failed payment's invoice in the same statement (ClaimOptions). */
  claim?: ClaimOptions;
  finish?: Finisher;
  /** Why the stored payload cannot be read: the event is claimed only to record that failure, for a person. */
  unreadable?: string;
  /** Where a failure to mark the row failed goes (the ingress logs it and still answers 500); absent: thrown. */
  onFailWriteError?: (error: Error) => void;
}

export type Processed =
  /** Finished earlier, or being acted on right now by another delivery: nothing done here. */
  | Exclude<Claim, { kind: 'claimed' }>
  | { kind: 'done'; done: ActionOutcome; attempt: number }
  /** Acting failed; the row says why and stays for the sender's retry, `billops webhooks retry` or a person. */
  | { kind: 'failed'; reason: string; error: unknown; attempt: number };

/**
 * Claims the event under its key (the one statement before acting), acts on it, then finishes it. A failure to act
 * marks the row failed; a failure to store the claim is thrown to the caller.
 */
export async function processEvent(
  ctx: ActionContext,
  event: VerifiedEvent,
  rawBody: Buffer,
  opts: ProcessOptions = {},
): Promise<Processed> {
  const claim = await claimEvent(ctx.pool, event, rawBody, opts.leaseSeconds ?? LEASE_SECONDS, opts.claim);
  if (claim.kind !== 'claimed') return claim;
  try {
    // A payload the parser refuses cannot be fixed by acting again: the row records why.
    if (opts.unreadable !== undefined) throw new MalformedEventError(opts.unreadable);
    const done = await actOn(ctx, event, claim.tenant, claim.invoice);
    await (opts.finish ?? ((rowId, outcome) => finishEvent(ctx.pool, rowId, outcome)))(claim.rowId, done);
    return { kind: 'done', done, attempt: claim.attempt };
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const failed = failEvent(ctx.pool, claim.rowId, reason);
    await (opts.onFailWriteError ? failed.catch(opts.onFailWriteError) : failed);
    return { kind: 'failed', reason, error, attempt: claim.attempt };
  }
}
