// The HTTP ingress: liveness, Prometheus metrics, usage ingestion and signed payment webhooks.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { ingestionLag } from '../../db/usage';
import { createBillopsMetrics, instrumentRequests } from './metrics';
import { registerUsageRoutes } from './usage';
import { registerWebhookRoutes, type WebhookSettings } from './webhooks';

export interface IngressDependencies {
  client: Client;
  pool: Pool;
  registry?: Registry;
  /** Task queue, policy and secrets for the payment webhooks; without them the webhook routes are not mounted. */
  webhooks?: WebhookSettings;
}

export function buildIngress(deps: IngressDependencies): FastifyInstance {
  const app = Fastify({ logger: false });
  const registry = deps.registry ?? new Registry();
  if (!deps.registry) collectDefaultMetrics({ register: registry, prefix: 'billops_' });
  const metrics = createBillopsMetrics(registry, {
    usageLag: async () => (await ingestionLag(deps.pool)).meters,
  });
  instrumentRequests(app, metrics);

  // Liveness plus what the process depends on, so an operator sees which part is down.
  app.get('/healthz', async (_request, reply) => {
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
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', database, temporal });
  });

  app.get('/metrics', async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  registerUsageRoutes(app, { pool: deps.pool, registry });
  if (deps.webhooks) {
    registerWebhookRoutes(app, {
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

  return app;
}
