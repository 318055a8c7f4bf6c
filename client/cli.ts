// The operator CLI `billops`: database and tenant commands now; workflow steering commands join here.
import { parseArgs } from 'node:util';
import { migrate } from '../db/migrate';
import { createPool, describeDatabaseUrl } from '../db/pool';
import { addTenant, listTenants } from '../db/tenants';
import { loadConfig } from './config';

const usage = `usage: billops <command> [options]

commands:
  db migrate                       apply pending database migrations (DATABASE_URL)
  tenants list [--json]            list tenants
  tenants add --id ID --name NAME --tier free|pro|enterprise --email ADDRESS
              [--billing-email ADDRESS] [--currency USD] [--processor stripe|paystack|none]
  help                             this text

exit codes: 0 done, 1 not found or refused, 2 bad arguments or configuration`;

export class UsageError extends Error {}

function requireDatabaseUrl(): string {
  const config = loadConfig();
  if (!config.databaseUrl) {
    throw new UsageError(
      'DATABASE_URL is not set; the CLI works on a real PostgreSQL (npm start prints the embedded one).',
    );
  }
  return config.databaseUrl;
}

async function run(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (!command || command === 'help' || command === '--help') {
    console.log(usage);
    return command ? 0 : 2;
  }
  if (command === 'db' && sub === 'migrate') {
    const url = requireDatabaseUrl();
    const applied = await migrate(url, { log: (line) => console.log(line) });
    console.log(
      `${describeDatabaseUrl(url)}: ${applied.length} migrations applied${applied.length ? ': ' + applied.join(', ') : ''}`,
    );
    return 0;
  }
  if (command === 'tenants' && sub === 'list') {
    const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' } }, strict: true });
    const pool = createPool(requireDatabaseUrl(), { max: 1 });
    try {
      const tenants = await listTenants(pool);
      if (values.json) console.log(JSON.stringify(tenants, null, 2));
      else for (const t of tenants) console.log(`${t.id.padEnd(20)} ${t.tier.padEnd(11)} ${t.name}`);
      return 0;
    } finally {
      await pool.end();
    }
  }
  if (command === 'tenants' && sub === 'add') {
    const { values } = parseArgs({
      args: rest,
      strict: true,
      options: {
        id: { type: 'string' },
        name: { type: 'string' },
        tier: { type: 'string' },
        email: { type: 'string' },
        'billing-email': { type: 'string' },
        currency: { type: 'string' },
        processor: { type: 'string' },
      },
    });
    const pool = createPool(requireDatabaseUrl(), { max: 1 });
    try {
      const tenant = await addTenant(pool, {
        id: values.id,
        name: values.name,
        tier: values.tier,
        email: values.email,
        billingEmail: values['billing-email'],
        currency: values.currency,
        paymentProcessor: values.processor,
      });
      console.log(`added tenant ${tenant.id} (${tenant.tier})`);
      return 0;
    } finally {
      await pool.end();
    }
  }
  throw new UsageError(`unknown command: ${argv.join(' ')}`);
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    const isUsage =
      err instanceof UsageError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') ||
      err.name === 'ZodError' ||
      err.name === 'TenantInputError';
    console.error(`billops: ${err.message}`);
    if (isUsage) console.error(`\n${usage}`);
    process.exit(isUsage ? 2 : 1);
  },
);
