// Payments an operator accepts by hand (seed 000 "Enable manual payment acceptance"): a payment_transactions row with
// processor 'manual', its audit row in manual_payments, and the money applied to the invoice, all in one transaction.
import type { Pool, PoolClient } from 'pg';
import { formatMinorUnits, normalizeCurrency } from '../domain/money';
import { applyPayment, minorUnits, type PaymentApplication } from './paymentApplication';
import { inTransaction } from './pool';

export const MANUAL_PAYMENT_METHODS = ['bank_transfer', 'card', 'other'] as const;
export type ManualPaymentMethod = (typeof MANUAL_PAYMENT_METHODS)[number];

export interface ManualPaymentRequest {
  invoiceId: string;
  amountMinor: number;
  currency: string;
  method: ManualPaymentMethod;
  reference: string;
  operator: string;
  reason: string;
}

/** A manual payment as recorded, with what it did to its invoice. */
export interface ManualPayment {
  /** `new`: recorded now; `already`: this reference was recorded before, for the same payment, and nothing changed. */
  recorded: 'new' | 'already';
  paymentId: string;
  tenantId: string;
  invoiceId: string;
  amountMinor: number;
  currency: string;
  method: ManualPaymentMethod;
  reference: string;
  operator: string;
  reason: string;
  recordedAt: Date;
  /** The invoice now: paid, or partial with what it has received. */
  application: Extract<PaymentApplication, { applied: 'paid' | 'partial' }>;
}

/** The payment cannot be recorded as asked (unknown invoice, another currency, a reused reference...): nothing was written. */
export class ManualPaymentRefused extends Error {
  override name = 'ManualPaymentRefused';
}

interface InvoiceRow {
  tenant_id: string;
  status: string;
  total_minor: number | string;
  amount_paid_minor: number | string;
  currency: string;
}

interface RecordedRow {
  payment_id: string;
  tenant_id: string;
  invoice_id: string;
  amount_minor: number | string;
  currency: string;
  method: ManualPaymentMethod;
  reference: string;
  operator: string;
  reason: string;
  recorded_at: Date;
}

/**
 * Records the payment and applies it to its invoice: paid when what the invoice received covers its total, else
 * partial. The same reference again for the same payment answers `already` and changes nothing; for another payment it
 * is refused.
 */
