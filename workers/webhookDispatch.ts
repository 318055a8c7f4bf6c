// The sweep that hands outbox events to their delivery workflows when nothing else did: events written outside a
// dispatching activity (the CLI, the ingress, the deletion) or whose dispatch failed are picked up within a period.
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { dispatchWebhookDeliveries } from '../activities/outboundWebhooks';
import type { Policy } from '../domain/policy';

export const WEBHOOK_DISPATCH_EVERY_MS = 30_000;

export function startWebhookDispatch(deps: {
  pool: Pool;
  client: Client;
  taskQueue: string;
  policy?: Pick<Policy, 'webhookRetry' | 'apiRetry'>;
  everyMs?: number;
}): { stop(): Promise<void> } {
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() =>
      dispatchWebhookDeliveries(deps).catch((err: unknown) => {
        // The next sweep tries again; the message names what failed, never a secret.
        console.warn(
          `billops: outbound webhook dispatch failed: ${err instanceof Error ? err.message : String(err)}`,
        );
      }),
    );
  }, deps.everyMs ?? WEBHOOK_DISPATCH_EVERY_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
