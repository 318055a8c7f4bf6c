// Payment webhook routes of the ingress: POST /webhooks/stripe and POST /webhooks/paystack, verified over the raw body.
import type { IncomingHttpHeaders } from 'node:http';
import type { Client } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import type { BillopsConfig } from '../../config/env';
import type { Policy } from '../../domain/policy';
import { dunnedTiers } from '../../paymentEvents/act';
import { receiveDelivery, type DeliveryContext, type ProviderReader } from './delivery';
import { FinishBatcher } from '../../db/webhookEvents';
import type { WebhookProvider } from '../../domain/paymentEvents';
import { recordDelivery, type WebhookMetrics } from './metrics';
import { PendingWrites } from './pendingWrites';
import { identifyPaystackEvent, readPaystackEvent } from '../../paymentEvents/read/paystack';
import { verifyPaystack, verifyStripe } from './signatures';
import { identifyStripeEvent, readStripeEvent } from '../../paymentEvents/read/stripe';
import { LEASE_SECONDS, TEMPORAL_TIMEOUT_MS } from '../../paymentEvents/process';

export type { WebhookMetrics } from './metrics';
export { PendingWrites } from './pendingWrites';

/** Everything but the connections: what the ingress reads from its configuration. */
export interface WebhookSettings {
  taskQueue: string;
  policy: Policy;
  billingPortalUrl: string;
  /** STRIPE_WEBHOOK_SECRET (whsec_...); without it /webhooks/stripe answers 503. */
  stripeWebhookSecret?: string;
  /** PAYSTACK_WEBHOOK_SECRET where set, else PAYSTACK_SECRET_KEY; without either /webhooks/paystack answers 503. */
  paystackSecret?: string;
  /** How long a Temporal call may take before the event is kept failed (answered 2xx); default 10 s, inside providers' timeouts. */
  temporalTimeoutMs?: number;
  /** How long a delivery's claim on an event keeps a concurrent delivery out; default 60 s. */
  claimLeaseSeconds?: number;
}

export interface WebhookDependencies extends WebhookSettings {
  pool: Pool;
  client: Client;
  metrics?: WebhookMetrics;
  /** The writes made after answering (a delivery's finishing update); closing the app waits for them. */
  writes?: PendingWrites;
}

/** The settings for the environment's configuration (DESIGN.md "Configuration"). */
export function webhookSettingsFromConfig(config: BillopsConfig, policy: Policy): WebhookSettings {
  return {
    taskQueue: config.taskQueue,
    policy,
    billingPortalUrl: config.billingPortalUrl,
    stripeWebhookSecret: config.stripe.webhookSecret,
    paystackSecret: config.paystack.webhookSecret ?? config.paystack.secretKey,
  };
}

/**
 * Mounts both routes in an encapsulated plugin whose application/json parser keeps the body as the Buffer received:
 * signatures are over those exact bytes, and the rest of the ingress keeps Fastify's JSON parsing.
 */
export function registerWebhookRoutes(app: FastifyInstance, deps: WebhookDependencies): void {
  const writes = deps.writes ?? new PendingWrites();
  const after = { writes, finisher: new FinishBatcher(deps.pool), dunnedTiers: dunnedTiers(deps.policy) };
  app.addHook('onClose', () => writes.settled());
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
      done(null, body);
    });
    for (const route of routes(deps)) {
      scope.post(route.path, async (request: FastifyRequest, reply: FastifyReply) => {
        if (route.secret === undefined) {
          recordDelivery(deps.metrics ?? {}, route.provider, 'unconfigured', reply.elapsedTime / 1000);
          return reply
            .code(503)
            .send({ statusCode: 503, error: 'Service Unavailable', message: route.unconfigured });
        }
        if (!Buffer.isBuffer(request.body)) {
          return reply.code(415).send({
            statusCode: 415,
            error: 'Unsupported Media Type',
            message: 'send the event as application/json',
          });
        }
        const reader = route.reader(route.secret, request.headers);
        const answer = await receiveDelivery(contextFor(deps, after, request), reader, request.body);
        return reply.code(answer.statusCode).send(answer.body);
      });
    }
  });
}

interface WebhookRoute {
  path: string;
  provider: WebhookProvider;
  secret: string | undefined;
  /** The 503 message: which variable to set. */
  unconfigured: string;
  reader(secret: string, headers: IncomingHttpHeaders): ProviderReader;
}

function routes(deps: WebhookDependencies): WebhookRoute[] {
  return [
    {
      path: '/webhooks/stripe',
      provider: 'stripe',
      secret: deps.stripeWebhookSecret,
      unconfigured:
        'Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET to the endpoint signing secret (whsec_...)',
      reader: (secret, headers) => ({
        provider: 'stripe',
        verify: (rawBody) => verifyStripe(rawBody, headers['stripe-signature'], secret),
        read: (body) => readStripeEvent(body),
        identify: (body) => identifyStripeEvent(body),
      }),
    },
    {
      path: '/webhooks/paystack',
      provider: 'paystack',
      secret: deps.paystackSecret,
      unconfigured:
        'Paystack webhooks are not configured: set PAYSTACK_WEBHOOK_SECRET (or PAYSTACK_SECRET_KEY, which Paystack signs with)',
      reader: (secret, headers) => ({
        provider: 'paystack',
        verify: (rawBody) => verifyPaystack(rawBody, headers['x-paystack-signature'], secret),
        read: (body, rawBody) => readPaystackEvent(body, rawBody),
        identify: (body, rawBody) => identifyPaystackEvent(body, rawBody),
      }),
    },
  ];
}

function contextFor(
  deps: WebhookDependencies,
  after: Pick<DeliveryContext, 'writes' | 'finisher' | 'dunnedTiers'>,
  request: FastifyRequest,
): DeliveryContext {
  return {
    pool: deps.pool,
    client: deps.client,
    taskQueue: deps.taskQueue,
    policy: deps.policy,
    billingPortalUrl: deps.billingPortalUrl,
    temporalTimeoutMs: deps.temporalTimeoutMs ?? TEMPORAL_TIMEOUT_MS,
    leaseSeconds: deps.claimLeaseSeconds ?? LEASE_SECONDS,
    metrics: deps.metrics ?? {},
    ...after,
    log: request.log,
  };
}