export async function recordManualPayment(pool: Pool, request: ManualPaymentRequest): Promise<ManualPayment> {
  const currency = normalizeCurrency(request.currency);
  return inTransaction(pool, async (client) => {
    // The invoice row is locked first, so payments for one invoice (and re-runs of one command) queue up.
    const { rows } = await client.query<InvoiceRow>(
      'SELECT tenant_id, status, total_minor, amount_paid_minor, currency FROM invoices WHERE id = $1 FOR UPDATE',
      [request.invoiceId],
    );
    const invoice = rows[0];
    if (!invoice) {
      throw new ManualPaymentRefused(
        `no invoice ${request.invoiceId}: nothing recorded; check the invoice id on the customer's remittance`,
      );
    }
    const earlier = await recordedByReference(client, request.reference);
    if (earlier) return answerEarlier(client, earlier, { ...request, currency });

    const invoiceCurrency = normalizeCurrency(invoice.currency);
    if (invoiceCurrency !== currency) {
      throw new ManualPaymentRefused(
        `invoice ${request.invoiceId} is in ${invoiceCurrency}, not ${currency}: nothing recorded; record the amount ` +
          `received in ${invoiceCurrency}, or settle a payment in another currency outside billops`,
      );
    }
    if (invoice.status === 'paid') {
      throw new ManualPaymentRefused(
        `invoice ${request.invoiceId} is already paid: nothing recorded; refund the customer or credit the tenant instead`,
      );
    }
    if (invoice.status === 'void') {
      throw new ManualPaymentRefused(
        `invoice ${request.invoiceId} is void: nothing recorded; record the payment against the invoice that replaced it`,
      );
    }

    const paidAt = new Date();
    const inserted = await client.query<{ id: string }>(
      `INSERT INTO payment_transactions (tenant_id, invoice_id, processor, reference, status, amount_minor, currency,
                                         gateway_response, paid_at)
       VALUES ($1, $2, 'manual', $3, 'success', $4, $5, $6, $7)
       ON CONFLICT (processor, reference) DO NOTHING
       RETURNING id`,
      [
        invoice.tenant_id,
        request.invoiceId,
        request.reference,
        request.amountMinor,
        currency,
        `manual ${request.method} recorded by ${request.operator}`,
        paidAt,
      ],
    );
    const paymentId = inserted.rows[0]?.id;
    if (!paymentId) {
      // Recorded meanwhile for another invoice (this one's lock did not cover it): answer as for an earlier record.
      const raced = await recordedByReference(client, request.reference);
      if (raced) return answerEarlier(client, raced, { ...request, currency });
      throw new ManualPaymentRefused(
        `reference ${request.reference} is already used by another manual payment transaction: nothing recorded; ` +
          'give this payment its own reference',
      );
    }
    const application = await applyPayment(client, request.invoiceId, {
      amountMinor: request.amountMinor,
      currency,
      counts: 'payment',
      paidAt,
    });
    // Checked above under the invoice's lock: a manual payment is always applied.
    if (application.applied === 'none') throw new Error(application.reason);
    await client.query(
      `INSERT INTO manual_payments (payment_transaction_id, tenant_id, invoice_id, reference, method, amount_minor,
                                    currency, operator, reason, applied, recorded_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        paymentId,
        invoice.tenant_id,
        request.invoiceId,
        request.reference,
        request.method,
        request.amountMinor,
        currency,
        request.operator,
        request.reason,
        application.applied,
        paidAt,
      ],
    );
    return {
      recorded: 'new',
      paymentId,
      tenantId: invoice.tenant_id,
      invoiceId: request.invoiceId,
      amountMinor: request.amountMinor,
      currency,
      method: request.method,
      reference: request.reference,
      operator: request.operator,
      reason: request.reason,
      recordedAt: paidAt,
      application,
    };
  });
}

async function recordedByReference(client: PoolClient, reference: string): Promise<RecordedRow | undefined> {
  const { rows } = await client.query<RecordedRow>(
    `SELECT payment_transaction_id AS payment_id, tenant_id, invoice_id, amount_minor, currency, method, reference,
            operator, reason, recorded_at
       FROM manual_payments WHERE reference = $1`,
    [reference],
  );
  return rows[0];
}

/** The earlier record of this reference: the same payment is answered `already`, another one refused. */
async function answerEarlier(
  client: PoolClient,
  earlier: RecordedRow,
  request: ManualPaymentRequest,
): Promise<ManualPayment> {
  const amountMinor = minorUnits(earlier.amount_minor);
  const currency = normalizeCurrency(earlier.currency);
  const samePayment =
    earlier.invoice_id === request.invoiceId &&
    amountMinor === request.amountMinor &&
    currency === request.currency &&
    earlier.method === request.method;
  if (!samePayment) {
    throw new ManualPaymentRefused(
      `reference ${earlier.reference} is already recorded for ${formatMinorUnits(amountMinor, currency)} by ` +
        `${earlier.method} on invoice ${earlier.invoice_id} (by ${earlier.operator} at ` +
        `${earlier.recorded_at.toISOString()}): nothing recorded; a different payment needs its own reference`,
    );
  }
  // Applying nothing more reads the invoice as it stands now.
  const application = await applyPayment(client, earlier.invoice_id, {
    amountMinor: 0,
    currency,
    counts: 'payment',
    paidAt: earlier.recorded_at,
  });
  if (application.applied === 'none') throw new ManualPaymentRefused(application.reason);
  return {
    recorded: 'already',
    paymentId: earlier.payment_id,
    tenantId: earlier.tenant_id,
    invoiceId: earlier.invoice_id,
    amountMinor,
    currency,
    method: earlier.method,
    reference: earlier.reference,
    operator: earlier.operator,
    reason: earlier.reason,
    recordedAt: earlier.recorded_at,
    application,
  };
}
