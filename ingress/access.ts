// The access API the product's gateway and dashboard read: a tenant's access (cacheable, with an ETag), the changes
// since a cursor for gateways that sync, and the in-app notices with their acknowledgement.
import { createHash } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Pool } from 'pg';
import type { ApiKey } from '../db/apiKeys';
import {
  accessChangedSince,
  AccessCursorError,
  ACCESS_STATES,
  acknowledgeNotice,
  openNotices,
  readTenantAccess,
} from '../db/access';
import { SERVICE_CONTROL_SOURCES } from '../domain/serviceControls';
import { requireApiKey, type AuthenticatedKeys } from './apiKeyAuth';

export interface AccessRouteOptions {
  pool: Pool;
  /** Cache-Control: max-age of GET /v1/tenants/{id}/access (BILLOPS_ACCESS_MAX_AGE_SECONDS). */
  maxAgeSeconds: number;
}

export const DEFAULT_ACCESS_MAX_AGE_SECONDS = 5;
/** Tenants per page of GET /v1/access. */
export const ACCESS_PAGE_DEFAULT = 100;
export const ACCESS_PAGE_MAX = 1000;

const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' } },
} as const;

const noticeSchema = {
  type: 'object',
  required: ['id', 'kind', 'message', 'createdAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    message: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    dismissedAt: { type: 'string', format: 'date-time' },
    dismissedBy: { type: 'string' },
  },
} as const;

const accessSchema = {
  type: 'object',
  required: ['tenantId', 'state', 'rateLimitPercent', 'readOnly', 'holds', 'notices'],
  properties: {
    tenantId: { type: 'string' },
    state: { type: 'string', enum: [...ACCESS_STATES] },
    rateLimitPercent: { type: 'integer', minimum: 0, maximum: 100 },
    readOnly: { type: 'boolean' },
    holds: {
      type: 'array',
      items: {
        type: 'object',
        required: ['source', 'since', 'reason'],
        properties: {
          source: { type: 'string', enum: [...SERVICE_CONTROL_SOURCES] },
          since: { type: 'string', format: 'date-time' },
          until: { type: 'string', format: 'date-time' },
          reason: { type: 'string' },
        },
      },
    },
    paymentUrl: { type: 'string' },
    notices: { type: 'array', items: noticeSchema },
  },
} as const;

const tenantParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

const security = [{ bearer: [] }];

function notFound(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(404).send({ statusCode: 404, error: 'Not Found', message });
}

function unknownTenant(reply: FastifyReply, tenantId: string): FastifyReply {
  return notFound(reply, `no tenant ${tenantId} is visible to this API key: check the id`);
}

/** A key limited to some tenants sees the others as unknown (404): it cannot learn which tenant ids exist. */
function visible(key: ApiKey | undefined, tenantId: string): boolean {
  return key !== undefined && (key.tenants === null || key.tenants.includes(tenantId));
}

/** A strong ETag over the body as sent. */
function etagOf(body: string): string {
  return `"${createHash('sha256').update(body, 'utf8').digest('base64url').slice(0, 32)}"`;
}

/** If-None-Match: `*`, or a list of tags, weak or strong (RFC 9110 weak comparison). */
function matches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/** The HTTP status a thrown value carries (Fastify's validation and HTTP errors set statusCode), else 500. */
function statusCodeOf(error: unknown): number {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const code = (error as { statusCode?: unknown }).statusCode;
    if (typeof code === 'number' && Number.isInteger(code)) return code;
  }
  return 500;
}

