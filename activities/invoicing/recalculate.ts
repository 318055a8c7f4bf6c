// Invoice recalculation: a period's usage invoices recomputed from the rollups and rates as they are now.
import type { Pool } from 'pg';
import {
  inTenantTransaction,
  invoiceLines,
  invoiceTenant,
  lockInvoiceForRecalculation,
  replaceLines,
  usageInPeriod,
  usageInvoiceIds,
  type InvoiceStatus,
  type LineRow,
} from '../../db/invoices';
import { activeHolds, isHeld, type ActiveHold } from '../../db/billingHolds';
import {
  formatDecimal,
  parseDecimal,
  priceMeter,
  sumOf,
  toMinorNumber,
  type LineDraft,
  type RateSubject,
} from '../../domain/pricing';
import type { InvoicePeriodRequest, SkippedUsage } from './generate';
import { ratesInForce } from './rates';
import { parseRequest, periodSchema } from './requests';

/** updated: a draft or open invoice now carries the new lines; needs_adjustment: finalized, so a credit or adjustment invoice settles the difference. */
export type RecalculationAction = 'updated' | 'needs_adjustment' | 'unchanged';

export interface RecalculatedLine {
  meter: string;
  oldQuantity: string | null;
  newQuantity: string | null;
  oldAmountMinor: number;
  newAmountMinor: number;
}

export interface RecalculatedInvoice {
  invoiceId: string;
  tenantId: string;
  status: InvoiceStatus;
  currency: string;
  oldTotalMinor: number;
  newTotalMinor: number;
  /** newTotalMinor − oldTotalMinor: positive means underbilled, negative overbilled. */
  differenceMinor: number;
  action: RecalculationAction;
  lines: RecalculatedLine[];
}

export interface RecalculateInvoicesResult {
  invoices: RecalculatedInvoice[];
  skipped: SkippedUsage[];
}

function fromRow(row: LineRow): LineDraft {
  return {
    meter: row.meter,
    quantity: formatDecimal(parseDecimal(row.quantity)),
    rateId: row.rate_id,
    amountMinor: BigInt(row.amount_minor),
    description: row.description,
  };
}

export function createRecalculationActivities(deps: { pool: Pool }) {
  const { pool } = deps;

  /** Recomputes one invoice's lines from the rollups as they are now; updates it unless it is finalized. */
  async function recalculateInvoice(
    invoiceId: string,
    holds: readonly ActiveHold[],
    skipped: SkippedUsage[],
  ): Promise<RecalculatedInvoice | undefined> {
    const owner = await invoiceTenant(pool, invoiceId);
    if (!owner) return undefined;
    return inTenantTransaction<RecalculatedInvoice | undefined>(pool, owner, async (db) => {
      const invoice = await lockInvoiceForRecalculation(db, invoiceId);
      if (!invoice) return undefined;
      const subject: RateSubject = {
        tenantId: invoice.tenant_id,
        tier: invoice.tier,
        currency: invoice.currency,
      };
      const oldLines = new Map((await invoiceLines(db, invoiceId)).map((r) => [r.meter, r]));
      const usage = new Map(
        (await usageInPeriod(db, invoice.period_start, invoice.period_end, [invoice.tenant_id])).map((u) => [
          u.meter,
          u.quantity,
        ]),
      );
      // A hold stops billing a meter not yet invoiced; meters already on the invoice are corrected regardless.
      const meters = [...new Set([...oldLines.keys(), ...usage.keys()])]
        .filter((m) => oldLines.has(m) || !isHeld(holds, invoice.tenant_id, m))
        .sort();
      const rates = await ratesInForce(db, meters, invoice.period_start, [subject]);

      const newLines: LineDraft[] = [];
      for (const meter of meters) {
        const quantity = usage.get(meter);
        if (quantity === undefined) continue;
        const line = priceMeter(rates, subject, invoice.period_start, meter, quantity);
        const old = oldLines.get(meter);
        if (line) newLines.push(line);
        else if (old) newLines.push(fromRow(old));
        else skipped.push({ tenantId: invoice.tenant_id, meter, reason: 'no_rate' });
      }

      const oldTotal = BigInt(invoice.total_minor);
      const newTotal = sumOf(newLines);
      const newByMeter = new Map(newLines.map((l) => [l.meter, l]));
      const report = [...new Set([...oldLines.keys(), ...newByMeter.keys()])].sort().map((meter) => {
        const [old, line] = [oldLines.get(meter), newByMeter.get(meter)];
        return {
          meter,
          oldQuantity: old ? formatDecimal(parseDecimal(old.quantity)) : null,
          newQuantity: line?.quantity ?? null,
          oldAmountMinor: old?.amount_minor ?? 0,
          newAmountMinor: toMinorNumber(line?.amountMinor ?? 0n, `the ${meter} line`),
        };
      });
      const changed =
        newTotal !== oldTotal ||
        oldLines.size !== newLines.length ||
        newLines.some((l) => {
          const old = oldLines.get(l.meter);
          return (
            !old ||
            old.rate_id !== l.rateId ||
            BigInt(old.amount_minor) !== l.amountMinor ||
            formatDecimal(parseDecimal(old.quantity)) !== l.quantity
          );
        });

      let action: RecalculationAction = 'unchanged';
      if (changed) {
        // Finalized invoices, and open ones already paid beyond the new total, keep their lines: a credit or an
        // adjustment invoice settles the difference.
        const editable =
          (invoice.status === 'draft' || invoice.status === 'open') &&
          newTotal >= BigInt(invoice.amount_paid_minor);
        action = editable ? 'updated' : 'needs_adjustment';
        if (editable) {
          toMinorNumber(newTotal, 'the invoice total');
          await replaceLines(db, invoiceId, newLines);
        }
      }
      return {
        invoiceId,
        tenantId: invoice.tenant_id,
        status: invoice.status,
        currency: invoice.currency,
        oldTotalMinor: toMinorNumber(oldTotal, 'the old total'),
        newTotalMinor: toMinorNumber(newTotal, 'the new total'),
        differenceMinor: toMinorNumber(newTotal - oldTotal, 'the difference'),
        action,
        lines: report,
      };
    });
  }

  return {
    /**
     * Recomputes the period's usage invoices from the rollups and rates as they are now and answers, per invoice,
     * the old total, the new total and the difference. Draft and open invoices are updated; paid or uncollectible
     * ones are left as they are and reported as needs_adjustment for a credit or adjustment invoice.
     */
    async recalculateInvoices(input: InvoicePeriodRequest): Promise<RecalculateInvoicesResult> {
      const req = parseRequest(periodSchema, input, 'recalculation request');
      const holds = await activeHolds(pool);
      const ids = await usageInvoiceIds(pool, req.periodStart, req.periodEnd, req.tenants ?? null);
      const invoices: RecalculatedInvoice[] = [];
      const skipped: SkippedUsage[] = [];
      for (const id of ids) {
        const result = await recalculateInvoice(id, holds, skipped);
        if (result) invoices.push(result);
      }
      return { invoices, skipped };
    },
  };
}
