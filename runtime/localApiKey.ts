// The usage API key `npm start` makes for the demo: created once, kept in a file under the data directory for
// `billops usage load` and local producers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { API_KEY_SCOPES, authenticateApiKey, createApiKey, LOCAL_API_KEY_FILE } from '../db/apiKeys';

/**
 * The path of the local key file, written with a new key when there is none or the database does not know its key
 * (a fresh database); a key an operator revoked stays revoked.
 */
export async function ensureLocalApiKey(
  pool: Pool,
  dataDir: string,
): Promise<{ file: string; created: boolean }> {
  const file = join(dataDir, LOCAL_API_KEY_FILE);
  if (existsSync(file)) {
    const check = await authenticateApiKey(pool, readFileSync(file, 'utf8').trim());
    if (check.ok || check.problem === 'revoked') return { file, created: false };
  }
  const { secret } = await createApiKey(pool, {
    name: 'npm start (local demo)',
    scopes: [...API_KEY_SCOPES],
    tenants: null,
  });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { file, created: true };
}
