// Payment processor outage, seed 000 "Identify affected accounts": the tenants in dunning on the processor and those
// whose payment failed on it, their open invoices (the revenue at risk), and the mass action over their lifecycles.
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import { dunningQuery, dunningWorkflowId, signalDunning, type MassSignal } from '../../../temporal/dunning';
import { GRPC, grpcCode } from '../../../temporal/grpc';
import type { Money } from '../../../domain/money';
import type { OutageProcessor } from './probes';

export interface AffectedAccounts {
  tenantIds: string[];
  dunning: { workflowIds: string[]; source: 'visibility' | 'dunning_records' };
  /** Tenants with a payment failed on the processor since the outage began. */
  failedPaymentTenantIds: string[];
  /** Whether this worker can signal the lifecycles (it has a Temporal client). */
  canSteerDunning: boolean;
}

export interface DunningSteerRequest {
  /** Workflow id + step: the same key never reaches a lifecycle twice (batch job id, signal request id). */
  idempotencyKey: string;
  workflowIds: string[];
  action: 'extendGrace' | 'pause' | 'resume';
  /** For extendGrace. */
  hours?: number;
  reason: string;
  operator: string;
}

export interface DunningSteerResult {
  /** batch: server-side batch operations; signals: one signal per lifecycle (a server without batch operations). */
  via: 'batch' | 'signals' | 'none';
  selected: number;
  reached: number;
  failed: number;
}

export interface OutageInvoice {
  tenantId: string;
  invoiceId: string;
  amountDueMinor: number;
  currency: string;
}

/** A batch still running after this is waited for again by the activity's retry (same job id, no second signal). */
const BATCH_WAIT_MS = 40_000;

/** Running dunning lifecycles on the processor: from visibility, or the open dunning records where it has none. */
async function runningDunning(
  pool: Pool,
  client: Client | undefined,
  processor: OutageProcessor,
): Promise<AffectedAccounts['dunning'] & { tenantIds: string[] }> {
  if (client) {
    try {
      const workflowIds: string[] = [];
      for await (const wf of client.workflow.list({
        query: dunningQuery(`PaymentProcessor = '${processor}'`),
      })) {
        workflowIds.push(wf.workflowId);
      }
      const prefix = dunningWorkflowId('');
      const ours = workflowIds.filter((id) => id.startsWith(prefix));
      return {
        source: 'visibility',
        workflowIds: ours,
        tenantIds: ours.map((id) => id.slice(prefix.length)),
      };
    } catch (error) {
      // A server without list support (standard visibility, the time-skipping test server): the database knows too.
      if (grpcCode(error) !== GRPC.unimplemented) throw error;
    }
  }
  const { rows } = await pool.query<{ tenant_id: string; workflow_id: string }>(
    `SELECT d.tenant_id, d.workflow_id FROM dunning_records d JOIN tenants t ON t.id = d.tenant_id
      WHERE d.closed_at IS NULL AND t.payment_processor = $1 AND t.deleted_at IS NULL
      ORDER BY d.tenant_id`,
    [processor],
  );
  return {
    source: 'dunning_records',
    workflowIds: rows.map((r) => r.workflow_id),
    tenantIds: rows.map((r) => r.tenant_id),
  };
}

function massSignalOf(req: DunningSteerRequest): MassSignal {
  if (req.action === 'extendGrace') {
    if (!req.hours || req.hours <= 0) {
      throw ApplicationFailure.nonRetryable('extendGrace needs a positive number of hours', 'InvalidRequest');
    }
    return {
      kind: 'extendGrace',
      extension: { hours: req.hours, reason: req.reason, operator: req.operator },
    };
  }
  return { kind: req.action, action: { operator: req.operator, reason: req.reason } };
}

/** Tenants in dunning on the processor, and tenants whose payment failed on it since the outage began. */
export async function findOutageAffectedAccounts(
  pool: Pool,
  client: Client | undefined,
  req: {
    processor: OutageProcessor;
    since: string;
    /** An outage confined to some accounts: only these count. */
    tenantIds?: string[];
  },
): Promise<AffectedAccounts> {
  const only = req.tenantIds ? new Set(req.tenantIds) : null;
  const within = (tenantId: string) => only === null || only.has(tenantId);
  const running = await runningDunning(pool, client, req.processor);
  const lifecycles = running.workflowIds
    .map((workflowId, i) => ({ workflowId, tenantId: running.tenantIds[i]! }))
    .filter((l) => within(l.tenantId));
  const dunning = {
    source: running.source,
    workflowIds: lifecycles.map((l) => l.workflowId),
    tenantIds: lifecycles.map((l) => l.tenantId),
  };
  const { rows } = await pool.query<{ tenant_id: string }>(
    `SELECT DISTINCT p.tenant_id FROM payment_transactions p JOIN tenants t ON t.id = p.tenant_id
      WHERE p.processor = $1 AND p.status = 'failed' AND p.updated_at >= $2 AND t.deleted_at IS NULL
      ORDER BY p.tenant_id`,
    [req.processor, req.since],
  );
  const failed = rows.map((r) => r.tenant_id).filter(within);
  return {
    tenantIds: [...new Set([...dunning.tenantIds, ...failed])].sort(),
    dunning: { workflowIds: dunning.workflowIds, source: dunning.source },
    failedPaymentTenantIds: failed,
    canSteerDunning: client !== undefined,
  };
}

/** The dunning mass action over the lifecycles found: grace extension, pause or resume, each delivered once. */
export async function steerOutageDunning(
  client: Client,
  req: DunningSteerRequest,
): Promise<DunningSteerResult> {
  if (req.workflowIds.length === 0) return { via: 'none', selected: 0, reached: 0, failed: 0 };
  const { via, selected, reached, failed } = await signalDunning(
    client,
    { workflowIds: req.workflowIds },
    massSignalOf(req),
    { idempotencyKey: req.idempotencyKey, requestedBy: 'outage', waitMs: BATCH_WAIT_MS },
  );
  return { via, selected, reached, failed };
}

/** The open invoices of these tenants with something left to pay, and their total: the revenue at risk. */
export async function listOutageOpenInvoices(
  pool: Pool,
  req: { tenantIds: string[] },
): Promise<{ invoices: OutageInvoice[]; due: Money | null }> {
  if (req.tenantIds.length === 0) return { invoices: [], due: null };
  const { rows } = await pool.query<{ tenant_id: string; id: string; due: string; currency: string }>(
    `SELECT tenant_id, id, (total_minor - amount_paid_minor)::text AS due, currency FROM invoices
      WHERE tenant_id = ANY($1::text[]) AND status = 'open' AND total_minor > amount_paid_minor
      ORDER BY tenant_id, due_at NULLS LAST, id`,
    [req.tenantIds],
  );
  const invoices = rows.map((r) => ({
    tenantId: r.tenant_id,
    invoiceId: r.id,
    amountDueMinor: Number(r.due),
    currency: r.currency,
  }));
  return { invoices, due: largestCurrencyTotal(invoices) };
}

/** Per currency, the largest total: the report's single revenue-impact figure. */
function largestCurrencyTotal(invoices: OutageInvoice[]): Money | null {
  const totals = new Map<string, number>();
  for (const i of invoices) totals.set(i.currency, (totals.get(i.currency) ?? 0) + i.amountDueMinor);
  const [currency, amountMinor] = [...totals.entries()].sort((a, b) => b[1] - a[1])[0] ?? [];
  return currency === undefined || amountMinor === undefined ? null : { amountMinor, currency };
}
