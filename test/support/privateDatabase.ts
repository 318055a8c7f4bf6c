// A migrated database of a suite's own on the shared PostgreSQL server, for suites whose rows, locks or read-only mode
// no other suite may share.
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { migrate } from '../../db/migrate';
import { testEnv } from './testRuntime';

export interface PrivateDatabase {
  url: string;
  drop(): Promise<void>;
}

async function asAdmin(sql: string): Promise<void> {
  const admin = new Client({ connectionString: testEnv('adminDatabaseUrl') });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** `billops_<label>_<random>`, created and migrated. */
export async function privateDatabase(label: string): Promise<PrivateDatabase> {
  const name = `billops_${label}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  await asAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(testEnv('adminDatabaseUrl'));
  url.pathname = `/${name}`;
  await migrate(url.toString());
  return {
    url: url.toString(),
    drop: () => asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
