// The rows a payment webhook reads and writes: the tenant it names, our invoice for the processor's, and marking that invoice paid.
import type { Pool } from 'pg';
import type { PaymentProcessorName } from '../domain/dunning';
import type { BillingTier } from '../domain/policy';
import type { FailedProcessorInvoice, PaidProcessorInvoice, WebhookProvider } from '../domain/paymentEvents';
import { applyPayment, recordConfirmedPayment, type PaymentApplication } from './payments';

export interface WebhookTenant {
  id: string;
  name: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  deleted: boolean;
}

/** Our invoice and the tenant it belongs to, or another tenant's: the processor and our records disagree. */
export class InvoiceOwnerMismatchError extends Error {
  override name = 'InvoiceOwnerMismatchError';
}

/** The tenants columns a WebhookTenant is read from, as the claim statement returns them. */
export interface TenantRow {
  id: string;
  name: string;
  tier: BillingTier;
  payment_processor: PaymentProcessorName;
  deleted_at: Date | null;
}

const CUSTOMER_COLUMN: Record<WebhookProvider, string> = {
  stripe: 'stripe_customer_id',
  paystack: 'paystack_customer_code',
};

/**
 * The tenant an event names, as one SELECT over the two placeholders given: metadata.tenant_id first, else the
 * processor's customer mapped by the tenants table; no row when neither is ours (or both are NULL).
 */
export function namedTenantSql(
  provider: WebhookProvider,
  metadataTenantIdParam: string,
  customerIdParam: string,
): string {
  return `SELECT id, name, tier, payment_processor, deleted_at
            FROM (SELECT 1 AS priority, id, name, tier, payment_processor, deleted_at
                    FROM tenants WHERE id = ${metadataTenantIdParam}
                  UNION ALL
                  SELECT 2, id, name, tier, payment_processor, deleted_at
                    FROM tenants WHERE ${CUSTOMER_COLUMN[provider]} = ${customerIdParam}) named
           ORDER BY priority
           LIMIT 1`;
}

export function webhookTenant(row: TenantRow): WebhookTenant {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    processor: row.payment_processor,
    deleted: row.deleted_at !== null,
  };
}

/** Our invoice as a webhook finds it: whose it is and whether it is still to be paid. */
export interface InvoiceRow {
  id: string;
  tenant_id: string;
  status: string;
}

/** Our invoice for the processor's: by our id in metadata, by the payment transaction's reference, by processor id. */
async function findInvoice(
  pool: Pool,
  provider: WebhookProvider,
  ref: Pick<PaidProcessorInvoice, 'ourInvoiceId' | 'transactionReference' | 'processorInvoiceId'>,
): Promise<InvoiceRow | undefined> {
  const lookups: [string, unknown[]][] = [];
  if (ref.ourInvoiceId)
    lookups.push(['SELECT id, tenant_id, status FROM invoices WHERE id = $1', [ref.ourInvoiceId]]);
  if (ref.transactionReference) {
    lookups.push([
      `SELECT i.id, i.tenant_id, i.status FROM payment_transactions t JOIN invoices i ON i.id = t.invoice_id
       WHERE t.processor = $1 AND t.reference = $2`,
      [provider, ref.transactionReference],
    ]);
  }
  if (ref.processorInvoiceId) {
    lookups.push([
      'SELECT id, tenant_id, status FROM invoices WHERE processor = $1 AND processor_invoice_id = $2',
      [provider, ref.processorInvoiceId],
    ]);
  }
  for (const [sql, params] of lookups) {
    const { rows } = await pool.query<InvoiceRow>(sql, params);
    if (rows[0]) return rows[0];
  }
  return undefined;
}

/** The invoice, when it is the tenant's; else InvoiceOwnerMismatchError. */
export function ownedBy(invoice: InvoiceRow, tenant: WebhookTenant, provider: WebhookProvider): InvoiceRow {
  if (invoice.tenant_id !== tenant.id) {
    throw new InvoiceOwnerMismatchError(
      `the ${provider} event names tenant ${tenant.id}, but our invoice ${invoice.id} belongs to tenant ${invoice.tenant_id}: correct the tenant mapping, then replay the event`,
    );
  }
  return invoice;
}

/**
 * Records a failed processor invoice as our open invoice, unless we hold it already under the processor's id. `source`
 * gives, in order: tenant, processor, then the seven failedInvoiceValues, the amount standing for subtotal and total.
 */
export function insertFailedInvoiceSql(source: string): string {
  return `INSERT INTO invoices (tenant_id, processor, processor_invoice_id, period_start, period_end, status,
                             subtotal_minor, total_minor, currency, due_at, hosted_invoice_url)
       ${source}
       ON CONFLICT ON CONSTRAINT invoices_processor_id_unique DO NOTHING
       RETURNING id, tenant_id, status`;
}

