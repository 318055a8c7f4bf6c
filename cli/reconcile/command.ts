// `billops reconcile --date YYYY-MM-DD`: the runbook's billing reconciliation report, over cli/reconcile/report.ts.
import { parseArgs } from 'node:util';
import { formatMinorUnits } from '../../domain/money';
import { LEDGER_SECRET_VARIABLE, ledgersOf, RECONCILE_PROCESSORS } from '../../paymentEvents/ledgers';
import {
  hasDiscrepancies,
  reconcileDay,
  ReconcileRequestError,
  utcDay,
  type OurRecord,
  type ReconcileReport,
  type ReconcileRow,
} from './report';
import { cliConfig, columns, oneOf, printJson, required, UsageError, withDatabase } from '../common';
import { createGatewaysFromConfig } from '../../drivers/gateways';

/** Exit 0 when every transaction matches, 1 when any row is missing on a side or disagrees. */
export async function reconcile(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { date: { type: 'string' }, processor: { type: 'string' }, json: { type: 'boolean' } },
  });
  const date = required(values.date, '--date YYYY-MM-DD');
  const processor = oneOf(values.processor, RECONCILE_PROCESSORS, '--processor');
  try {
    utcDay(date);
  } catch (err) {
    if (err instanceof ReconcileRequestError) throw new UsageError(`--date: ${err.message}`);
    throw err;
  }

  const ledgers = ledgersOf(createGatewaysFromConfig(cliConfig()));
  const processors = processor ? [processor] : RECONCILE_PROCESSORS.filter((p) => ledgers[p] !== undefined);
  const missing = processors.length === 0 ? [...RECONCILE_PROCESSORS] : processors.filter((p) => !ledgers[p]);
  if (missing.length > 0) {
    throw new UsageError(
      `${missing.join(' and ')} not configured: set ${missing.map((p) => LEDGER_SECRET_VARIABLE[p]).join(' or ')} ` +
        '(STRIPE_API_BASE or PAYSTACK_BASE_URL point it at a mock)',
    );
  }

  const report = await withDatabase((pool) => reconcileDay({ pool, ledgers }, { date, processors }));
  if (values.json) printJson(report);
  else for (const line of reconcileView(report)) console.log(line);
  return hasDiscrepancies(report) ? 1 : 0;
}

export function reconcileView(r: ReconcileReport): string[] {
  const t = r.totals;
  const lines = [
    `reconciliation ${r.date} (UTC ${r.from} to ${r.to}), ${r.processors.join(' and ')}: ` +
      `${t.providerTransactions} provider ${t.providerTransactions === 1 ? 'transaction' : 'transactions'}`,
  ];
  if (r.rows.length === 0) return [...lines, 'nothing to reconcile: no transactions on either side'];
  const header = ['OUTCOME', 'PROCESSOR', 'PROVIDER', 'OURS', 'PROVIDER AMOUNT', 'OUR AMOUNT', 'DETAIL'];
  const order: ReconcileRow['outcome'][] = ['mismatch', 'missing_in_db', 'missing_at_provider', 'matched'];
  const sorted = [...r.rows].sort((a, b) => order.indexOf(a.outcome) - order.indexOf(b.outcome));
  const rows = sorted.map((row) => [
    row.outcome,
    row.processor,
    row.provider ? `${row.provider.id} (${row.provider.status})` : '-',
    row.ours ? ourLabel(row.ours) : '-',
    row.provider ? formatMinorUnits(row.provider.amountMinor, row.provider.currency) : '-',
    row.ours ? formatMinorUnits(row.ours.amountMinor, row.ours.currency) : '-',
    detail(row),
  ]);
  lines.push(...columns([header, ...rows]).map((line) => `  ${line}`));
  lines.push(
    `matched: ${t.matched}, mismatch: ${t.mismatch}, missing in the database: ${t.missingInDb}, ` +
      `missing at the provider: ${t.missingAtProvider}`,
  );
  return lines;
}

function ourLabel(ours: OurRecord): string {
  return ours.kind === 'transaction'
    ? `${ours.reference ?? ours.id} (${ours.status})`
    : `invoice ${ours.id} (${ours.status})`;
}

function detail(row: ReconcileRow): string {
  const differences = row.differences.map((d) => `${d.field}: ours ${d.ours}, provider ${d.provider}`);
  return [...differences, row.note].filter(Boolean).join('; ') || '-';
}
