// `billops db migrate`: applies pending migrations to the database DATABASE_URL names.
import { parseArgs } from 'node:util';
import { migrate } from '../db/migrate';
import { describeDatabaseUrl } from '../db/pool';
import { requireDatabaseUrl } from './common';

export async function dbMigrate(args: string[]): Promise<number> {
  parseArgs({ args, options: {}, strict: true });
  const url = requireDatabaseUrl();
  const applied = await migrate(url, { log: (line) => console.log(line) });
  const names = applied.length ? `: ${applied.join(', ')}` : '';
  console.log(`${describeDatabaseUrl(url)}: ${applied.length} migrations applied${names}`);
  return 0;
}
