// The facts of an over/underbilling dispute (seed 000 §4): the disputed invoice and tenant, and the raw usage of the
// disputed period beside the rollups and what was invoiced.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { InvoiceStatus } from '../../../db/invoices';
import { formatDecimal, parseDecimal } from '../../../domain/pricing';
import { spotCheckRollups } from '../../usage/integrity';
import type { ProcessorOrNone } from '../../../domain/vocabulary';
import { HOUR_MS } from '../../../domain/vocabulary';

export type Processor = ProcessorOrNone;

export interface DisputeScope {
  tenantId: string;
  invoiceId: string;
  /** Only this meter is disputed; every meter of the invoice when left out. */
  meter?: string;
  /** The disputed period (ISO-8601), widened to whole hours. */
  from: string;
  to: string;
}

export interface DisputedInvoice {
  invoiceId: string;
  tenantId: string;
  status: InvoiceStatus;
  currency: string;
  periodStart: string;
  periodEnd: string;
  totalMinor: number;
  amountPaidMinor: number;
  processor: Processor;
  processorInvoiceId: string | null;
  /** Built from usage rollups (the invoicing recalculation applies to it). */
  usageInvoice: boolean;
}

/** One meter of the disputed period: what the raw events say, what the rollups say, what was invoiced. */
export interface DisputedMeterUsage {
  meter: string;
  rawQuantity: string;
  rawEvents: number;
  rollupQuantity: string;
  invoicedQuantity: string | null;
  invoicedAmountMinor: number | null;
}

export interface DisputeFacts {
  invoice: DisputedInvoice;
  tenantProcessor: Processor;
  /** The disputed period as read, in whole hours. */
  period: { from: string; to: string };
  usage: DisputedMeterUsage[];
  /** Hours of the invoice's period whose rollups differ from the raw events (recalculation must rebuild them first). */
  rollupMismatches: number;
}

const DISPUTE_INVALID = 'DisputeInvalid';

export function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, DISPUTE_INVALID);
}

function wholeHours(from: string, to: string): { from: string; to: string } {
  const [start, end] = [Date.parse(from), Date.parse(to)];
  if (Number.isNaN(start) || Number.isNaN(end))
    invalid(`from and to must be ISO-8601 times (${from}, ${to})`);
  if (end <= start) invalid(`the disputed period ${from}..${to} is empty`);
  return {
    from: new Date(Math.floor(start / HOUR_MS) * HOUR_MS).toISOString(),
    to: new Date(Math.ceil(end / HOUR_MS) * HOUR_MS).toISOString(),
  };
}

/** The invoice, which must be the tenant's; answered as a dispute reads it. */
export async function disputedInvoice(
  pool: Pool,
  tenantId: string,
  invoiceId: string,
): Promise<DisputedInvoice> {
  const { rows } = await pool.query<{
    id: string;
    tenant_id: string;
    status: InvoiceStatus;
    currency: string;
    period_start: Date;
    period_end: Date;
    total_minor: number | string;
    amount_paid_minor: number | string;
    processor: Processor;
    processor_invoice_id: string | null;
    generation_key: string | null;
  }>(
    `SELECT id, tenant_id, status, currency, period_start, period_end, total_minor, amount_paid_minor, processor,
            processor_invoice_id, generation_key
     FROM invoices WHERE id = $1`,
    [invoiceId],
  );
  const row = rows[0];
  if (!row || row.tenant_id !== tenantId) {
    throw ApplicationFailure.nonRetryable(
      `invoice ${invoiceId} is not an invoice of tenant ${tenantId}`,
      'InvoiceUnknown',
    );
  }
  return {
    invoiceId: row.id,
    tenantId: row.tenant_id,
    status: row.status,
    currency: row.currency,
    periodStart: row.period_start.toISOString(),
    periodEnd: row.period_end.toISOString(),
    totalMinor: Number(row.total_minor),
    amountPaidMinor: Number(row.amount_paid_minor),
    processor: row.processor,
    processorInvoiceId: row.processor_invoice_id,
    usageInvoice: row.generation_key !== null,
  };
}

