// The usage-metering-failure incident's work over a time window (seed 000 §2), built on the invoicing and usage groups:
// delivery holds and recalculation of the window's usage invoices, the aggregation runs over it, ingestion in brief,
// and releasing exactly the billing holds one incident placed.
import type { Pool } from 'pg';
import { ingestionLag } from '../../db/usage';
import type { Money } from '../../domain/money';
import { createInvoicingActivities } from '../invoicing';

export interface UsageWindowRequest {
  /** ISO-8601; the window's invoices are the usage invoices whose period overlaps [from, to). */
  from: string;
  to: string;
  /** Only these tenants; every tenant when left out. */
  tenants?: string[];
}

/** Runbook "Verify aggregation job status and logs": the rollup runs that cover part of the window. */
export interface AggregationStatus {
  succeeded: number;
  failed: number;
  running: number;
  /** The newest failed run's error and when it started, if any run failed. */
  lastFailure: { runId: number; startedAt: string; error: string } | null;
}

/** Runbook "Check usage_events ingestion (last event timestamp)", in brief: what a timeline line can carry. */
export interface IngestionSummary {
  asOf: string;
  lastReceivedAt: string | null;
  /** Seconds since the last event arrived; null when none ever did. */
  lagSeconds: number | null;
  /** The meter whose newest event is oldest, among the asked-for meters (all when none are named). */
  stalestMeter: { meter: string; lastOccurredAt: string; lagSeconds: number } | null;
}

export interface DeliveryHoldWindowRequest extends UsageWindowRequest {
  /** Names the incident: a release only touches invoices held with exactly this reason. */
  reason: string;
  operator: string;
}

export interface WindowRecalculation {
  /** Usage invoices recalculated, over how many distinct invoice periods. */
  invoices: number;
  periods: number;
  /** Draft and open invoices corrected in place (and to be delivered again). */
  updated: number;
  unchanged: number;
  /** Finalized invoices whose total changed: a credit or an adjustment invoice settles each. */
  needsAdjustment: { invoiceId: string; tenantId: string; differenceMinor: number; currency: string }[];
  /** Tenants with an invoice whose total changed. */
  tenantsChanged: string[];
  /** Per currency, the sum of the changes' sizes (over- and underbilling alike). */
  changedBy: Money[];
}

export interface ReleaseIncidentHoldsRequest {
  workflowId: string;
  operator: string;
  reason: string;
}

export interface ReleasedHold {
  holdId: number;
  tenantId: string | null;
  meter: string | null;
}

