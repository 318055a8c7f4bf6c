// Demo data for a fresh database: one tenant per tier (and one on Paystack) with subscriptions, invoices and rates.
import type { Pool, PoolClient } from 'pg';
import { inTransaction } from './pool';
import { insertTenantRow, newTenantSchema, type NewTenantInput } from './tenants';

export const DEMO_TENANT_IDS = ['acme', 'globex', 'initech', 'umbrella'] as const;
export type DemoTenantId = (typeof DEMO_TENANT_IDS)[number];

const DEMO_TENANTS: readonly (NewTenantInput & { id: DemoTenantId })[] = [
  {
    id: 'acme',
    name: 'Acme Corp',
    tier: 'pro',
    email: 'ops@acme.example',
    billingEmail: 'billing@acme.example',
    paymentProcessor: 'stripe',
    stripeCustomerId: 'cus_demo_acme',
    usageCaps: { api_calls: 1_000_000, storage_gb: 500 },
    normalCapacityRps: 200,
  },
  {
    id: 'globex',
    name: 'Globex Corporation',
    tier: 'enterprise',
    email: 'ops@globex.example',
    billingEmail: 'ap@globex.example',
    accountManagerEmail: 'am-globex@billops.example',
    paymentProcessor: 'stripe',
    stripeCustomerId: 'cus_demo_globex',
    usageCaps: { api_calls: 50_000_000 },
    normalCapacityRps: 2000,
  },
  {
    id: 'initech',
    name: 'Initech',
    tier: 'free',
    email: 'ops@initech.example',
    usageCaps: { api_calls: 10_000 },
    normalCapacityRps: 10,
  },
  {
    id: 'umbrella',
    name: 'Umbrella Holdings',
    tier: 'pro',
    email: 'ops@umbrella.example',
    billingEmail: 'finance@umbrella.example',
    currency: 'NGN',
    paymentProcessor: 'paystack',
    paystackCustomerCode: 'CUS_demo_umbrella',
    paystackAuthorizationCode: 'AUTH_demo_umbrella',
    usageCaps: { api_calls: 1_000_000 },
    normalCapacityRps: 200,
  },
];

interface DemoSubscription {
  tenantId: DemoTenantId;
  cycle: 'monthly' | 'annual';
  stripeSubscriptionId?: string;
  paystackSubscriptionCode?: string;
}

const DEMO_SUBSCRIPTIONS: readonly DemoSubscription[] = [
  { tenantId: 'acme', cycle: 'monthly', stripeSubscriptionId: 'sub_demo_acme' },
  { tenantId: 'globex', cycle: 'annual', stripeSubscriptionId: 'sub_demo_globex' },
  { tenantId: 'initech', cycle: 'monthly' },
  { tenantId: 'umbrella', cycle: 'monthly', paystackSubscriptionCode: 'SUB_demo_umbrella' },
];

interface DemoInvoice {
  id: string;
  tenantId: DemoTenantId;
  processorInvoiceId: string;
  status: 'open' | 'paid';
  totalMinor: number;
}

// Last month's invoices: Acme and Umbrella still owe theirs, Globex has paid.
const DEMO_INVOICES: readonly DemoInvoice[] = [
  {
    id: 'inv_demo_acme_1',
    tenantId: 'acme',
    processorInvoiceId: 'in_demo_acme_1',
    status: 'open',
    totalMinor: 4_900,
  },
  {
    id: 'inv_demo_umbrella_1',
    tenantId: 'umbrella',
    processorInvoiceId: 'INV_demo_umbrella_1',
    status: 'open',
    totalMinor: 1_500_000,
  },
  {
    id: 'inv_demo_globex_1',
    tenantId: 'globex',
    processorInvoiceId: 'in_demo_globex_1',
    status: 'paid',
    totalMinor: 250_000,
  },
];

interface DemoRate {
  meter: string;
  tier: 'free' | 'pro' | 'enterprise';
  currency: string;
  unitPriceMinor?: number;
  tiers?: { up_to: number | null; unit_price_minor: number }[];
}

