// Delivers one (endpoint, tenant) stream of outbound webhooks in order: each delivery is sent, retried on the
// policy's increasing intervals for up to its maxDays, and only then does the next one go (seed 000's webhook rule).
import { continueAsNew, proxyActivities, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import type { NextDelivery, OutboundWebhookActivities } from '../activities/outboundWebhooks';
import { retryOffsetsMs, type DeliveryStatus, type WebhookDeliveryInput } from '../domain/outboundWebhooks';
import { webhookDeliveriesPendingSignal } from './definitions';
import { quick, step } from './shared/activityOptions';

export interface WebhookDeliveryOutcome {
  delivered: number;
  failed: number;
}

export async function webhookDeliveryWorkflow(input: WebhookDeliveryInput): Promise<WebhookDeliveryOutcome> {
  const outbox = proxyActivities<OutboundWebhookActivities>(quick(input.policy));
  const sender = proxyActivities<OutboundWebhookActivities>(step(input.policy));
  const retryAt = retryOffsetsMs(input.policy.webhookRetry);
  const outcome: WebhookDeliveryOutcome = { delivered: 0, failed: 0 };

  // Message-handling API: a signal, not an update, because the outbox (not the message) carries the deliveries.
  let woken = false;
  setHandler(webhookDeliveriesPendingSignal, () => {
    woken = true;
  });

  /** Attempts until delivered, refused, or past the schedule's last retry; the schedule counts from attempt 1. */
  async function deliver(next: NextDelivery): Promise<DeliveryStatus> {
    let attempts = next.attempts;
    let firstAt = next.firstAttemptAt === null ? null : Date.parse(next.firstAttemptAt);
    for (;;) {
      if (firstAt !== null && attempts > 0) {
        const due = firstAt + retryAt[Math.min(attempts, retryAt.length) - 1]!;
        if (due > Date.now()) await sleep(due - Date.now());
      }
      firstAt ??= Date.now();
      attempts += 1;
      const result = await sender.attemptWebhookDelivery({
        deliveryId: next.deliveryId,
        round: next.round,
        attempt: attempts,
        attemptedAt: new Date(Date.now()).toISOString(),
        final: attempts > retryAt.length,
      });
      if (result.status !== 'pending') return result.status;
    }
  }

  // Main workflow logic: the stream's oldest pending delivery, until none is left and nothing new was signalled.
  for (;;) {
    woken = false;
    const next = await outbox.nextWebhookDelivery({
      endpointId: input.endpointId,
      stream: input.stream,
    });
    if (next === null) {
      if (woken) continue;
      return outcome;
    }
    const status = await deliver(next);
    if (status === 'delivered') outcome.delivered += 1;
    else outcome.failed += 1;
    if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof webhookDeliveryWorkflow>(input);
  }
}