/** The tenant's processor, Stripe customer and currency. */
export async function disputedTenant(
  pool: Pool,
  tenantId: string,
): Promise<{ processor: Processor; stripeCustomerId: string | null; currency: string }> {
  const { rows } = await pool.query<{
    payment_processor: Processor;
    stripe_customer_id: string | null;
    currency: string;
  }>('SELECT payment_processor, stripe_customer_id, currency FROM tenants WHERE id = $1', [tenantId]);
  const row = rows[0];
  if (!row)
    throw ApplicationFailure.nonRetryable(`tenant ${tenantId} is not in the tenants table`, 'TenantUnknown');
  return {
    processor: row.payment_processor,
    stripeCustomerId: row.stripe_customer_id,
    currency: row.currency,
  };
}

export function createDisputeFactActivities(deps: { pool: Pool }) {
  const { pool } = deps;
  return {
    /** "Pull raw usage data for the disputed period", beside the rollups and what the invoice charged. */
    async pullDisputedUsage(scope: DisputeScope): Promise<DisputeFacts> {
      const invoice = await disputedInvoice(pool, scope.tenantId, scope.invoiceId);
      const tenant = await disputedTenant(pool, scope.tenantId);
      const period = wholeHours(scope.from, scope.to);
      const { rows } = await pool.query<{
        meter: string;
        raw_quantity: string;
        raw_events: string;
        rollup_quantity: string;
        invoiced_quantity: string | null;
        invoiced_amount_minor: string | null;
      }>(
        `WITH raw AS (
           SELECT meter, sum(quantity) AS quantity, count(*) AS events FROM usage_events
           WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3 AND ($4::text IS NULL OR meter = $4)
           GROUP BY meter
         ), rolled AS (
           SELECT meter, sum(quantity) AS quantity FROM usage_rollups
           WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND ($4::text IS NULL OR meter = $4)
           GROUP BY meter
         ), invoiced AS (
           SELECT meter, quantity, amount_minor FROM invoice_lines
           WHERE invoice_id = $5 AND ($4::text IS NULL OR meter = $4)
         )
         SELECT m.meter, COALESCE(raw.quantity, 0)::text AS raw_quantity, COALESCE(raw.events, 0)::text AS raw_events,
                COALESCE(rolled.quantity, 0)::text AS rollup_quantity, invoiced.quantity::text AS invoiced_quantity,
                invoiced.amount_minor::text AS invoiced_amount_minor
         FROM (SELECT meter FROM raw UNION SELECT meter FROM rolled UNION SELECT meter FROM invoiced) m
         LEFT JOIN raw USING (meter) LEFT JOIN rolled USING (meter) LEFT JOIN invoiced USING (meter)
         ORDER BY m.meter`,
        [scope.tenantId, period.from, period.to, scope.meter ?? null, scope.invoiceId],
      );
      const check = await spotCheckRollups(pool, {
        from: invoice.periodStart,
        to: invoice.periodEnd,
        tenants: [scope.tenantId],
      });
      return {
        invoice,
        tenantProcessor: tenant.processor,
        period,
        usage: rows.map((r) => ({
          meter: r.meter,
          rawQuantity: formatDecimal(parseDecimal(r.raw_quantity)),
          rawEvents: Number(r.raw_events),
          rollupQuantity: formatDecimal(parseDecimal(r.rollup_quantity)),
          invoicedQuantity:
            r.invoiced_quantity === null ? null : formatDecimal(parseDecimal(r.invoiced_quantity)),
          invoicedAmountMinor: r.invoiced_amount_minor === null ? null : Number(r.invoiced_amount_minor),
        })),
        rollupMismatches: check.mismatches.length,
      };
    },
  };
}