const DEMO_RATES: readonly DemoRate[] = [
  { meter: 'api_calls', tier: 'free', currency: 'USD', unitPriceMinor: 0 },
  { meter: 'api_calls', tier: 'pro', currency: 'USD', unitPriceMinor: 0.05 },
  { meter: 'api_calls', tier: 'pro', currency: 'NGN', unitPriceMinor: 0.75 },
  {
    meter: 'api_calls',
    tier: 'enterprise',
    currency: 'USD',
    tiers: [
      { up_to: 10_000_000, unit_price_minor: 0.04 },
      { up_to: null, unit_price_minor: 0.02 },
    ],
  },
  { meter: 'storage_gb', tier: 'pro', currency: 'USD', unitPriceMinor: 10 },
];
const RATES_EFFECTIVE_FROM = '2026-01-01T00:00:00Z';

/** Inserts whatever demo rows are missing and returns how many demo tenants were new (0 on every later call). */
export async function seedDemoTenants(pool: Pool): Promise<number> {
  return inTransaction(pool, async (client) => {
    const inserted = await insertTenants(client);
    await insertSubscriptions(client);
    await insertInvoices(client);
    await insertRates(client);
    return inserted;
  });
}

async function insertTenants(client: PoolClient): Promise<number> {
  let inserted = 0;
  for (const input of DEMO_TENANTS) {
    const t = newTenantSchema.parse(input);
    inserted += await insertTenantRow(client, t, { ifAbsent: true });
    for (const [meter, capUnits] of Object.entries(t.usageCaps)) {
      await client.query(
        'INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [t.id, meter, capUnits],
      );
    }
  }
  return inserted;
}

async function insertSubscriptions(client: PoolClient): Promise<void> {
  for (const s of DEMO_SUBSCRIPTIONS) {
    const interval = s.cycle === 'annual' ? '1 year' : '1 month';
    const field = s.cycle === 'annual' ? 'year' : 'month';
    // The current billing period in UTC; tier and processor are the tenant's.
    await client.query(
      `INSERT INTO subscriptions (id, tenant_id, tier, status, billing_cycle, current_period_start, current_period_end,
                                  processor, stripe_subscription_id, paystack_subscription_code)
       SELECT $1::text, t.id, t.tier, 'active', $2::text, p.start, p.start + $3::interval, t.payment_processor,
              $4::text, $5::text
       FROM tenants t, (SELECT date_trunc($6::text, now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start) p
       WHERE t.id = $7
       ON CONFLICT DO NOTHING`,
      [
        `sub_demo_${s.tenantId}`,
        s.cycle,
        interval,
        s.stripeSubscriptionId ?? null,
        s.paystackSubscriptionCode ?? null,
        field,
        s.tenantId,
      ],
    );
  }
}

async function insertInvoices(client: PoolClient): Promise<void> {
  for (const inv of DEMO_INVOICES) {
    await client.query(
      `INSERT INTO invoices (id, tenant_id, subscription_id, processor, processor_invoice_id, period_start, period_end,
                             status, subtotal_minor, total_minor, amount_paid_minor, currency, hosted_invoice_url,
                             due_at, paid_at)
       SELECT $1::text, t.id, 'sub_demo_' || t.id, t.payment_processor, $2, m.start - interval '1 month', m.start,
              $3::text, $4::bigint, $4::bigint, CASE WHEN $3::text = 'paid' THEN $4::bigint ELSE 0 END, t.currency,
              'https://billing.example/invoices/' || $1::text, m.start + interval '7 days',
              CASE WHEN $3::text = 'paid' THEN m.start + interval '2 days' END
       FROM tenants t, (SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS start) m
       WHERE t.id = $5
       ON CONFLICT DO NOTHING`,
      [inv.id, inv.processorInvoiceId, inv.status, inv.totalMinor, inv.tenantId],
    );
  }
}

async function insertRates(client: PoolClient): Promise<void> {
  for (const r of DEMO_RATES) {
    await client.query(
      `INSERT INTO rates (meter, tier, effective_from, pricing_model, unit_price_minor, tiers, currency)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT DO NOTHING`,
      [
        r.meter,
        r.tier,
        RATES_EFFECTIVE_FROM,
        r.tiers ? 'graduated' : 'per_unit',
        r.unitPriceMinor ?? null,
        r.tiers ? JSON.stringify(r.tiers) : null,
        r.currency,
      ],
    );
  }
}
