// Usage metering routes of the ingress: POST /usage/events takes a batch of usage events, GET /usage/lag reports
// ingestion lag; both need an API key with the route's scope.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import { Counter, type Registry } from 'prom-client';
import type { ApiKey } from '../db/apiKeys';
import { ingestionLag, ingestUsageEvents, type IngestionLag, type MeterLag } from '../db/usage';
import { requireApiKey, type AuthenticatedKeys } from './apiKeyAuth';
import {
  DEFAULT_MAX_FUTURE_SKEW_MS,
  MAX_BATCH_BODY_BYTES,
  MAX_BATCH_EVENTS,
  type UsageItemStatus,
} from '../domain/usageEvents';

export interface UsageRouteOptions {
  pool: Pool;
  /** Events per batch; later items are refused one by one. */
  maxBatch?: number;
  /** Bytes per body; a larger one is answered 413. */
  maxBodyBytes?: number;
  /** How far ahead of our clock an event may be stamped. */
  maxFutureSkewMs?: number;
  /** Where billops_usage_events_total is counted; the ingress passes its /metrics registry. */
  registry?: Registry;
}

// Items stay unconstrained here: each one is judged by domain/usage so a bad item is refused alone, not the batch.
const batchBodySchema = {
  type: 'object',
  required: ['events'],
  properties: { events: { type: 'array', minItems: 1, items: {} } },
} as const;

const EVENTS_METRIC = 'billops_usage_events_total';

function usageEventsCounter(registry: Registry | undefined): Counter<'status'> | undefined {
  if (!registry) return undefined;
  const existing = registry.getSingleMetric(EVENTS_METRIC);
  if (existing) return existing as Counter<'status'>;
  return new Counter({
    name: EVENTS_METRIC,
    help: 'Usage events received on POST /usage/events, by verdict (accepted, duplicate, rejected).',
    labelNames: ['status'],
    registers: [registry],
  });
}

/** The lag of the key's tenants only, when it is limited to some. */
function lagVisibleTo(lag: IngestionLag, key: ApiKey | undefined): IngestionLag {
  if (!key?.tenants) return lag;
  const allowed = new Set(key.tenants);
  const tenantMeters = lag.tenantMeters.filter((pair) => allowed.has(pair.tenant));
  const meters = new Map<string, MeterLag>();
  for (const { tenant: _tenant, ...pair } of tenantMeters) {
    const seen = meters.get(pair.meter);
    if (!seen) meters.set(pair.meter, { ...pair, tenants: 1 });
    else
      meters.set(pair.meter, {
        ...(pair.lastOccurredAt > seen.lastOccurredAt ? pair : seen),
        tenants: seen.tenants + 1,
      });
  }
  return { ...lag, meters: [...meters.values()], tenantMeters };
}

function badRequest(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message });
}

export function registerUsageRoutes(app: FastifyInstance, opts: UsageRouteOptions): void {
  const maxBatchEvents = opts.maxBatch ?? MAX_BATCH_EVENTS;
  const maxFutureSkewMs = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
  const counter = usageEventsCounter(opts.registry);
  const keys: AuthenticatedKeys = new WeakMap();
  const security = [{ bearer: [] }];

  app.post<{ Body: { events: unknown[] } }>('/usage/events', {
    bodyLimit: opts.maxBodyBytes ?? MAX_BATCH_BODY_BYTES,
    schema: { body: batchBodySchema, security },
    onRequest: requireApiKey(opts.pool, 'usage:write', keys),
    // Fastify's validator coerces a lone value into a one-item array ({"events": 5} → [5]); refuse that shape first.
    preValidation: async (request: FastifyRequest, reply: FastifyReply) => {
      const body = request.body as { events?: unknown } | null;
      if (typeof body !== 'object' || body === null || Array.isArray(body) || !Array.isArray(body.events)) {
        return badRequest(reply, 'body must be a JSON object {"events": [...]} with at least one event');
      }
    },
    handler: async (request, reply) => {
      const key = keys.get(request);
      if (!key) throw new Error('POST /usage/events reached its handler without an authenticated API key');
      const summary = await ingestUsageEvents(opts.pool, request.body.events, {
        producer: { keyId: key.id, tenants: key.tenants },
        maxBatchEvents,
        maxFutureSkewMs,
      });
      const counts: [UsageItemStatus, number][] = [
        ['accepted', summary.accepted],
        ['duplicate', summary.duplicates],
        ['rejected', summary.rejected],
      ];
      for (const [status, n] of counts) if (n > 0) counter?.inc({ status }, n);
      // 422 only when nothing could be recorded; duplicates are a success for an idempotent sender.
      const everyItemRejected = summary.rejected === summary.results.length;
      return reply.code(everyItemRejected ? 422 : 200).send(summary);
    },
  });

  // Runbook "Check usage_events ingestion (last event timestamp)".
  app.get(
    '/usage/lag',
    { schema: { security }, onRequest: requireApiKey(opts.pool, 'usage:read', keys) },
    async (request) => lagVisibleTo(await ingestionLag(opts.pool), keys.get(request)),
  );
}
