// `billops keys create|list|revoke` as an operator runs them: the secret shown once, stored only as a hash, never listed.
import type { Pool } from 'pg';
import { createPool } from '../../db/pool';
import { operatorCli } from '../support/billopsCli';
import { insertTenant } from '../support/dunningFixtures';
import { testEnv } from '../support/testRuntime';

interface ListedKey {
  id: string;
  name: string;
  scopes: string[];
  tenants: string[] | null;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const KEY_PATTERN = /\bbk_[a-z0-9]{12}_[A-Za-z0-9_-]{43}\b/;

describe('billops keys', () => {
  const billops = operatorCli(`cli-keys-${Date.now()}`);
  let pool: Pool;
  let tenants: string[];

  beforeAll(async () => {
    pool = createPool(testEnv('databaseUrl'), { max: 2 });
    tenants = [(await insertTenant(pool, 'pro')).id, (await insertTenant(pool, 'free')).id];
  });

  afterAll(async () => {
    await pool.end();
  });

  const listed = async (): Promise<ListedKey[]> => {
    const run = await billops('keys', 'list', '--json');
    expect(run.code).toBe(0);
    return JSON.parse(run.stdout) as ListedKey[];
  };

  it('creates a key and shows its secret once; lists it without the secret; revokes it', async () => {
    const created = await billops(
      'keys',
      'create',
      '--scope',
      'usage:write',
      '--tenants',
      tenants.join(','),
      '--name',
      'meter shipper',
    );
    expect(created.code).toBe(0);
    const secret = KEY_PATTERN.exec(created.stdout)?.[0] ?? '';
    expect(secret).not.toBe('');
    const id = secret.slice(3, 15);
    expect(created.stdout).toContain(id);
    expect(created.stdout).toMatch(/shown once/);

    // The database holds a hash, never the secret.
    const { rows } = await pool.query('SELECT * FROM api_keys WHERE id = $1', [id]);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(secret.slice(16));

    const text = await billops('keys', 'list');
    expect(text.code).toBe(0);
    const line = text.stdout.split('\n').find((l) => l.startsWith(id)) ?? '';
    expect(line).toContain('meter shipper');
    expect(line).toContain('usage:write');
    expect(line).toContain(tenants.join(','));
    expect(line).toMatch(/never used/);
    expect(text.stdout).not.toContain(secret.slice(16));

    const json = await billops('keys', 'list', '--json');
    expect(json.stdout).not.toContain(secret.slice(16));
    const entry = (JSON.parse(json.stdout) as ListedKey[]).find((k) => k.id === id);
    expect(entry).toEqual({
      id,
      name: 'meter shipper',
      scopes: ['usage:write'],
      tenants,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      lastUsedAt: null,
      revokedAt: null,
    });

    const revoked = await billops('keys', 'revoke', id);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${id}`);
    expect((await listed()).find((k) => k.id === id)?.revokedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const again = await billops('keys', 'revoke', id);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already revoked/);
  });

  it('answers --json with the secret once, for every tenant when --tenants is left out', async () => {
    const run = await billops('keys', 'create', '--scope', 'usage:read', '--scope', 'usage:write', '--json');
    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout) as ListedKey & { key: string };
    expect(created.key).toMatch(KEY_PATTERN);
    expect(created).toMatchObject({ scopes: ['usage:read', 'usage:write'], tenants: null, revokedAt: null });
    const entry = (await listed()).find((k) => k.id === created.id);
    expect(entry).toMatchObject({ scopes: ['usage:read', 'usage:write'], tenants: null });
    expect(entry).not.toHaveProperty('key');
  });

  it('refuses bad arguments (exit 2), unknown tenants and unknown keys (exit 1)', async () => {
    const noScope = await billops('keys', 'create');
    expect(noScope.code).toBe(2);
    expect(noScope.stderr).toMatch(/--scope is required/);
    const badScope = await billops('keys', 'create', '--scope', 'admin');
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toMatch(/usage:write, usage:read/);
    const unknownTenant = await billops('keys', 'create', '--scope', 'usage:write', '--tenants', 'nobody-x1');
    expect(unknownTenant.code).toBe(1);
    expect(unknownTenant.stderr).toMatch(/unknown tenant nobody-x1/);
    expect(unknownTenant.stdout).not.toMatch(KEY_PATTERN);
    const unknownKey = await billops('keys', 'revoke', 'zzzzzzzzzzzz');
    expect(unknownKey.code).toBe(1);
    expect(unknownKey.stderr).toMatch(/no API key zzzzzzzzzzzz/);
  });
});
