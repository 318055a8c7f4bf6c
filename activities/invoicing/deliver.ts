// Invoice delivery: "hold invoice delivery until validation complete", its release, and marking invoices delivered once.
import type { Pool } from 'pg';
import { z } from 'zod';
import { markDelivered, setDeliveryHeld, type InvoiceRow } from '../../db/invoices';
import { ids, instant, parseRequest, present } from './requests';

export interface DeliveryHoldRequest {
  /** With neither tenantId nor invoiceIds, every undelivered invoice. */
  tenantId?: string | null;
  invoiceIds?: string[];
  reason: string;
  operator: string;
}

export interface DeliveryHoldResult {
  /** The invoices now held (or released). */
  invoiceIds: string[];
  /** Requested ids that were not changed: unknown, already delivered, void or paid. */
  unmatched: string[];
}

export interface DeliverInvoicesRequest {
  tenants?: string[];
  invoiceIds?: string[];
  /** Only invoices whose period lies within these bounds (ISO-8601). */
  periodStart?: string;
  periodEnd?: string;
}

export interface InvoiceSummary {
  invoiceId: string;
  tenantId: string;
  currency: string;
  totalMinor: number;
}

export interface DeliverInvoicesResult {
  delivered: InvoiceSummary[];
  /** Open, undelivered and on delivery hold: they wait for releaseInvoiceDelivery. */
  held: InvoiceSummary[];
}

const deliveryHoldSchema = z.object({
  tenantId: present.nullish(),
  invoiceIds: ids.optional(),
  reason: present,
  operator: present,
});
const deliverSchema = z.object({
  tenants: ids.optional(),
  invoiceIds: ids.optional(),
  periodStart: instant.optional(),
  periodEnd: instant.optional(),
});

export function toSummary(
  row: Pick<InvoiceRow, 'id' | 'tenant_id' | 'currency' | 'total_minor'>,
): InvoiceSummary {
  return { invoiceId: row.id, tenantId: row.tenant_id, currency: row.currency, totalMinor: row.total_minor };
}

export function createDeliveryActivities(deps: { pool: Pool }) {
  const { pool } = deps;

  async function setDeliveryHold(held: boolean, input: DeliveryHoldRequest): Promise<DeliveryHoldResult> {
    const req = parseRequest(deliveryHoldSchema, input, held ? 'delivery hold' : 'delivery release');
    const invoiceIds = await setDeliveryHeld(pool, held, {
      reason: req.reason,
      operator: req.operator,
      tenantId: req.tenantId ?? null,
      invoiceIds: req.invoiceIds ?? null,
    });
    const matched = new Set(invoiceIds);
    return { invoiceIds, unmatched: (req.invoiceIds ?? []).filter((id) => !matched.has(id)) };
  }

  return {
    /** "Hold invoice delivery until validation complete": flags undelivered draft and open invoices. */
    async holdInvoiceDelivery(input: DeliveryHoldRequest): Promise<DeliveryHoldResult> {
      return setDeliveryHold(true, input);
    },

    async releaseInvoiceDelivery(input: DeliveryHoldRequest): Promise<DeliveryHoldResult> {
      return setDeliveryHold(false, input);
    },

    /**
     * Marks open usage invoices delivered, once each, except those on delivery hold, which are reported instead.
     * The mark is what keeps a retried delivery run from sending an invoice twice.
     */
    async deliverInvoices(input: DeliverInvoicesRequest = {}): Promise<DeliverInvoicesResult> {
      const req = parseRequest(deliverSchema, input, 'delivery request');
      const { delivered, held } = await markDelivered(pool, {
        tenants: req.tenants ?? null,
        invoiceIds: req.invoiceIds ?? null,
        periodStart: req.periodStart ?? null,
        periodEnd: req.periodEnd ?? null,
      });
      const byTenant = (a: InvoiceSummary, b: InvoiceSummary) =>
        a.tenantId.localeCompare(b.tenantId) || a.invoiceId.localeCompare(b.invoiceId);
      return { delivered: delivered.map(toSummary).sort(byTenant), held: held.map(toSummary) };
    },
  };
}