export function createUsageIncidentActivities(deps: { pool: Pool }) {
  const { pool } = deps;
  const invoicing = createInvoicingActivities({ pool });

  /** Draft and open usage invoices of the window, not yet delivered. */
  async function undeliveredInWindow(req: UsageWindowRequest): Promise<string[]> {
    const { rows } = await pool.query<{ id: string }>(
      `SELECT id FROM invoices
       WHERE generation_key IS NOT NULL AND status IN ('draft', 'open') AND delivered_at IS NULL
         AND period_start < $2 AND period_end > $1 AND ($3::text[] IS NULL OR tenant_id = ANY($3))
       ORDER BY id`,
      [req.from, req.to, req.tenants ?? null],
    );
    return rows.map((r) => r.id);
  }

  return {
    /**
     * "Hold invoice delivery until validation complete" for every undelivered usage invoice of the window; run again
     * after a recalculation, it also holds the corrected invoices that now wait to be delivered again.
     */
    async holdWindowInvoiceDelivery(req: DeliveryHoldWindowRequest): Promise<{ held: number }> {
      const invoiceIds = await undeliveredInWindow(req);
      if (invoiceIds.length === 0) return { held: 0 };
      const result = await invoicing.holdInvoiceDelivery({
        invoiceIds,
        reason: req.reason,
        operator: req.operator,
      });
      return { held: result.invoiceIds.length };
    },

    /**
     * Releases the delivery holds this incident placed (held with `reason`); holds anyone else placed stay. Answers
     * every invoice released under `releaseReason`, so a retry reports the same.
     */
    async releaseWindowInvoiceDelivery(
      req: DeliveryHoldWindowRequest & { releaseReason: string },
    ): Promise<{ released: number }> {
      const inWindow = `generation_key IS NOT NULL AND period_start < $2 AND period_end > $1
        AND ($3::text[] IS NULL OR tenant_id = ANY($3))`;
      const { rows } = await pool.query<{ id: string }>(
        `SELECT id FROM invoices WHERE ${inWindow} AND delivery_held AND delivery_hold_reason = $4 ORDER BY id`,
        [req.from, req.to, req.tenants ?? null, req.reason],
      );
      if (rows.length > 0) {
        await invoicing.releaseInvoiceDelivery({
          invoiceIds: rows.map((r) => r.id),
          reason: req.releaseReason,
          operator: req.operator,
        });
      }
      const { rows: released } = await pool.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM invoices
         WHERE ${inWindow} AND NOT delivery_held AND delivery_hold_reason = $4`,
        [req.from, req.to, req.tenants ?? null, req.releaseReason],
      );
      return { released: Number(released[0]?.n ?? 0) };
    },

    /**
     * "Recalculate affected invoices": the invoicing recalculation, run for each invoice period the window touches,
     * answered in brief so a whole-fleet incident keeps its history small.
     */
    async recalculateWindowInvoices(req: UsageWindowRequest): Promise<WindowRecalculation> {
      const { rows: periods } = await pool.query<{ period_start: Date; period_end: Date }>(
        `SELECT DISTINCT period_start, period_end FROM invoices
         WHERE generation_key IS NOT NULL AND status <> 'void' AND period_start < $2 AND period_end > $1
           AND ($3::text[] IS NULL OR tenant_id = ANY($3))
         ORDER BY period_start, period_end`,
        [req.from, req.to, req.tenants ?? null],
      );
      const summary: WindowRecalculation = {
        invoices: 0,
        periods: periods.length,
        updated: 0,
        unchanged: 0,
        needsAdjustment: [],
        tenantsChanged: [],
        changedBy: [],
      };
      const tenants = new Set<string>();
      const byCurrency = new Map<string, number>();
      for (const period of periods) {
        const { invoices } = await invoicing.recalculateInvoices({
          periodStart: period.period_start.toISOString(),
          periodEnd: period.period_end.toISOString(),
          ...(req.tenants ? { tenants: req.tenants } : {}),
        });
        for (const invoice of invoices) {
          summary.invoices += 1;
          if (invoice.action === 'unchanged') summary.unchanged += 1;
          if (invoice.action === 'updated') summary.updated += 1;
          if (invoice.action === 'needs_adjustment') {
            summary.needsAdjustment.push({
              invoiceId: invoice.invoiceId,
              tenantId: invoice.tenantId,
              differenceMinor: invoice.differenceMinor,
              currency: invoice.currency,
            });
          }
          if (invoice.differenceMinor !== 0) {
            tenants.add(invoice.tenantId);
            const size = Math.abs(invoice.differenceMinor);
            byCurrency.set(invoice.currency, (byCurrency.get(invoice.currency) ?? 0) + size);
          }
        }
      }
      summary.tenantsChanged = [...tenants].sort();
      summary.changedBy = [...byCurrency.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([currency, amountMinor]) => ({ amountMinor, currency }));
      return summary;
    },

    /** Counts the rollup runs overlapping the window by status, with the newest failure's error. */
    async aggregationStatus(req: { from: string; to: string }): Promise<AggregationStatus> {
      const { rows } = await pool.query<{ status: 'running' | 'succeeded' | 'failed'; n: string }>(
        `SELECT status, count(*)::text AS n FROM rollup_runs
         WHERE window_start < $2 AND window_end > $1 GROUP BY status`,
        [req.from, req.to],
      );
      const count = (status: string) => Number(rows.find((r) => r.status === status)?.n ?? 0);
      const { rows: failures } = await pool.query<{ id: string; started_at: Date; error: string }>(
        `SELECT id, started_at, error FROM rollup_runs
         WHERE status = 'failed' AND window_start < $2 AND window_end > $1
         ORDER BY started_at DESC, id DESC LIMIT 1`,
        [req.from, req.to],
      );
      const last = failures[0];
      return {
        succeeded: count('succeeded'),
        failed: count('failed'),
        running: count('running'),
        lastFailure: last
          ? { runId: Number(last.id), startedAt: last.started_at.toISOString(), error: last.error }
          : null,
      };
    },

    async usageIngestionSummary(req: { meters?: string[] } = {}): Promise<IngestionSummary> {
      const lag = await ingestionLag(pool);
      const meters = lag.meters.filter((m) => !req.meters || req.meters.includes(m.meter));
      const stalest = meters.reduce<(typeof meters)[number] | null>(
        (worst, m) => (!worst || m.lagSeconds > worst.lagSeconds ? m : worst),
        null,
      );
      return {
        asOf: lag.asOf,
        lastReceivedAt: lag.lastReceivedAt,
        lagSeconds:
          lag.lastReceivedAt === null
            ? null
            : Math.max(0, Math.round((Date.parse(lag.asOf) - Date.parse(lag.lastReceivedAt)) / 1000)),
        stalestMeter: stalest
          ? { meter: stalest.meter, lastOccurredAt: stalest.lastOccurredAt, lagSeconds: stalest.lagSeconds }
          : null,
      };
    },

    /**
     * Releases the billing holds this incident placed, and only those: a hold another incident or an operator placed
     * on the same scope stays. A retry releases nothing more and answers every hold of the incident.
     */
    async releaseIncidentHolds(req: ReleaseIncidentHoldsRequest): Promise<ReleasedHold[]> {
      await pool.query(
        `UPDATE billing_holds SET released_at = now(), released_by = $2, release_reason = $3
         WHERE workflow_id = $1 AND released_at IS NULL`,
        [req.workflowId, req.operator, req.reason],
      );
      const { rows } = await pool.query<{ id: string; tenant_id: string | null; meter: string | null }>(
        'SELECT id, tenant_id, meter FROM billing_holds WHERE workflow_id = $1 ORDER BY id',
        [req.workflowId],
      );
      return rows.map((r) => ({ holdId: Number(r.id), tenantId: r.tenant_id, meter: r.meter }));
    },
  };
}
export type UsageIncidentActivities = ReturnType<typeof createUsageIncidentActivities>;
