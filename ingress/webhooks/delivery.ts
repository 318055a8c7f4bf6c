// One webhook delivery from raw body to answer: verify, read, store before acting, act, and record how it ended.
import type { FastifyBaseLogger } from 'fastify';
import type { BillingTier } from '../../domain/policy';
import type { ActionContext } from '../../paymentEvents/act';
import { processEvent, type Processed } from '../../paymentEvents/process';
import { recordRejected, type FinishBatcher } from '../../db/webhookEvents';
import { storableJsonBody } from '../../db/storable';
import { MalformedEventError, type VerifiedEvent, type WebhookProvider } from '../../domain/paymentEvents';
import { recordDelivery, type DeliveryOutcome, type WebhookMetrics } from './metrics';
import type { PendingWrites } from './pendingWrites';
import type { Verified } from './signatures';

export interface DeliveryContext extends ActionContext {
  metrics: WebhookMetrics;
  /** How long a claim on an event protects it from a concurrent delivery before it counts as abandoned. */
  leaseSeconds: number;
  /** Marks events done, after their answers. */
  finisher: FinishBatcher;
  /** Where the finishing write of an event goes once its answer is on the way. */
  writes: PendingWrites;
  /** The tiers whose failed payments are dunned (actions.ts dunnedTiers of the policy), worked out once. */
  dunnedTiers: readonly BillingTier[];
  log: FastifyBaseLogger;
}

/** How one provider's deliveries are authenticated and read. */
export interface ProviderReader {
  provider: WebhookProvider;
  verify(rawBody: Buffer): Verified;
  read(body: unknown, rawBody: Buffer): VerifiedEvent;
  /** The key and type of a body `read` refused, when it names them; absent: such a body is answered 400. */
  identify?(body: unknown, rawBody: Buffer): { key: string; type: string } | undefined;
}

export interface DeliveryAnswer {
  statusCode: number;
  body: Record<string, unknown>;
}

export async function receiveDelivery(
  ctx: DeliveryContext,
  reader: ProviderReader,
  rawBody: Buffer,
): Promise<DeliveryAnswer> {
  const startedAt = performance.now();
  const { outcome, ...answer } = await answerDelivery(ctx, reader, rawBody);
  recordDelivery(ctx.metrics, reader.provider, outcome, (performance.now() - startedAt) / 1000);
  return answer;
}

async function answerDelivery(
  ctx: DeliveryContext,
  reader: ProviderReader,
  rawBody: Buffer,
): Promise<DeliveryAnswer & { outcome: DeliveryOutcome }> {
  const { provider } = reader;
  const verified = reader.verify(rawBody);
  if (!verified.ok && verified.problem === 'signature') {
    await recordRejected(ctx.pool, provider, rawBody, verified.reason).catch((err: Error) =>
      ctx.log.warn({ err, provider }, 'could not record a rejected webhook delivery'),
    );
    return { outcome: 'rejected', ...problem(400, `signature verification failed: ${verified.reason}`) };
  }
  if (!verified.ok) return { outcome: 'malformed', ...problem(400, verified.reason) };

  // Read as it will be stored: a \u0000 or lone surrogate escape reads as U+FFFD (db/storable.ts).
  const storable = storableJsonBody(rawBody);
  const body = storable.raw ? (JSON.parse(storable.text) as unknown) : verified.body;
  let event: VerifiedEvent;
  let malformed = false;
  try {
    event = reader.read(body, rawBody);
  } catch (err) {
    if (!(err instanceof MalformedEventError)) throw err;
    // Signed and named, though its content cannot be read: stored as ignored with the reason, so a person can see it
    // and a second delivery is a duplicate. Without an id and type there is no key to store it under.
    const identity = reader.identify?.(body, rawBody);
    if (!identity) return { outcome: 'malformed', ...problem(400, err.message) };
    event = { provider, ...identity, intent: { kind: 'ignore', reason: `malformed event: ${err.message}` } };
    malformed = true;
  }

  // Stored before acting: from here on a replayed delivery finds the row, and only a failed one is acted on again.
  let processed: Processed;
  try {
    processed = await processEvent(ctx, event, rawBody, {
      leaseSeconds: ctx.leaseSeconds,
      claim: { dunnedTiers: ctx.dunnedTiers },
      finish: async (rowId, done) => {
        // The event is in Temporal now, so the answer does not wait for the row to say so. Should this write be lost,
        // the row stays 'processing' and a retry takes it once the lease ends; acting again is harmless (same workflow
        // ids, an invoice a lifecycle already holds is not added twice).
        ctx.writes.add(
          ctx.finisher
            .finish({ rowId, status: done.status, note: done.note })
            .catch((err: Error) =>
              ctx.log.error(
                { err, provider, event: event.key },
                'webhook event handed to Temporal but not marked done; `billops webhooks retry` takes it after the lease',
              ),
            ),
        );
      },
      onFailWriteError: (err) =>
        ctx.log.error({ err, provider, event: event.key }, 'could not mark a webhook event failed'),
    });
  } catch (err) {
    ctx.log.error({ err, provider, event: event.key }, 'could not store a webhook event');
    return { outcome: 'failed', ...problem(500, `event ${event.key} could not be stored; send it again`) };
  }
  switch (processed.kind) {
    case 'duplicate':
      return { outcome: 'duplicate', statusCode: 200, body: { received: true, duplicate: true } };
    case 'in_progress':
      return {
        outcome: 'in_progress',
        ...problem(409, `event ${event.key} is being processed by another delivery; send it again later`),
      };
    case 'failed':
      ctx.log.error(
        { err: processed.error, provider, event: event.key },
        'webhook event stored but not processed',
      );
      // Stored, so never a 5xx (DESIGN.md "HTTP ingress"): the row stays failed for `billops webhooks retry` or a
      // retried delivery. The details stay in webhook_events.error and the log.
      return {
        outcome: 'failed',
        statusCode: 200,
        body: {
          received: true,
          status: 'failed',
          reason:
            `event ${event.key} is stored but could not be acted on; it is kept as failed and acted on by ` +
            '`billops webhooks retry` or a retried delivery',
        },
      };
    case 'done': {
      const { done } = processed;
      if (done.tenantUnknown) ctx.metrics.unknownTenant?.inc({ provider });
      const answer: Record<string, unknown> = { received: true, status: done.status };
      if (done.workflowId) answer.workflowId = done.workflowId;
      if (done.note) answer.reason = done.note;
      return { outcome: malformed ? 'malformed' : done.status, statusCode: 200, body: answer };
    }
  }
}

const ERRORS: Record<number, string> = {
  400: 'Bad Request',
  409: 'Conflict',
  500: 'Internal Server Error',
};

function problem(statusCode: number, message: string): DeliveryAnswer {
  return { statusCode, body: { statusCode, error: ERRORS[statusCode] ?? 'Error', message } };
}
