// The HTTP ingress: liveness, Prometheus metrics, usage ingestion, the access and notices API, signed payment webhooks and Alertmanager alerts, described at /docs/json.
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { ingestionLag } from '../db/usage';
import { alertSettingsFromEnvironment, registerAlertRoutes, type AlertSettings } from './alerts/routes';
import { settledTotals } from '../db/settledTotals';
import { createBillopsMetrics, instrumentRequests } from './metrics';
import { registerUsageRoutes } from './usage';
import { DEFAULT_ACCESS_MAX_AGE_SECONDS, registerAccessRoutes } from './access';
import { registerWebhookRoutes, type WebhookSettings } from './webhooks/routes';

export interface IngressDependencies {
  client: Client;
  pool: Pool;
  registry?: Registry;
  /** Task queue, policy and secrets for the payment webhooks; without them the webhook routes are not mounted. */
  webhooks?: WebhookSettings;
  /**
   * Token, routing, task queue and policy for POST /alerts/alertmanager; absent: the webhooks' task queue and policy
   * with ALERTMANAGER_TOKEN and BILLOPS_ALERT_ROUTES from the environment; without either the route answers 503.
   */
  alerts?: AlertSettings;
  /** The access API's cache lifetime (BILLOPS_ACCESS_MAX_AGE_SECONDS); absent: 5 s. */
  access?: { maxAgeSeconds: number };
  /** Overrides of INGRESS_TIMEOUTS. */
  timeouts?: Partial<IngressTimeouts>;
}

export interface IngressTimeouts {
  /** The whole request (headers and body) must arrive within this, or the client gets 408: no slow-drip senders. */
  requestMs: number;
  /** A connection silent this long (nothing received, nothing sent) is closed. */
  connectionMs: number;
  /** An idle keep-alive connection is closed after this; above a gateway's usual 60 s idle timeout. */
  keepAliveMs: number;
}

/** Webhook and usage bodies are small and every route answers in seconds when healthy. */
export const INGRESS_TIMEOUTS: Readonly<IngressTimeouts> = Object.freeze({
  requestMs: 30_000,
  connectionMs: 90_000,
  keepAliveMs: 72_000,
});

const healthSchema = {
  summary: 'Liveness, with the reachability of the database and Temporal',
  response: {
    200: {
      type: 'object',
      properties: { status: { type: 'string' }, database: { type: 'string' }, temporal: { type: 'string' } },
    },
    503: {
      type: 'object',
      properties: { status: { type: 'string' }, database: { type: 'string' }, temporal: { type: 'string' } },
    },
  },
};

export function buildIngress(deps: IngressDependencies): FastifyInstance {
  const timeouts = { ...INGRESS_TIMEOUTS, ...deps.timeouts };
  const app = Fastify({
    logger: false,
    requestTimeout: timeouts.requestMs,
    connectionTimeout: timeouts.connectionMs,
    keepAliveTimeout: timeouts.keepAliveMs,
  });
  const registry = deps.registry ?? new Registry();
  if (!deps.registry) collectDefaultMetrics({ register: registry, prefix: 'billops_' });
  const metrics = createBillopsMetrics(registry, {
    usageLag: async () => (await ingestionLag(deps.pool)).meters,
    settledTotals: () => settledTotals(deps.pool),
  });
  instrumentRequests(app, metrics);

  // The OpenAPI description is built from the route schemas, so it must see every route: routes live in a plugin
  // registered after it.
  app.register(swagger, {
    openapi: {
      info: { title: 'billops ingress', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.register(async (api) => {
    // Liveness plus what the process depends on, so an operator sees which part is down.
    api.get('/healthz', { schema: healthSchema }, async (_request, reply) => {
      const [database, temporal] = await Promise.all([
        deps.pool.query('SELECT 1').then(
          () => 'ok',
          (err: Error) => err.message,
        ),
        deps.client.workflowService.getSystemInfo({}).then(
          () => 'ok',
          (err: Error) => err.message,
        ),
      ]);
      const healthy = database === 'ok' && temporal === 'ok';
      return reply
        .code(healthy ? 200 : 503)
        .send({ status: healthy ? 'ok' : 'degraded', database, temporal });
    });

    api.get(
      '/metrics',
      { schema: { summary: 'Prometheus metrics (text exposition format)', produces: ['text/plain'] } },
      async (_request, reply) => {
        return reply.type(registry.contentType).send(await registry.metrics());
      },
    );

    registerUsageRoutes(api, { pool: deps.pool, registry });
    registerAccessRoutes(api, {
      pool: deps.pool,
      maxAgeSeconds: deps.access?.maxAgeSeconds ?? DEFAULT_ACCESS_MAX_AGE_SECONDS,
    });
    if (deps.webhooks) {
      registerWebhookRoutes(api, {
        ...deps.webhooks,
        pool: deps.pool,
        client: deps.client,
        metrics: {
          unknownTenant: metrics.webhookEventsUnknownTenant,
          webhookEvents: metrics.webhookEvents,
          processingSeconds: metrics.webhookProcessingSeconds,
        },
      });
    }

    registerAlertRoutes(api, {
      settings: deps.alerts ?? alertSettingsFromEnvironment(deps.webhooks),
      client: deps.client,
      registry,
    });

    api.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  });

  return app;
}