/** What insertFailedInvoiceSql reads from the event: processor invoice id, period, amount, currency, due, URL. */
export function failedInvoiceValues(failed: FailedProcessorInvoice): unknown[] {
  return [
    failed.processorInvoiceId,
    failed.periodStart,
    failed.periodEnd,
    failed.amountMinor,
    failed.currency,
    failed.dueAt ?? null,
    failed.hostedInvoiceUrl ?? null,
  ];
}

/** Our invoice for a failed processor invoice, inserted from the event (amount in minor units) when we have none. */
export async function findOrRecordFailedInvoice(
  pool: Pool,
  provider: WebhookProvider,
  tenant: WebhookTenant,
  failed: FailedProcessorInvoice,
): Promise<{ id: string; status: string }> {
  // Our own ids first (metadata, the payment's reference); the processor's invoice id is looked up with the insert.
  const known = await findInvoice(pool, provider, {
    ourInvoiceId: failed.ourInvoiceId,
    transactionReference: failed.transactionReference,
  });
  if (known) return ownedBy(known, tenant, provider);
  // One round trip: insert the invoice, or read the one we hold under the processor's id.
  const found = await pool.query<InvoiceRow>({
    name: 'webhook-record-failed-invoice',
    text: `WITH inserted AS (${insertFailedInvoiceSql(`VALUES ($1, $2, $3, $4, $5, 'open', $6, $6, $7, $8, $9)`)})
     SELECT id, tenant_id, status FROM inserted
     UNION ALL
     SELECT id, tenant_id, status FROM invoices WHERE processor = $2 AND processor_invoice_id = $3
     LIMIT 1`,
    values: [tenant.id, provider, ...failedInvoiceValues(failed)],
  });
  if (found.rows[0]) return ownedBy(found.rows[0], tenant, provider);
  // A concurrent delivery inserted it after this statement's snapshot was taken: read it now.
  const recorded = await findInvoice(pool, provider, { processorInvoiceId: failed.processorInvoiceId });
  if (!recorded)
    throw new Error(`invoice ${provider}/${failed.processorInvoiceId} was neither found nor recorded`);
  return ownedBy(recorded, tenant, provider);
}

/**
 * Records a payment the processor reports and applies it to our invoice: paid only when what it received covers its
 * total in its currency; less is recorded as partial (the invoice stays open); another currency is recorded on the
 * transaction, not applied, with the reason. Idempotent: a retried delivery is not counted twice. Undefined when we
 * hold no invoice for it.
 */
export async function recordInvoicePaid(
  pool: Pool,
  provider: WebhookProvider,
  tenant: WebhookTenant,
  paid: PaidProcessorInvoice,
): Promise<PaymentApplication | undefined> {
  const found = await findInvoice(pool, provider, paid);
  if (!found) return undefined;
  const invoice = ownedBy(found, tenant, provider);
  if (!paid.paid) {
    // The event names no amount: the processor settled its invoice in full (Stripe's invoice.paid).
    await pool.query(
      `UPDATE invoices SET status = 'paid', paid_at = COALESCE(paid_at, $2), amount_paid_minor = total_minor
       WHERE id = $1 AND status NOT IN ('paid', 'void')`,
      [invoice.id, paid.paidAt],
    );
    if (paid.transactionReference) {
      await pool.query(
        `UPDATE payment_transactions SET status = 'success', paid_at = COALESCE(paid_at, $3)
         WHERE processor = $1 AND reference = $2 AND status = 'pending'`,
        [provider, paid.transactionReference, paid.paidAt],
      );
    }
    const { rows } = await pool.query<{ status: string }>('SELECT status FROM invoices WHERE id = $1', [
      invoice.id,
    ]);
    return rows[0]?.status === 'paid'
      ? { applied: 'paid', invoiceId: invoice.id }
      : {
          applied: 'none',
          invoiceId: invoice.id,
          reason: `invoice ${invoice.id} is ${rows[0]?.status ?? 'gone'}`,
        };
  }
  const received = { ...paid.paid, paidAt: paid.paidAt };
  if (paid.transactionReference) {
    const { rows } = await pool.query<{ currency: string }>('SELECT currency FROM invoices WHERE id = $1', [
      invoice.id,
    ]);
    return recordConfirmedPayment(
      pool,
      { tenantId: tenant.id, invoiceId: invoice.id, currency: rows[0]?.currency ?? received.currency },
      provider,
      paid.transactionReference,
      { ...received, gatewayResponse: `${provider} reports ${paid.reference}` },
    );
  }
  return applyPayment(pool, invoice.id, received);
}
