// Repricing a disputed invoice with the correct rates (seed 000 §4 "recalculate with correct rates"); it writes
// nothing, since an issued invoice is corrected by a credit or an adjustment invoice.
import type { Pool } from 'pg';
import type { InvoiceStatus } from '../../../db/invoices';
import {
  describeLine,
  formatDecimal,
  parseDecimal,
  parsePricing,
  PricingError,
  priceUsage,
  type Pricing,
} from '../../../domain/pricing';
import type { RecalculatedInvoice } from '../../invoicing';
import { invalid } from './facts';

export interface RepriceRequest {
  invoiceId: string;
  /** The meter to reprice with `rates`; with correctRateVersion, the rate's own meter. */
  meter?: string;
  /** The rates row (its id) that should have priced the meter. */
  correctRateVersion?: number;
  /** The correct per-unit prices in minor units (decimal text), by meter. */
  rates?: Record<string, string>;
}

export function createRepriceActivities(deps: { pool: Pool }) {
  const { pool } = deps;
  return {
    /**
     * Reprices the disputed meter(s) of an invoice from its period's rollups with the correct rate; the other lines
     * stand as invoiced. Writes nothing: an issued invoice is corrected by a credit or an adjustment invoice.
     */
    async repriceDisputedInvoice(req: RepriceRequest): Promise<RecalculatedInvoice> {
      const { rows: invoices } = await pool.query<{
        tenant_id: string;
        status: InvoiceStatus;
        currency: string;
        period_start: Date;
        period_end: Date;
        total_minor: string;
      }>(
        'SELECT tenant_id, status, currency, period_start, period_end, total_minor FROM invoices WHERE id = $1',
        [req.invoiceId],
      );
      const invoice = invoices[0] ?? invalid(`invoice ${req.invoiceId} does not exist`);
      const correct = new Map<string, { pricing: Pricing; rateId: number | null }>();
      if (req.correctRateVersion !== undefined) {
        const { rows } = await pool.query<{
          id: string;
          meter: string;
          tenant_id: string | null;
          currency: string;
          pricing_model: string;
          unit_price_minor: string | null;
          tiers: unknown;
        }>(
          `SELECT id, meter, tenant_id, currency, pricing_model, unit_price_minor::text AS unit_price_minor, tiers
           FROM rates WHERE id = $1`,
          [req.correctRateVersion],
        );
        const rate = rows[0] ?? invalid(`rate version ${req.correctRateVersion} does not exist`);
        if (req.meter && rate.meter !== req.meter) {
          invalid(`rate version ${rate.id} prices ${rate.meter}, not the disputed meter ${req.meter}`);
        }
        if (rate.currency !== invoice.currency) {
          invalid(`rate version ${rate.id} is in ${rate.currency}; the invoice is in ${invoice.currency}`);
        }
        if (rate.tenant_id !== null && rate.tenant_id !== invoice.tenant_id) {
          invalid(`rate version ${rate.id} is tenant ${rate.tenant_id}'s negotiated rate`);
        }
        correct.set(rate.meter, {
          pricing: pricingOf(rate.pricing_model, rate.unit_price_minor, rate.tiers, `rate ${rate.id}`),
          rateId: Number(rate.id),
        });
      }
      for (const [meter, price] of Object.entries(req.rates ?? {})) {
        if (req.meter && meter !== req.meter)
          invalid(`a rate for ${meter} given, but the dispute is about ${req.meter}`);
        correct.set(meter, {
          pricing: pricingOf('per_unit', price, null, `the ${meter} rate`),
          rateId: null,
        });
      }
      if (correct.size === 0) invalid('name the correct rate: correctRateVersion or rates');

      const { rows: lines } = await pool.query<{ meter: string; quantity: string; amount_minor: string }>(
        'SELECT meter, quantity::text AS quantity, amount_minor::text AS amount_minor FROM invoice_lines WHERE invoice_id = $1',
        [req.invoiceId],
      );
      const { rows: usage } = await pool.query<{ meter: string; quantity: string }>(
        `SELECT meter, sum(quantity)::text AS quantity FROM usage_rollups
         WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND meter = ANY($4) GROUP BY meter`,
        [invoice.tenant_id, invoice.period_start, invoice.period_end, [...correct.keys()]],
      );
      const used = new Map(usage.map((u) => [u.meter, u.quantity]));
      const meters = [...new Set([...lines.map((l) => l.meter), ...correct.keys()])].sort();
      const report = meters.map((meter) => {
        const old = lines.find((l) => l.meter === meter);
        const price = correct.get(meter);
        const oldQuantity = old ? formatDecimal(parseDecimal(old.quantity)) : null;
        const oldAmountMinor = old ? Number(old.amount_minor) : 0;
        if (!price)
          return {
            meter,
            oldQuantity,
            newQuantity: oldQuantity,
            oldAmountMinor,
            newAmountMinor: oldAmountMinor,
          };
        const quantity = formatDecimal(parseDecimal(used.get(meter) ?? '0'));
        const priced = priceUsage(quantity, price);
        if (priced.amountMinor > BigInt(Number.MAX_SAFE_INTEGER))
          invalid(`${describeLine(meter, priced)} is too large`);
        return {
          meter,
          oldQuantity,
          newQuantity: quantity,
          oldAmountMinor,
          newAmountMinor: Number(priced.amountMinor),
        };
      });
      const oldTotalMinor = Number(invoice.total_minor);
      const linesBefore = report.reduce((sum, l) => sum + l.oldAmountMinor, 0);
      // Any part of the total that is not a usage line (none today) stays as it was.
      const newTotalMinor =
        oldTotalMinor - linesBefore + report.reduce((sum, l) => sum + l.newAmountMinor, 0);
      const differenceMinor = newTotalMinor - oldTotalMinor;
      return {
        invoiceId: req.invoiceId,
        tenantId: invoice.tenant_id,
        status: invoice.status,
        currency: invoice.currency,
        oldTotalMinor,
        newTotalMinor,
        differenceMinor,
        action: differenceMinor === 0 ? 'unchanged' : 'needs_adjustment',
        lines: report,
      };
    },
  };
}

function pricingOf(model: string, unitPriceMinor: unknown, tiers: unknown, what: string): Pricing {
  try {
    return parsePricing(model, unitPriceMinor, tiers);
  } catch (err) {
    if (err instanceof PricingError) invalid(`${what} is not a valid price: ${err.message}`);
    throw err;
  }
}