export function registerAccessRoutes(app: FastifyInstance, opts: AccessRouteOptions): void {
  // Own scope: its error handler answers without internal text and leaves the other routes' handlers alone.
  app.register(async (api) => {
    const keys: AuthenticatedKeys = new WeakMap();
    const maxAge = `max-age=${opts.maxAgeSeconds}`;

    // Fastify 5.10+ types what reaches an error handler as unknown: anything can be thrown.
    api.setErrorHandler((error: unknown, request, reply) => {
      const status = statusCodeOf(error);
      if (status >= 400 && status < 500) {
        const message = error instanceof Error ? error.message : String(error);
        return reply
          .code(status)
          .send({ statusCode: status, error: STATUS_CODES[status] ?? 'Bad Request', message });
      }
      // The detail goes to the server log only: a body never carries internal error text.
      request.log.error({ err: error }, 'access API request failed');
      return reply.code(500).send({
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'billops could not answer this request just now: retry shortly',
      });
    });

    api.get<{ Params: { id: string } }>('/v1/tenants/:id/access', {
      schema: {
        summary: "A tenant's access for the gateway: state, rate limit, holds, payment link, open notices",
        params: tenantParams,
        headers: { type: 'object', properties: { 'if-none-match': { type: 'string' } } },
        security,
        response: { 200: accessSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
      },
      onRequest: requireApiKey(opts.pool, 'access:read', keys),
      handler: async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
        const tenantId = request.params.id;
        if (!visible(keys.get(request), tenantId)) return unknownTenant(reply, tenantId);
        const access = await readTenantAccess(opts.pool, tenantId);
        if (!access) return unknownTenant(reply, tenantId);
        const body = JSON.stringify(access);
        const etag = etagOf(body);
        reply.header('etag', etag).header('cache-control', maxAge);
        if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send();
        return reply.type('application/json; charset=utf-8').send(body);
      },
    });

    // nginx's auth_request reads only the status (2xx serve, 401/403 refuse) and the headers it copies out.
    api.get<{ Params: { id: string } }>('/v1/tenants/:id/access/decision', {
      schema: {
        summary:
          "The gateway's yes or no (nginx auth_request, deploy/gateway/): 204 serve (active, throttled), 403 refuse " +
          '(blocked, suspended, deleted, unknown); Billops-Access-State, Billops-Rate-Limit-Percent and ' +
          'Billops-Payment-Url say why',
        params: tenantParams,
        security,
        response: { 204: { type: 'null' }, 401: errorSchema, 403: errorSchema },
      },
      onRequest: requireApiKey(opts.pool, 'access:read', keys),
      handler: async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
        const tenantId = request.params.id;
        const access = visible(keys.get(request), tenantId)
          ? await readTenantAccess(opts.pool, tenantId)
          : undefined;
        const state = access?.state ?? 'unknown';
        reply.header('billops-access-state', state).header('cache-control', maxAge);
        if (access) {
          reply.header('billops-rate-limit-percent', String(access.rateLimitPercent));
          if (access.paymentUrl) reply.header('billops-payment-url', access.paymentUrl);
        }
        return reply.code(state === 'active' || state === 'throttled' ? 204 : 403).send();
      },
    });

    api.get<{ Querystring: { changedSince?: string; limit?: number } }>('/v1/access', {
      schema: {
        summary:
          'Every tenant whose access changed since a cursor (none: every tenant ever restricted), for gateways that sync',
        querystring: {
          type: 'object',
          properties: {
            changedSince: { type: 'string', maxLength: 4096 },
            limit: { type: 'integer', minimum: 1, maximum: ACCESS_PAGE_MAX, default: ACCESS_PAGE_DEFAULT },
          },
        },
        security,
        response: {
          200: {
            type: 'object',
            required: ['tenants', 'nextCursor', 'hasMore'],
            properties: {
              tenants: { type: 'array', items: accessSchema },
              nextCursor: { type: 'string' },
              hasMore: { type: 'boolean' },
            },
          },
          400: errorSchema,
          401: errorSchema,
          403: errorSchema,
        },
      },
      onRequest: requireApiKey(opts.pool, 'access:read', keys),
      handler: async (request, reply) => {
        const key = keys.get(request);
        try {
          return await accessChangedSince(opts.pool, request.query.changedSince, {
            limit: request.query.limit ?? ACCESS_PAGE_DEFAULT,
            tenants: key?.tenants ?? null,
          });
        } catch (err) {
          if (err instanceof AccessCursorError) {
            return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: err.message });
          }
          throw err;
        }
      },
    });

    api.get<{ Params: { id: string } }>('/v1/tenants/:id/notices', {
      schema: {
        summary: "A tenant's open in-app notices (warning, limits, suspension, incidents), oldest first",
        params: tenantParams,
        security,
        response: {
          200: {
            type: 'object',
            required: ['tenantId', 'notices'],
            properties: { tenantId: { type: 'string' }, notices: { type: 'array', items: noticeSchema } },
          },
          401: errorSchema,
          403: errorSchema,
          404: errorSchema,
        },
      },
      onRequest: requireApiKey(opts.pool, 'access:read', keys),
      handler: async (request, reply) => {
        const tenantId = request.params.id;
        if (!visible(keys.get(request), tenantId)) return unknownTenant(reply, tenantId);
        const exists = await opts.pool.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]);
        if (exists.rowCount === 0) return unknownTenant(reply, tenantId);
        return { tenantId, notices: await openNotices(opts.pool, tenantId) };
      },
    });

    api.post<{ Params: { id: string; nid: string } }>('/v1/tenants/:id/notices/:nid/ack', {
      schema: {
        summary: 'Acknowledge an in-app notice: it is no longer listed as open',
        params: {
          type: 'object',
          required: ['id', 'nid'],
          properties: { id: tenantParams.properties.id, nid: { type: 'string', pattern: '^[0-9]{1,18}$' } },
        },
        security,
        response: { 200: noticeSchema, 401: errorSchema, 403: errorSchema, 404: errorSchema },
      },
      onRequest: requireApiKey(opts.pool, 'notices:write', keys),
      handler: async (request, reply) => {
        const { id: tenantId, nid } = request.params;
        const key = keys.get(request);
        if (!key || !visible(key, tenantId)) return unknownTenant(reply, tenantId);
        const notice = await acknowledgeNotice(opts.pool, tenantId, nid, `api-key:${key.id}`);
        if (!notice)
          return notFound(
            reply,
            `tenant ${tenantId} has no notice ${nid}: list them with GET /v1/tenants/${tenantId}/notices`,
          );
        return notice;
      },
    });
  });
}
