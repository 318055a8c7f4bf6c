// The rows a dunning payment reads and writes: the payable invoice with its tenant, and each attempt's
// payment_transactions row (opened pending under its reference, then marked success or failed).
import type { Pool } from 'pg';
import { normalizeCurrency } from '../domain/money';
import { inTransaction } from './pool';
import type { Processor, ProcessorOrNone } from '../domain/vocabulary';
import {
  applyPayment,
  currencyMismatch,
  markInvoicePaid,
  minorUnits,
  type PaymentApplication,
  type ReceivedPayment,
} from './paymentApplication';

export {
  applyPayment,
  currencyMismatch,
  describeApplication,
  markInvoicePaid,
  type PaymentApplication,
  type ReceivedPayment,
} from './paymentApplication';

export type InvoiceProcessor = ProcessorOrNone;
export type ChargingProcessor = Processor;

interface InvoiceRow {
  tenant_id: string;
  payment_processor: InvoiceProcessor;
  billing_email: string;
  paystack_authorization_code: string | null;
  invoice_id: string | null;
  status: string | null;
  processor: InvoiceProcessor | null;
  processor_invoice_id: string | null;
  total_minor: number | string | null;
  amount_paid_minor: number | string | null;
  currency: string | null;
  hosted_invoice_url: string | null;
}

/** An invoice with the tenant fields a payment needs. */
export interface PayableInvoice {
  tenantId: string;
  invoiceId: string;
  paymentProcessor: InvoiceProcessor;
  billingEmail: string;
  paystackAuthorizationCode: string | null;
  status: string;
  processor: InvoiceProcessor;
  processorInvoiceId: string | null;
  totalMinor: number;
  amountPaidMinor: number;
  currency: string;
  hostedInvoiceUrl: string | null;
}

/** The invoice, or which of the two rows is missing: the caller says so in its own failure. */
export type PayableInvoiceLookup = { invoice: PayableInvoice } | { missing: 'tenant' | 'invoice' };

interface TransactionRow {
  invoice_id: string | null;
  status: string;
  amount_minor: number | string;
  currency: string;
}

export interface OpenTransaction {
  reference: string;
  /** False when an earlier run under the same key had already opened it. */
  created: boolean;
  status: string;
  amountMinor: number;
  currency: string;
}

/** The transaction, or the invoice its reference already belongs to: an idempotency key reused for another invoice. */
export type OpenTransactionResult =
  | { transaction: OpenTransaction }
  | { conflictingInvoiceId: string | null };

export async function findPayableInvoice(
  pool: Pool,
  tenantId: string,
  invoiceId: string,
): Promise<PayableInvoiceLookup> {
  const { rows } = await pool.query<InvoiceRow>(
    `SELECT t.id AS tenant_id, t.payment_processor, t.billing_email, t.paystack_authorization_code,
            i.id AS invoice_id, i.status, i.processor, i.processor_invoice_id, i.total_minor, i.amount_paid_minor,
            i.currency, i.hosted_invoice_url
       FROM tenants t LEFT JOIN invoices i ON i.id = $2 AND i.tenant_id = t.id
      WHERE t.id = $1`,
    [tenantId, invoiceId],
  );
  const row = rows[0];
  if (!row) return { missing: 'tenant' };
  if (row.invoice_id === null || row.status === null || row.processor === null || row.currency === null) {
    return { missing: 'invoice' };
  }
  return {
    invoice: {
      tenantId: row.tenant_id,
      invoiceId: row.invoice_id,
      paymentProcessor: row.payment_processor,
      billingEmail: row.billing_email,
      paystackAuthorizationCode: row.paystack_authorization_code,
      status: row.status,
      processor: row.processor,
      processorInvoiceId: row.processor_invoice_id,
      totalMinor: minorUnits(row.total_minor),
      amountPaidMinor: minorUnits(row.amount_paid_minor),
      currency: normalizeCurrency(row.currency),
      hostedInvoiceUrl: row.hosted_invoice_url,
    },
  };
}

/** The pending row for this reference, created on first use; a retried activity finds the same row. */
export async function openPaymentTransaction(
  pool: Pool,
  invoice: PayableInvoice,
  processor: ChargingProcessor,
  reference: string,
): Promise<OpenTransactionResult> {
  const inserted = await pool.query(
    `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency)
     VALUES ($1, $2, $3, $4, 'pending', $5, $6)
     ON CONFLICT (processor, reference) DO NOTHING`,
    [
      invoice.tenantId,
      invoice.invoiceId,
      processor,
      reference,
      invoice.totalMinor - invoice.amountPaidMinor,
      invoice.currency,
    ],
  );
  const { rows } = await pool.query<TransactionRow>(
    'SELECT invoice_id, status, amount_minor, currency FROM payment_transactions WHERE processor = $1 AND reference = $2',
    [processor, reference],
  );
  const row = rows[0];
  if (!row || row.invoice_id !== invoice.invoiceId) return { conflictingInvoiceId: row?.invoice_id ?? null };
  return {
    transaction: {
      reference,
      created: inserted.rowCount === 1,
      status: row.status,
      amountMinor: minorUnits(row.amount_minor),
      currency: row.currency,
    },
  };
}

