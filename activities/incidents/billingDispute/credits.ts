// Settlement records of a dispute: one credits_adjustments row per idempotency key, read back as a credit.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';

export interface SettlementRequest {
  /** Workflow id + step: one credit or adjustment invoice per key, however often the activity runs. */
  idempotencyKey: string;
  workflowId: string;
  tenantId: string;
  /** The disputed invoice. */
  invoiceId: string;
  amountMinor: number;
  currency: string;
  reason: string;
  operator: string;
}

export type CreditMethod =
  | 'stripe_credit_note'
  | 'stripe_customer_balance'
  | 'paystack_refund'
  | 'internal_credit';

export interface DisputeCredit {
  creditId: string;
  kind: 'credit' | 'refund';
  method: CreditMethod;
  processor: 'stripe' | 'paystack' | 'manual';
  processorReference: string | null;
  amountMinor: number;
  currency: string;
}

export interface AdjustmentInvoice {
  creditId: string;
  /** The new invoice that bills the difference. */
  adjustmentInvoiceId: string;
  amountMinor: number;
  currency: string;
}

export interface CreditRow {
  id: string;
  kind: 'credit' | 'refund' | 'adjustment_invoice';
  amount_minor: number | string;
  currency: string;
  processor: 'stripe' | 'paystack' | 'manual' | null;
  processor_reference: string | null;
  invoice_id: string | null;
}

export function toCredit(row: CreditRow): DisputeCredit {
  const reference = row.processor_reference;
  const method: CreditMethod =
    row.processor === 'paystack'
      ? 'paystack_refund'
      : row.processor === 'stripe'
        ? reference?.startsWith('cn_')
          ? 'stripe_credit_note'
          : 'stripe_customer_balance'
        : 'internal_credit';
  return {
    creditId: row.id,
    kind: row.kind === 'refund' ? 'refund' : 'credit',
    method,
    processor: row.processor ?? 'manual',
    processorReference: reference,
    amountMinor: Number(row.amount_minor),
    currency: row.currency,
  };
}

export const CREDIT_COLUMNS = 'id, kind, amount_minor, currency, processor, processor_reference, invoice_id';

export async function settled(pool: Pool, key: string): Promise<CreditRow | undefined> {
  const { rows } = await pool.query<CreditRow>(
    `SELECT ${CREDIT_COLUMNS} FROM credits_adjustments WHERE idempotency_key = $1`,
    [key],
  );
  return rows[0];
}

/** Records the settlement under its key in `db` (a transaction or the pool); a retry answers the row already there. */
export async function insertCredit(
  pool: Pool,
  db: Pick<PoolClient, 'query'>,
  req: SettlementRequest,
  fields: {
    kind: CreditRow['kind'];
    invoiceId: string;
    processor: CreditRow['processor'];
    processorReference: string | null;
  },
): Promise<CreditRow> {
  let inserted: CreditRow | undefined;
  try {
    const result = await db.query<CreditRow>(
      `INSERT INTO credits_adjustments (tenant_id, invoice_id, kind, amount_minor, currency, reason, processor,
                                      processor_reference, idempotency_key, workflow_id, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (idempotency_key) DO NOTHING
     RETURNING ${CREDIT_COLUMNS}`,
      [
        req.tenantId,
        fields.invoiceId,
        fields.kind,
        req.amountMinor,
        req.currency,
        req.reason,
        fields.processor,
        fields.processorReference,
        req.idempotencyKey,
        req.workflowId,
        req.operator,
      ],
    );
    inserted = result.rows[0];
  } catch (err) {
    // The provider's object is already recorded under another key: a person has to look at both.
    if ((err as { code?: unknown }).code !== '23505') throw err;
    throw ApplicationFailure.nonRetryable(
      `${fields.processor} ${fields.processorReference} is already recorded in credits_adjustments under another key`,
      'CreditAlreadyRecorded',
    );
  }
  return inserted ?? (await settled(pool, req.idempotencyKey))!;
}
