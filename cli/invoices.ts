// `billops invoices recalculate|hold|release`: the metering-failure runbook's invoice steps by hand, over the
// invoicing functions the activities use: recompute a period's usage invoices, hold or release generation and delivery.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { GenerationHold, RecalculateInvoicesResult } from '../activities/invoicing';
import { formatMinorUnits } from '../domain/money';
import { HOUR_MS } from '../domain/rollups';
import {
  columns,
  onePositional,
  operatorName,
  printJson,
  required,
  UsageError,
  withDatabase,
} from './common';
import { edgeError, meterFlag, tenantFlag, tenantFlags, timeRange } from './flags';
import { count, windowText } from './format';

function signedAmount(amountMinor: number, currency: string): string {
  const text = formatMinorUnits(amountMinor, currency);
  return amountMinor > 0 ? text.replace(' ', ' +') : text;
}

/**
 * Recomputes the usage invoices of exactly the period [--from, --to) from the rollups as they are now: per invoice
 * the old total, the new total, the difference and the action (updated, needs_adjustment, unchanged).
 */
export async function invoicesRecalculate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
  });
  const { from, to } = timeRange(values);
  if (Date.parse(from) % HOUR_MS !== 0 || Date.parse(to) % HOUR_MS !== 0) {
    throw new UsageError(
      '--from and --to must be on the hour (the invoice period): usage rollups are hourly',
    );
  }
  const tenants = tenantFlags(values.tenant);
  const { createInvoicingActivities } = await import('../activities/invoicing');
  let result: RecalculateInvoicesResult;
  try {
    result = await withDatabase((pool) =>
      createInvoicingActivities({ pool }).recalculateInvoices({ periodStart: from, periodEnd: to, tenants }),
    );
  } catch (err) {
    throw edgeError(err, ['InvalidInvoicingRequest']);
  }
  if (values.json) printJson(result);
  else for (const line of recalculationView(result, from, to)) console.log(line);
  // No invoice with exactly this period: most likely the wrong bounds, so say so with exit 1.
  return result.invoices.length > 0 ? 0 : 1;
}

export function recalculationView(r: RecalculateInvoicesResult, from: string, to: string): string[] {
  if (r.invoices.length === 0) return [`no usage invoice has the period ${windowText(from, to)}`];
  const header = ['INVOICE', 'TENANT', 'STATUS', 'OLD TOTAL', 'NEW TOTAL', 'DIFFERENCE', 'ACTION'];
  const rows = r.invoices.map((i) => [
    i.invoiceId,
    i.tenantId,
    i.status,
    formatMinorUnits(i.oldTotalMinor, i.currency),
    formatMinorUnits(i.newTotalMinor, i.currency),
    signedAmount(i.differenceMinor, i.currency),
    i.action,
  ]);
  const byAction = (action: string) => r.invoices.filter((i) => i.action === action).length;
  return [
    ...columns([header, ...rows]),
    ...r.skipped.map((s) => `skipped ${s.tenantId} ${s.meter ?? '(every meter)'}: ${s.reason}`),
    `${count(r.invoices.length, 'invoice')}: ${byAction('updated')} updated, ` +
      `${byAction('needs_adjustment')} need a credit or adjustment invoice, ${byAction('unchanged')} unchanged`,
  ];
}