/** The success row and the paid invoice commit together: neither is ever seen without the other. */
export async function recordPaymentSuccess(
  pool: Pool,
  processor: ChargingProcessor,
  reference: string,
  invoiceId: string,
  gatewayResponse: string,
  paidAt: Date,
  paid?: Pick<ReceivedPayment, 'amountMinor' | 'currency'>,
): Promise<PaymentApplication> {
  return inTransaction(pool, async (client) => {
    const updated = await client.query(
      `UPDATE payment_transactions
          SET status = 'success', paid_at = coalesce(paid_at, $3), gateway_response = $4, failure_code = NULL
        WHERE processor = $1 AND reference = $2 AND status <> 'success'`,
      [processor, reference, paidAt, gatewayResponse],
    );
    // Without an amount the processor settled the invoice itself (Stripe pays the whole invoice).
    if (!paid) {
      await markInvoicePaid(client, invoiceId, paidAt);
      return { applied: 'paid', invoiceId };
    }
    // A success recorded earlier was applied then: applying it again would count it twice.
    if (updated.rowCount === 0)
      return applyPayment(client, invoiceId, { ...paid, counts: 'payment', amountMinor: 0, paidAt });
    return applyPayment(client, invoiceId, { ...paid, counts: 'payment', paidAt });
  });
}

interface PendingReferenceRow {
  reference: string;
  amount_minor: number | string;
  currency: string;
}

/** The invoice's Paystack references still pending (payment links handed out, charges not yet settled), oldest first. */
export async function pendingReferences(
  pool: Pool,
  processor: ChargingProcessor,
  invoiceId: string,
): Promise<{ reference: string; amountMinor: number; currency: string }[]> {
  const { rows } = await pool.query<PendingReferenceRow>(
    `SELECT reference, amount_minor, currency FROM payment_transactions
      WHERE processor = $1 AND invoice_id = $2 AND status = 'pending' ORDER BY created_at`,
    [processor, invoiceId],
  );
  return rows.map((r) => ({
    reference: r.reference,
    amountMinor: minorUnits(r.amount_minor),
    currency: r.currency,
  }));
}

/**
 * A payment the processor confirmed under `reference` (one we opened, or one the customer made): its row says success
 * with what was paid, and the payment is applied to the invoice once. A payment in another currency is noted on the
 * row and not applied.
 */
export async function recordConfirmedPayment(
  pool: Pool,
  invoice: Pick<PayableInvoice, 'tenantId' | 'invoiceId' | 'currency'>,
  processor: ChargingProcessor,
  reference: string,
  paid: ReceivedPayment & { gatewayResponse: string },
): Promise<PaymentApplication> {
  return inTransaction(pool, async (client) => {
    const mismatch = currencyMismatch(invoice.invoiceId, invoice.currency, paid);
    if (mismatch) {
      await client.query(
        `UPDATE payment_transactions SET gateway_response = $3
          WHERE processor = $1 AND reference = $2 AND status = 'pending'`,
        [processor, reference, mismatch],
      );
      return { applied: 'none', invoiceId: invoice.invoiceId, reason: mismatch };
    }
    const updated = await client.query(
      `UPDATE payment_transactions
          SET status = 'success', paid_at = coalesce(paid_at, $3), gateway_response = $4, failure_code = NULL,
              amount_minor = $5, currency = $6
        WHERE processor = $1 AND reference = $2 AND invoice_id = $7 AND status <> 'success'`,
      [
        processor,
        reference,
        paid.paidAt,
        paid.gatewayResponse,
        paid.amountMinor,
        normalizeCurrency(paid.currency),
        invoice.invoiceId,
      ],
    );
    let fresh = updated.rowCount === 1;
    if (!fresh) {
      const inserted = await client.query(
        `INSERT INTO payment_transactions
           (tenant_id, invoice_id, processor, reference, status, amount_minor, currency, gateway_response, paid_at)
         VALUES ($1, $2, $3, $4, 'success', $5, $6, $7, $8)
         ON CONFLICT (processor, reference) DO NOTHING`,
        [
          invoice.tenantId,
          invoice.invoiceId,
          processor,
          reference,
          paid.amountMinor,
          normalizeCurrency(paid.currency),
          paid.gatewayResponse,
          paid.paidAt,
        ],
      );
      fresh = inserted.rowCount === 1;
    }
    // Already recorded as a success: it was applied then, and is not counted twice.
    const counted = fresh || paid.counts === 'invoiceTotal' ? paid : { ...paid, amountMinor: 0 };
    return applyPayment(client, invoice.invoiceId, counted);
  });
}

/** A success already recorded stays one: a late failure never overwrites it. */
export async function recordPaymentFailure(
  pool: Pool,
  processor: ChargingProcessor,
  reference: string,
  gatewayResponse: string,
  failureCode: string,
): Promise<void> {
  await pool.query(
    `UPDATE payment_transactions SET status = 'failed', gateway_response = $3, failure_code = $4
      WHERE processor = $1 AND reference = $2 AND status <> 'success'`,
    [processor, reference, gatewayResponse, failureCode],
  );
}

/** What the processor last said of a charge still in flight; the row stays pending. */
export async function notePendingPayment(
  pool: Pool,
  processor: ChargingProcessor,
  reference: string,
  gatewayResponse: string,
): Promise<void> {
  await pool.query(
    'UPDATE payment_transactions SET gateway_response = $3 WHERE processor = $1 AND reference = $2',
    [processor, reference, gatewayResponse],
  );
}

/** The reference of the invoice's latest successful payment, if any. */
export async function latestPaymentReference(pool: Pool, invoiceId: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ reference: string }>(
    `SELECT reference FROM payment_transactions WHERE invoice_id = $1 AND status = 'success'
      ORDER BY paid_at DESC NULLS LAST LIMIT 1`,
    [invoiceId],
  );
  return rows[0]?.reference;
}

export async function storeHostedInvoiceUrl(pool: Pool, invoiceId: string, url: string): Promise<void> {
  await pool.query('UPDATE invoices SET hosted_invoice_url = $2 WHERE id = $1', [invoiceId, url]);
}
