// API-key authentication for the usage routes: the key a request presents, its scope, and 401/403 when either is wrong.
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Pool } from 'pg';
import { authenticateApiKey, type ApiKey, type ApiKeyScope } from '../db/apiKeys';

/** The key each authenticated request presented, for its handler. */
export type AuthenticatedKeys = WeakMap<FastifyRequest, ApiKey>;

/** `Authorization: Bearer <key>`, else `X-Api-Key: <key>`. */
export function presentedApiKey(request: FastifyRequest): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1];
  if (bearer) return bearer;
  const header = request.headers['x-api-key'];
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  return value || undefined;
}

function refuse(reply: FastifyReply, statusCode: 401 | 403, message: string): FastifyReply {
  if (statusCode === 401) reply.header('www-authenticate', 'Bearer');
  return reply
    .code(statusCode)
    .send({ statusCode, error: statusCode === 401 ? 'Unauthorized' : 'Forbidden', message });
}

/** Runs before the body is read: an unauthenticated request costs one indexed lookup and nothing else. */
export function requireApiKey(pool: Pool, scope: ApiKeyScope, keys: AuthenticatedKeys): onRequestHookHandler {
  const create = `billops keys create --scope ${scope}`;
  return async (request, reply) => {
    const presented = presentedApiKey(request);
    if (!presented) {
      return refuse(
        reply,
        401,
        `an API key with scope ${scope} is required: send "Authorization: Bearer <key>" or "X-Api-Key: <key>" (${create})`,
      );
    }
    const check = await authenticateApiKey(pool, presented);
    if (!check.ok) {
      const why = check.problem === 'revoked' ? 'has been revoked' : 'is not a billops API key';
      return refuse(reply, 401, `the API key ${why}: ask an operator for a new one (${create})`);
    }
    if (!check.key.scopes.includes(scope)) {
      return refuse(
        reply,
        403,
        `API key ${check.key.id} lacks scope ${scope} (it has ${check.key.scopes.join(', ')}): use a key with it (${create})`,
      );
    }
    keys.set(request, check.key);
  };
}
