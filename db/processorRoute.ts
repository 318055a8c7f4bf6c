// The processor route a payment processor outage sets (operational override `processor_route:<processor>`), and the
// rows a payment through the backup processor reads and writes: who already holds a step's reference, the backup's
// failed attempt, the backup's payment link.
import type { Pool } from 'pg';
import { PROCESSORS, type Processor } from '../domain/vocabulary';
import type { PayableInvoice } from './payments';

/** An active route: payments of tenants on `from` go through `to` until the incident clears it. */
export interface ProcessorRoute {
  from: Processor;
  to: Processor;
  /** The override's reason ("Stripe is down: new payments go to paystack"). */
  reason: string;
  /** The incident that set it. */
  workflowId: string | null;
}

interface RouteRow {
  value: Record<string, unknown> | null;
  reason: string;
  workflow_id: string | null;
}

const isProcessor = (value: unknown): value is Processor =>
  typeof value === 'string' && (PROCESSORS as readonly string[]).includes(value);

/**
 * The active route away from `from` that applies to the tenant, or null. A route whose value names `tenantIds` (an
 * outage confined to some accounts) applies only to them; a value that is not a route to another processor is ignored.
 */
export async function activeProcessorRoute(
  pool: Pool,
  from: Processor,
  tenantId: string,
): Promise<ProcessorRoute | null> {
  const { rows } = await pool.query<RouteRow>(
    `SELECT value, reason, workflow_id FROM operational_overrides WHERE name = $1 AND cleared_at IS NULL`,
    [`processor_route:${from}`],
  );
  const row = rows[0];
  const to = row?.value?.to;
  if (!row || !isProcessor(to) || to === from) return null;
  const scope = row.value?.tenantIds;
  if (Array.isArray(scope) && !scope.includes(tenantId)) return null;
  return { from, to, reason: row.reason, workflowId: row.workflow_id };
}

/**
 * The processor that already holds this step's reference for the invoice with a charge that may have collected
 * (pending or success), or null. A failed row charged nothing, so it holds nothing.
 */
export async function processorHoldingReference(
  pool: Pool,
  invoiceId: string,
  reference: string,
): Promise<Processor | null> {
  const { rows } = await pool.query<{ processor: string }>(
    `SELECT processor FROM payment_transactions
      WHERE invoice_id = $1 AND reference = $2 AND status IN ('pending', 'success')
      ORDER BY (status = 'success') DESC, created_at LIMIT 1`,
    [invoiceId, reference],
  );
  const processor = rows[0]?.processor;
  return isProcessor(processor) ? processor : null;
}

/** The tenant's Stripe customer, if it has one. */
export async function stripeCustomerOf(pool: Pool, tenantId: string): Promise<string | null> {
  const { rows } = await pool.query<{ stripe_customer_id: string | null }>(
    'SELECT stripe_customer_id FROM tenants WHERE id = $1',
    [tenantId],
  );
  return rows[0]?.stripe_customer_id ?? null;
}

/**
 * An attempt the backup refused before charging (no payment method there, a currency it does not take): a failed row
 * under the step's reference, with the reason, so the attempt is on record. A row already there is kept as it is.
 */
export async function recordRefusedAttempt(
  pool: Pool,
  invoice: PayableInvoice,
  processor: Processor,
  reference: string,
  reason: string,
  failureCode: string,
): Promise<void> {
  await pool.query(
    `INSERT INTO payment_transactions
       (tenant_id, invoice_id, processor, reference, status, amount_minor, currency, gateway_response, failure_code)
     VALUES ($1, $2, $3, $4, 'failed', $5, $6, $7, $8)
     ON CONFLICT (processor, reference) DO NOTHING`,
    [
      invoice.tenantId,
      invoice.invoiceId,
      processor,
      reference,
      invoice.totalMinor - invoice.amountPaidMinor,
      invoice.currency,
      reason,
      failureCode,
    ],
  );
}

/** Recorded in the gateway_response of a backup link's pending row; the invoice's own page stays its processor's. */
const LINK_PREFIX = 'payment link: ';

/**
 * A payment link the backup already gave for this invoice and amount (a pending row with its link), so one outage
 * hands the customer one link however many steps ask for it.
 */
export async function pendingBackupLink(
  pool: Pool,
  processor: Processor,
  invoice: Pick<PayableInvoice, 'invoiceId' | 'currency'> & { amountDueMinor: number },
): Promise<string | null> {
  const { rows } = await pool.query<{ gateway_response: string }>(
    `SELECT gateway_response FROM payment_transactions
      WHERE processor = $1 AND invoice_id = $2 AND status = 'pending' AND amount_minor = $3 AND currency = $4
        AND starts_with(gateway_response, $5)
      ORDER BY created_at DESC LIMIT 1`,
    [processor, invoice.invoiceId, invoice.amountDueMinor, invoice.currency, LINK_PREFIX],
  );
  const response = rows[0]?.gateway_response;
  return response ? response.slice(LINK_PREFIX.length) : null;
}

export async function storeBackupLink(
  pool: Pool,
  processor: Processor,
  reference: string,
  url: string,
): Promise<void> {
  await pool.query(
    `UPDATE payment_transactions SET gateway_response = $3
      WHERE processor = $1 AND reference = $2 AND status = 'pending'`,
    [processor, reference, `${LINK_PREFIX}${url}`],
  );
}
