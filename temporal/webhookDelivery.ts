// Waking the delivery workflow of an outbound webhook stream (one per endpoint and tenant): signal-with-start, so a
// running one hears of new deliveries and a finished one is started again.
import type { Client } from '@temporalio/client';
import { webhookDeliveryWorkflowId, type WebhookDeliveryInput } from '../domain/outboundWebhooks';
import { webhookDeliveriesPendingSignal } from '../workflows/definitions';

export async function wakeWebhookDelivery(
  client: Client,
  taskQueue: string,
  input: WebhookDeliveryInput,
): Promise<string> {
  const workflowId = webhookDeliveryWorkflowId(input.endpointId, input.stream);
  await client.workflow.signalWithStart('webhookDeliveryWorkflow', {
    workflowId,
    taskQueue,
    args: [input],
    signal: webhookDeliveriesPendingSignal,
    signalArgs: [],
  });
  return workflowId;
}