const holdFlags = {
  tenant: { type: 'string' },
  meter: { type: 'string' },
  invoice: { type: 'string', multiple: true },
  reason: { type: 'string' },
  operator: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export async function invoicesHold(args: string[]): Promise<number> {
  return holdOrRelease('hold', args);
}

export async function invoicesRelease(args: string[]): Promise<number> {
  return holdOrRelease('release', args);
}

/** Billing holds: `generation` (a billing_holds row per tenant and meter scope) or `delivery` (per invoice). */
async function holdOrRelease(kind: 'hold' | 'release', args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: holdFlags,
  });
  const target = onePositional(positionals, 'generation or delivery');
  if (target !== 'generation' && target !== 'delivery') {
    throw new UsageError(`${kind} what: generation or delivery (got ${JSON.stringify(target)})`);
  }
  if (target === 'generation' && values.invoice) throw new UsageError('--invoice applies to delivery holds');
  if (target === 'delivery' && values.meter !== undefined)
    throw new UsageError('--meter applies to generation holds');
  const tenantId = tenantFlag(values.tenant);
  const meter = meterFlag(values.meter);
  const invoiceIds = values.invoice?.length ? [...new Set(values.invoice)] : undefined;
  const reason = required(values.reason, '--reason TEXT');
  const operator = operatorName(values.operator);
  const { createInvoicingActivities } = await import('../activities/invoicing');

  return withDatabase(async (pool) => {
    const invoicing = createInvoicingActivities({ pool });
    try {
      if (target === 'generation') {
        const request = { tenantId, meter, reason, operator, idempotencyKey: `cli:${kind}:${randomUUID()}` };
        if (kind === 'hold') return reportHold(await invoicing.holdInvoiceGeneration(request), values.json);
        const { released } = await invoicing.releaseInvoiceGeneration(request);
        return reportRelease(released, { tenantId, meter }, values.json);
      }
      const request = { tenantId, invoiceIds, reason, operator };
      const result =
        kind === 'hold'
          ? await invoicing.holdInvoiceDelivery(request)
          : await invoicing.releaseInvoiceDelivery(request);
      if (values.json) printJson(result);
      else {
        const verb = kind === 'hold' ? 'held' : 'released';
        const ids = result.invoiceIds.length ? `: ${result.invoiceIds.join(', ')}` : '';
        console.log(
          `${verb} delivery of ${count(result.invoiceIds.length, 'invoice')}${ids} (by ${operator}: ${reason})`,
        );
        if (result.invoiceIds.length === 0)
          console.log('no undelivered draft or open invoice matches; later invoices are not held by this');
        if (result.unmatched.length > 0)
          console.log(`not changed (unknown, delivered, void or paid): ${result.unmatched.join(', ')}`);
      }
      return result.invoiceIds.length > 0 && result.unmatched.length === 0 ? 0 : 1;
    } catch (err) {
      throw edgeError(err, ['InvalidInvoicingRequest']);
    }
  });
}

function scopeText(scope: { tenantId?: string | null; meter?: string | null }): string {
  return `${scope.tenantId ? `tenant ${scope.tenantId}` : 'every tenant'}, ${scope.meter ? `meter ${scope.meter}` : 'every meter'}`;
}

function reportHold(hold: GenerationHold, json: boolean | undefined): number {
  if (json) printJson(hold);
  else {
    const flags = [hold.tenantId && `--tenant ${hold.tenantId}`, hold.meter && `--meter ${hold.meter}`]
      .filter(Boolean)
      .join(' ');
    console.log(
      `held invoice generation for ${scopeText(hold)} (hold ${hold.holdId}, by ${hold.heldBy}: ${hold.reason})`,
    );
    console.log(
      `release it with: billops invoices release generation ${flags ? `${flags} ` : ''}--reason TEXT`,
    );
  }
  return 0;
}

/** Exit 1 when no active hold had exactly this scope: nothing was released. */
function reportRelease(
  released: GenerationHold[],
  scope: { tenantId?: string; meter?: string },
  json: boolean | undefined,
): number {
  if (json) printJson({ released });
  else if (released.length === 0) console.log(`no active generation hold on exactly ${scopeText(scope)}`);
  else
    for (const hold of released) {
      console.log(
        `released generation hold ${hold.holdId} on ${scopeText(hold)} (held by ${hold.heldBy}: ${hold.reason}; ` +
          `released by ${hold.releasedBy}: ${hold.releaseReason})`,
      );
    }
  return released.length > 0 ? 0 : 1;
}
