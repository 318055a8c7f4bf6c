// The real webhook routes on an in-process Fastify app, acting on a test worker's task queue, and signed deliveries to
// them through app.inject. A suite using it mocks the ESM-only `cookie` module, which Jest on Node 20 cannot load.
import Fastify, { type LightMyRequestResponse } from 'fastify';
import Stripe from 'stripe';
import { PendingWrites, registerWebhookRoutes } from '../../ingress/webhooks/routes';
import { defaultPolicy } from '../../domain/policy';
import { signPaystackWebhook } from './paystackFake';
import type { TestWorker } from './testWorker';
import { TEST_PORTAL_URL } from './workerDeps';

export interface WebhookApp {
  /** POST /webhooks/stripe, signed with the app's secret unless another `stripe-signature` is given. */
  deliverStripe(body: string, signature?: string): Promise<LightMyRequestResponse>;
  /** POST /webhooks/paystack, signed with the app's secret unless another `x-paystack-signature` is given. */
  deliverPaystack(body: string, signature?: string): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startWebhookApp(
  worker: Pick<TestWorker, 'deps' | 'client'>,
  taskQueue: string,
  secrets: { stripeWebhookSecret: string; paystackSecret?: string },
): Promise<WebhookApp> {
  const app = Fastify({ logger: false });
  // A delivery marks its event done after answering; a test reads the row once that write has landed.
  const writes = new PendingWrites();
  registerWebhookRoutes(app, {
    writes,
    pool: worker.deps.pool,
    client: worker.client,
    taskQueue,
    policy: defaultPolicy,
    billingPortalUrl: TEST_PORTAL_URL,
    ...secrets,
  });
  await app.ready();
  const post = async (url: string, body: string, signature: Record<string, string>) => {
    const answer = await app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json', ...signature },
      payload: body,
    });
    await writes.settled();
    return answer;
  };
  return {
    deliverStripe: (body, signature) =>
      post('/webhooks/stripe', body, {
        'stripe-signature':
          signature ??
          Stripe.webhooks.generateTestHeaderString({ payload: body, secret: secrets.stripeWebhookSecret }),
      }),
    deliverPaystack: (body, signature) => {
      if (signature === undefined && secrets.paystackSecret === undefined) {
        throw new Error('this webhook app has no Paystack secret to sign with');
      }
      return post('/webhooks/paystack', body, {
        'x-paystack-signature': signature ?? signPaystackWebhook(body, secrets.paystackSecret!),
      });
    },
    close: () => app.close(),
  };
}
