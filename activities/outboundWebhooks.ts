// Outbound webhook activities: the next delivery of a stream, one signed attempt and its outcome, and waking the
// delivery workflows of streams with new deliveries (signal-with-start after the outbox rows committed).
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import {
  deliveryState,
  failDelivery,
  markStreamDispatched,
  nextPendingDelivery,
  pendingDelivery,
  recordDeliveryAttempt,
  undispatchedStreams,
} from '../db/outboundWebhooks';
import { receiverVerdict, signingSecrets, type DeliveryStatus } from '../domain/outboundWebhooks';
import { defaultPolicy, type Policy } from '../domain/policy';
import { postSignedWebhook } from '../drivers/webhookSender';
import { wakeWebhookDelivery } from '../temporal/webhookDelivery';

export type { WebhookDeliveryInput } from '../domain/outboundWebhooks';

export interface NextDelivery {
  deliveryId: string;
  eventId: string;
  round: number;
  /** Attempts already made in this round (a new run picks up where the last one stopped). */
  attempts: number;
  /** ISO-8601 on the workflow's clock; null before the first attempt. */
  firstAttemptAt: string | null;
}

export interface AttemptRequest {
  deliveryId: string;
  round: number;
  /** 1 for the first attempt of the round. */
  attempt: number;
  /** ISO-8601 on the workflow's clock. */
  attemptedAt: string;
  /** The schedule's last attempt: a failure now fails the delivery for good. */
  final: boolean;
}

export interface AttemptResult {
  /** pending: retry on the schedule; delivered; failed for good. */
  status: DeliveryStatus;
  statusCode: number | null;
  answer: string | null;
}

export interface OutboundWebhookDependencies {
  pool: Pool;
  /** Absent: deliveries wait in the outbox until a process with a client dispatches them. */
  temporalClient?: Client;
  /** The retry schedule's policy; the runbook's defaults unless given. */
  policy?: Pick<Policy, 'webhookRetry' | 'apiRetry'>;
  /** Per attempt; a receiver slower than this counts as down. */
  timeoutMs?: number;
}

/**
 * Tells the delivery workflow of every stream with undispatched deliveries (signal-with-start: started when none
 * runs). Returns how many streams were woken.
 */
export async function dispatchWebhookDeliveries(deps: {
  pool: Pool;
  client: Client;
  taskQueue: string;
  policy?: Pick<Policy, 'webhookRetry' | 'apiRetry'>;
}): Promise<number> {
  const policy = deps.policy ?? defaultPolicy;
  const streams = await undispatchedStreams(deps.pool);
  for (const { endpointId, stream } of streams) {
    await wakeWebhookDelivery(deps.client, deps.taskQueue, {
      endpointId,
      stream,
      policy: { webhookRetry: policy.webhookRetry, apiRetry: policy.apiRetry },
    });
    await markStreamDispatched(deps.pool, endpointId, stream);
  }
  return streams.length;
}

export function createOutboundWebhookActivities(deps: OutboundWebhookDependencies) {
  const { pool } = deps;
  return {
    /** The stream's oldest pending delivery; one whose endpoint was removed is failed on the way. Null: none left. */
    async nextWebhookDelivery(req: { endpointId: string; stream: string }): Promise<NextDelivery | null> {
      for (;;) {
        const next = await nextPendingDelivery(pool, req.endpointId, req.stream);
        if (!next) return null;
        if (next.endpointRemoved) {
          await failDelivery(pool, next.id, 'the endpoint was removed before it was delivered');
          continue;
        }
        return {
          deliveryId: next.id,
          eventId: next.eventId,
          round: next.round,
          attempts: next.attempts,
          firstAttemptAt: next.firstAttemptAt,
        };
      }
    },

    /**
     * One signed POST. 2xx: delivered. 4xx other than 408/429: failed for good with the answer. 408, 429, 5xx or no
     * answer: pending (the workflow retries on the policy's schedule), or failed when this was the last attempt. The
     * receiver's answer is an outcome, never an activity failure.
     */
    async attemptWebhookDelivery(req: AttemptRequest): Promise<AttemptResult> {
      const delivery = await pendingDelivery(pool, req.deliveryId);
      // Delivered or failed meanwhile (a retried activity, an operator), or redelivered into a newer round.
      if (!delivery || delivery.round !== req.round) {
        const now = await deliveryState(pool, req.deliveryId);
        // A newer round belongs to the run that picks it up next: this one moves on.
        const status = now && now.round === req.round ? now.status : 'delivered';
        return { status, statusCode: null, answer: null };
      }
      if (delivery.endpointRemoved) {
        await failDelivery(pool, delivery.id, 'the endpoint was removed before it was delivered');
        return { status: 'failed', statusCode: null, answer: 'endpoint removed' };
      }
      const sent = await postSignedWebhook({
        url: delivery.url,
        body: delivery.body,
        eventId: delivery.eventId,
        eventType: delivery.eventType,
        attempt: req.attempt,
        secrets: signingSecrets(delivery, Date.now()),
        timeoutMs: deps.timeoutMs ?? 10_000,
      });
      const verdict = receiverVerdict(sent.status);
      const status: DeliveryStatus =
        verdict === 'delivered' ? 'delivered' : verdict === 'refused' || req.final ? 'failed' : 'pending';
      await recordDeliveryAttempt(pool, {
        deliveryId: delivery.id,
        round: req.round,
        attempt: req.attempt,
        attemptedAt: req.attemptedAt,
        statusCode: sent.status,
        error: verdict === 'delivered' ? null : sent.answer,
        outcome: status,
      });
      Context.current().log.info('webhook delivery attempt', {
        deliveryId: delivery.id,
        eventId: delivery.eventId,
        attempt: req.attempt,
        statusCode: sent.status,
        outcome: status,
      });
      return { status, statusCode: sent.status, answer: verdict === 'delivered' ? null : sent.answer };
    },

    /** Wakes the delivery workflows of streams with new deliveries; 0 without a Temporal client. */
    async dispatchWebhookDeliveries(): Promise<number> {
      if (!deps.temporalClient) return 0;
      return dispatchWebhookDeliveries({
        pool,
        client: deps.temporalClient,
        taskQueue: Context.current().info.taskQueue,
        policy: deps.policy,
      });
    },
  };
}

/**
 * Wraps an activity group so that each call, once its change committed, wakes the delivery workflows of the events
 * it wrote. Waking is best effort: what is not dispatched now stays in the outbox for the next dispatch.
 */
export function dispatchingAfter<T extends Record<string, (...args: never[]) => Promise<unknown>>>(
  group: T,
  deps: OutboundWebhookDependencies,
): T {
  const client = deps.temporalClient;
  if (!client) return group;
  const wrapped: Record<string, unknown> = {};
  for (const [name, activity] of Object.entries(group)) {
    wrapped[name] = async (...args: never[]) => {
      const result = await activity(...args);
      await dispatchWebhookDeliveries({
        pool: deps.pool,
        client,
        taskQueue: Context.current().info.taskQueue,
        policy: deps.policy,
      }).catch((err: unknown) => {
        Context.current().log.warn('outbound webhooks not dispatched yet; they stay in the outbox', {
          error: err instanceof Error ? err.message : String(err),
        });
      });
      return result;
    };
  }
  return wrapped as T;
}

export type OutboundWebhookActivities = ReturnType<typeof createOutboundWebhookActivities>;
