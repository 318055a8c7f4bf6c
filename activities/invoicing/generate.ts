// Invoice generation: a draft per tenant and period from usage rollups × the rates in force, skipping what is held.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { z } from 'zod';
import {
  inTenantTransaction,
  insertDraftInvoice,
  insertLines,
  invoicedMeters,
  setGenerationHeld,
  totalFromLines,
  usageInPeriod,
  usageInvoicesOverlapping,
  type InvoiceRow,
  type InvoiceStatus,
} from '../../db/invoices';
import { activeHolds, isHeld } from '../../db/billingHolds';
import { priceMeter, sumOf, toMinorNumber, type LineDraft, type RateSubject } from '../../domain/pricing';
import { toSummary } from './deliver';
import { ratesInForce } from './rates';
import { parseRequest, periodSchema, present } from './requests';

export interface InvoicePeriodRequest {
  /** ISO-8601 on the hour (rollups are hourly); the rates in force at this instant price the period. */
  periodStart: string;
  /** ISO-8601 on the hour, exclusive. */
  periodEnd: string;
  /** Only these tenants; every tenant when left out. */
  tenants?: string[];
}

export interface GenerateInvoicesRequest extends InvoicePeriodRequest {
  /** Workflow id + step; recorded on the invoices this run creates. */
  idempotencyKey: string;
}

/** created: a new draft; extended: lines added to the draft for meters released from a hold; unchanged: nothing to add. */
export type GenerationOutcome = 'created' | 'extended' | 'unchanged';

export interface GeneratedInvoice {
  invoiceId: string;
  tenantId: string;
  status: InvoiceStatus;
  currency: string;
  totalMinor: number;
  /** Meters the invoice has a line for. */
  meters: string[];
  outcome: GenerationOutcome;
}

/**
 * held: an active billing hold covers it; no_rate: no rate in force for it; invoice_not_draft: the period's invoice
 * is already finalized (recalculate, or adjust); overlapping_invoice: another usage invoice covers part of the period.
 */
export type SkipReason = 'held' | 'no_rate' | 'invoice_not_draft' | 'overlapping_invoice';

export interface SkippedUsage {
  tenantId: string;
  /** null: the whole tenant. */
  meter: string | null;
  reason: SkipReason;
}

export interface GenerateInvoicesResult {
  invoices: GeneratedInvoice[];
  skipped: SkippedUsage[];
}

const generateSchema = periodSchema.and(z.object({ idempotencyKey: present }));

export function createGenerationActivities(deps: { pool: Pool }) {
  const { pool } = deps;

  /** Generates or completes one tenant's draft for the period from its priced lines. */
  async function generateForTenant(
    subject: RateSubject,
    period: { start: Date; end: Date; key: string },
    lines: LineDraft[],
    heldMeters: boolean,
    skipped: SkippedUsage[],
  ): Promise<GeneratedInvoice | undefined> {
    return inTenantTransaction<GeneratedInvoice | undefined>(pool, subject.tenantId, async (db) => {
      const covering = await usageInvoicesOverlapping(db, subject.tenantId, period.start, period.end);
      const same = (r: InvoiceRow) =>
        r.period_start.getTime() === period.start.getTime() &&
        r.period_end.getTime() === period.end.getTime();
      if (covering.some((r) => !same(r))) {
        skipped.push({ tenantId: subject.tenantId, meter: null, reason: 'overlapping_invoice' });
        return undefined;
      }
      const existing = covering[0];
      if (!existing && lines.length === 0) return undefined;

      if (!existing) {
        toMinorNumber(sumOf(lines), 'the invoice total');
        const invoiceId = await insertDraftInvoice(db, {
          tenantId: subject.tenantId,
          start: period.start,
          end: period.end,
          currency: subject.currency,
          key: period.key,
          held: heldMeters,
        });
        await insertLines(db, invoiceId, lines);
        return {
          invoiceId,
          tenantId: subject.tenantId,
          status: 'draft',
          currency: subject.currency,
          totalMinor: await totalFromLines(db, invoiceId),
          meters: lines.map((l) => l.meter),
          outcome: 'created',
        };
      }

      const invoiced = new Set(await invoicedMeters(db, existing.id));
      const missing = lines.filter((l) => !invoiced.has(l.meter));
      if (existing.status !== 'draft') {
        for (const l of missing)
          skipped.push({ tenantId: subject.tenantId, meter: l.meter, reason: 'invoice_not_draft' });
        return {
          ...toSummary(existing),
          status: existing.status,
          meters: [...invoiced],
          outcome: 'unchanged',
        };
      }
      toMinorNumber(BigInt(existing.total_minor) + sumOf(missing), 'the invoice total');
      await insertLines(db, existing.id, missing);
      await setGenerationHeld(db, existing.id, heldMeters);
      return {
        invoiceId: existing.id,
        tenantId: subject.tenantId,
        status: existing.status,
        currency: existing.currency,
        totalMinor: missing.length ? await totalFromLines(db, existing.id) : existing.total_minor,
        meters: [...invoiced, ...missing.map((l) => l.meter)].sort(),
        outcome: missing.length ? 'extended' : 'unchanged',
      };
    });
  }

  return {
    /**
     * Builds a draft invoice per tenant for the period: each meter's rollups summed in SQL and priced with the rate
     * in force at the period start. Tenants and meters under an active billing hold are skipped (and reported);
     * a later run after their release adds them. Idempotent per tenant and period.
     */
    async generateInvoices(input: GenerateInvoicesRequest): Promise<GenerateInvoicesResult> {
      const req = parseRequest(generateSchema, input, 'invoice generation request');
      const holds = await activeHolds(pool);
      if (holds.some((h) => h.tenant_id === null && h.meter === null)) {
        throw ApplicationFailure.nonRetryable(
          'invoice generation is on hold for every tenant; release the hold first',
          'InvoiceGenerationHeld',
        );
      }
      const usage = await usageInPeriod(pool, req.periodStart, req.periodEnd, req.tenants ?? null);
      const subjects = new Map<string, RateSubject>();
      for (const u of usage)
        subjects.set(u.tenant_id, { tenantId: u.tenant_id, tier: u.tier, currency: u.currency });
      const rates = await ratesInForce(pool, [...new Set(usage.map((u) => u.meter))], req.periodStart, [
        ...subjects.values(),
      ]);

      const invoices: GeneratedInvoice[] = [];
      const skipped: SkippedUsage[] = [];
      for (const subject of subjects.values()) {
        if (isHeld(holds, subject.tenantId, null)) {
          skipped.push({ tenantId: subject.tenantId, meter: null, reason: 'held' });
          continue;
        }
        const lines: LineDraft[] = [];
        let heldMeters = false;
        for (const u of usage.filter((row) => row.tenant_id === subject.tenantId)) {
          if (isHeld(holds, subject.tenantId, u.meter)) {
            heldMeters = true;
            skipped.push({ tenantId: subject.tenantId, meter: u.meter, reason: 'held' });
            continue;
          }
          const line = priceMeter(rates, subject, req.periodStart, u.meter, u.quantity);
          if (line) lines.push(line);
          else skipped.push({ tenantId: subject.tenantId, meter: u.meter, reason: 'no_rate' });
        }
        const period = { start: req.periodStart, end: req.periodEnd, key: req.idempotencyKey };
        const invoice = await generateForTenant(subject, period, lines, heldMeters, skipped);
        if (invoice) invoices.push(invoice);
      }
      return { invoices, skipped };
    },
  };
}
