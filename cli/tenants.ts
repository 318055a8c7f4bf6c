// `billops tenants list|add`: the tenants table, read and written through db/tenants.
import { parseArgs } from 'node:util';
import { addTenant, listTenants } from '../db/tenants';
import { columns, printJson, withDatabase } from './common';

export async function tenantsList(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' } }, strict: true });
  const tenants = await withDatabase((pool) => listTenants(pool));
  if (values.json) printJson(tenants);
  else for (const line of columns(tenants.map((t) => [t.id, t.tier, t.name]))) console.log(line);
  return 0;
}

export async function tenantsAdd(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
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
  // addTenant validates every field (TenantInputError → exit 2) and reports conflicts (exit 1).
  const tenant = await withDatabase((pool) =>
    addTenant(pool, {
      id: values.id,
      name: values.name,
      tier: values.tier,
      email: values.email,
      billingEmail: values['billing-email'],
      currency: values.currency,
      paymentProcessor: values.processor,
    }),
  );
  console.log(`added tenant ${tenant.id} (${tenant.tier})`);
  return 0;
}
