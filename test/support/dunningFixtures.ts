// Tenants, invoices and lifecycle inputs for dunning tests, written to the shared PostgreSQL.
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { DunningInput } from '../../domain/dunning';
import { defaultPolicy, type BillingTier } from '../../domain/policy';
import { TEST_PORTAL_URL } from './workerDeps';

export interface TestTenant {
  id: string;
  tier: BillingTier;
  billingEmail: string;
  accountManagerEmail: string;
}

export async function insertTenant(
  pool: Pool,
  tier: BillingTier,
  opts: { processor?: 'stripe' | 'paystack' | 'none'; paystackAuthorization?: string } = {},
): Promise<TestTenant> {
  const id = `${tier}-${randomUUID().slice(0, 8)}`;
  const processor = opts.processor ?? (tier === 'free' ? 'none' : 'stripe');
  const tenant = { id, tier, billingEmail: `billing@${id}.test`, accountManagerEmail: `am@${id}.test` };
  await pool.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, account_manager_email, currency, payment_processor,
                          paystack_authorization_code, paystack_customer_code)
     VALUES ($1, $1, $2, $3, $3, $4, 'USD', $5, $6, $7)`,
    [
      id,
      tier,
      tenant.billingEmail,
      tenant.accountManagerEmail,
      processor,
      opts.paystackAuthorization ?? null,
      opts.paystackAuthorization ? `CUS_${id}` : null,
    ],
  );
  return tenant;
}

export async function insertOpenInvoice(
  pool: Pool,
  tenantId: string,
  opts: { totalMinor?: number; processor?: 'stripe' | 'paystack' | 'none'; processorInvoiceId?: string } = {},
): Promise<{ invoiceId: string; amountMinor: number; currency: string }> {
  const invoiceId = `in_${randomUUID().slice(0, 12)}`;
  const totalMinor = opts.totalMinor ?? 4900;
  await pool.query(
    `INSERT INTO invoices (id, tenant_id, processor, processor_invoice_id, period_start, period_end, status,
                           subtotal_minor, total_minor, currency, due_at)
     VALUES ($1, $2, $3, $4, now() - interval '1 month', now(), 'open', $5, $5, 'USD', now())`,
    [invoiceId, tenantId, opts.processor ?? 'none', opts.processorInvoiceId ?? null, totalMinor],
  );
  return { invoiceId, amountMinor: totalMinor, currency: 'USD' };
}

export function dunningInput(
  tenant: TestTenant,
  invoice: DunningInput['invoice'],
  processor: DunningInput['processor'] = 'stripe',
): DunningInput {
  return {
    tenantId: tenant.id,
    tier: tenant.tier,
    processor,
    invoice,
    policy: defaultPolicy,
    billingPortalUrl: TEST_PORTAL_URL,
  };
}
