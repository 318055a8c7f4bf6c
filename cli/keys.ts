// `billops keys create|list|revoke`: the API keys usage producers present to the ingress, through db/apiKeys.
import { parseArgs } from 'node:util';
import {
  API_KEY_SCOPES,
  ApiKeyInputError,
  createApiKey,
  listApiKeys,
  revokeApiKey,
  type ApiKey,
  type ApiKeyScope,
} from '../db/apiKeys';
import { TENANT_ID_FORMAT } from '../domain/vocabulary';
import { columns, onePositional, printJson, RefusedError, UsageError, withDatabase } from './common';
import { compactTime } from './format';

/** `--scope usage:write,usage:read` (or access:read, notices:write for the product's gateway and dashboard), or the flag repeated. */
export function parseScopes(values: string[] | undefined): ApiKeyScope[] {
  const words = (values ?? []).flatMap((v) => v.split(',')).map((w) => w.trim().toLowerCase());
  if (words.filter(Boolean).length === 0) {
    throw new UsageError(`--scope is required: one or more of ${API_KEY_SCOPES.join(', ')}, comma-separated`);
  }
  return [
    ...new Set(
      words.map((word) => {
        const scope = API_KEY_SCOPES.find((s) => s === word);
        if (!scope)
          throw new UsageError(`--scope must be ${API_KEY_SCOPES.join(', ')} (got ${JSON.stringify(word)})`);
        return scope;
      }),
    ),
  ];
}

/** `--tenants a,b`; absent: every tenant. */
export function parseTenants(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const tenants = value.split(',').map((t) => t.trim());
  const bad = tenants.find((t) => !TENANT_ID_FORMAT.test(t));
  if (bad !== undefined) {
    throw new UsageError(`--tenants must be tenant ids separated by commas (got ${JSON.stringify(bad)})`);
  }
  return [...new Set(tenants)];
}

function tenantsText(key: ApiKey): string {
  return key.tenants ? key.tenants.join(',') : 'all tenants';
}

export async function keysCreate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      scope: { type: 'string', multiple: true },
      tenants: { type: 'string' },
      name: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const scopes = parseScopes(values.scope);
  const tenants = parseTenants(values.tenants);
  const name = values.name?.trim() ?? '';
  const { key, secret } = await withDatabase(async (pool) => {
    try {
      return await createApiKey(pool, { name, scopes, tenants });
    } catch (err) {
      if (err instanceof ApiKeyInputError) throw new RefusedError(err.message);
      throw err;
    }
  });
  if (values.json) {
    printJson({ ...key, key: secret });
    return 0;
  }
  console.log(
    `created API key ${key.id}${name ? ` "${name}"` : ''}: ${key.scopes.join(',')} for ${tenantsText(key)}`,
  );
  console.log('the key is shown once (billops keeps only its hash); store it now:');
  console.log(secret);
  return 0;
}

export async function keysList(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { json: { type: 'boolean' } } });
  const keys = await withDatabase((pool) => listApiKeys(pool));
  if (values.json) {
    printJson(keys);
    return 0;
  }
  if (keys.length === 0) console.log('no API keys (billops keys create --scope usage:write makes one)');
  const rows = keys.map((k) => [
    k.id,
    k.name || '-',
    k.scopes.join(','),
    tenantsText(k),
    `created ${compactTime(k.createdAt.toISOString())}`,
    k.lastUsedAt ? `used ${compactTime(k.lastUsedAt.toISOString())}` : 'never used',
    k.revokedAt ? `revoked ${compactTime(k.revokedAt.toISOString())}` : 'active',
  ]);
  for (const line of columns(rows)) console.log(line);
  return 0;
}

export async function keysRevoke(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: {} });
  const id = onePositional(positionals, '<id>');
  const result = await withDatabase((pool) => revokeApiKey(pool, id));
  if (!result) throw new RefusedError(`no API key ${id} (billops keys list shows every key's id)`);
  const at = compactTime(result.key.revokedAt?.toISOString());
  console.log(
    result.alreadyRevoked
      ? `${id} was already revoked at ${at}`
      : `revoked ${id} at ${at}: requests that present it are answered 401 from now on`,
  );
  return 0;
}
