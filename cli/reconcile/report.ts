// `billops reconcile`: one UTC day of a processor's transactions against payment_transactions and invoices — matched, missing on either side, or disagreeing.
import type { Pool } from 'pg';
import type {
  MoneyState,
  ProviderLedger,
  ProviderLedgers,
  ProviderTransaction,
  ReconcileProcessor,
} from '../../paymentEvents/ledgers';
import { DAY_MS } from '../../domain/vocabulary';

export interface ReconcileDependencies {
  pool: Pool;
  ledgers: ProviderLedgers;
}

export interface ReconcileRequest {
  /** YYYY-MM-DD, a UTC day. */
  date: string;
  /** Default: every processor with a ledger. */
  processors?: ReconcileProcessor[];
}

export type ReconcileOutcome = 'matched' | 'mismatch' | 'missing_in_db' | 'missing_at_provider';

/** Our side of a row: a payment transaction, or the invoice itself when no transaction of ours records the payment. */
export interface OurRecord {
  kind: 'transaction' | 'invoice';
  /** payment_transactions.id or invoices.id. */
  id: string;
  /** payment_transactions.reference. */
  reference?: string;
  tenantId: string;
  invoiceId: string | null;
  invoiceStatus: string | null;
  status: string;
  amountMinor: number;
  currency: string;
  createdAt: string;
}

export interface Difference {
  field: 'amount' | 'currency' | 'status' | 'invoice_status';
  ours: string | number;
  provider: string | number;
}

export interface ReconcileRow {
  processor: ReconcileProcessor;
  outcome: ReconcileOutcome;
  provider?: Pick<ProviderTransaction, 'id' | 'status' | 'amountMinor' | 'currency' | 'createdAt'>;
  ours?: OurRecord;
  differences: Difference[];
  note?: string;
}

export interface ReconcileTotals {
  providerTransactions: number;
  matched: number;
  mismatch: number;
  missingInDb: number;
  missingAtProvider: number;
}

export interface ReconcileReport {
  date: string;
  /** The day as [from, to), ISO-8601 UTC. */
  from: string;
  to: string;
  processors: ReconcileProcessor[];
  rows: ReconcileRow[];
  totals: ReconcileTotals;
}

/** A request reconciliation cannot serve: a bad date, or a processor without a ledger (exit 2 at the CLI). */
export class ReconcileRequestError extends Error {
  override name = 'ReconcileRequestError';
}

/** [from, to) of a YYYY-MM-DD UTC day; refuses dates that do not exist (2026-02-30) and days not yet begun. */
export function utcDay(date: string, now: Date = new Date()): { from: Date; to: Date } {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date.trim());
  const bad = (why: string) => new ReconcileRequestError(`the date ${why} (got ${JSON.stringify(date)})`);
  if (!match) throw bad('must be a UTC day as YYYY-MM-DD');
  const [y, m, d] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const from = new Date(Date.UTC(y, m - 1, d));
  if (from.getUTCFullYear() !== y || from.getUTCMonth() !== m - 1 || from.getUTCDate() !== d) {
    throw bad('is not a calendar day');
  }
  if (from.getTime() > now.getTime()) throw bad('is in the future (UTC)');
  return { from, to: new Date(from.getTime() + DAY_MS) };
}

export async function reconcileDay(
  deps: ReconcileDependencies,
  request: ReconcileRequest,
): Promise<ReconcileReport> {
  const { from, to } = utcDay(request.date);
  const processors = request.processors ?? (Object.keys(deps.ledgers) as ReconcileProcessor[]);
  if (processors.length === 0) throw new ReconcileRequestError('no payment processor is configured');
  const rows: ReconcileRow[] = [];
  for (const processor of processors) {
    const ledger = deps.ledgers[processor];
    if (!ledger) throw new ReconcileRequestError(`${processor} is not configured`);
    rows.push(...(await reconcileProcessor(deps.pool, ledger, from, to)));
  }
  const count = (outcome: ReconcileOutcome) => rows.filter((r) => r.outcome === outcome).length;
  return {
    date: from.toISOString().slice(0, 10),
    from: from.toISOString(),
    to: to.toISOString(),
    processors,
    rows,
    totals: {
      providerTransactions: rows.filter((r) => r.provider !== undefined).length,
      matched: count('matched'),
      mismatch: count('mismatch'),
      missingInDb: count('missing_in_db'),
      missingAtProvider: count('missing_at_provider'),
    },
  };
}

/** Any row that is not a match: what an operator must look at. */
export function hasDiscrepancies(report: ReconcileReport): boolean {
  return report.rows.some((r) => r.outcome !== 'matched');
}

// ---------------------------------------------------------------------------------------------------------------
// One processor
// ---------------------------------------------------------------------------------------------------------------

async function reconcileProcessor(
  pool: Pool,
  ledger: ProviderLedger,
  from: Date,
  to: Date,
): Promise<ReconcileRow[]> {
  const processor = ledger.processor;
  const listed = await ledger.listTransactions(from, to);
  const records = new OurRecords(pool, processor);
  const rows: ReconcileRow[] = [];

  // By reference first: payment_transactions rows whatever day they were written.
  const byReference = await records.transactionsByReference(listed.flatMap((t) => t.references));
  const unmatched: ProviderTransaction[] = [];
  for (const transaction of listed) {
    const ours = transaction.references
      .map((reference) => byReference.get(reference))
      .find((record) => record !== undefined && !records.isClaimed(record));
    if (ours) {
      records.claim(ours);
      rows.push(compared(transaction, ours));
    } else {
      unmatched.push(transaction);
    }
  }

  // Then through the invoice the transaction paid: our id in metadata, the processor's invoice, or a lookup.
  for (const transaction of unmatched) {
    const processorInvoiceId = transaction.processorInvoiceId ?? (await ledger.linkedInvoice?.(transaction));
    const invoice = await records.invoiceFor(transaction.ourInvoiceId, processorInvoiceId);
    if (!invoice) {
      rows.push({
        processor,
        outcome: 'missing_in_db',
        provider: providerSide(transaction),
        differences: [],
        note: 'no payment transaction or invoice of ours matches it',
      });
      continue;
    }
    const candidates = (await records.transactionsOfInvoice(invoice.id)).filter((r) => !records.isClaimed(r));
    const best =
      candidates.find((r) => differencesOf(transaction, r).length === 0) ??
      candidates.sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    if (best) {
      records.claim(best);
      rows.push(compared(transaction, best, `matched through invoice ${invoice.id}`));
    } else {
      rows.push(
        compared(
          transaction,
          invoice,
          `matched to invoice ${invoice.id}; no payment transaction of ours records it`,
        ),
      );
    }
  }

  // Our rows of the day the listing did not cover: created at the processor another day, or unknown to it.
  for (const ours of await records.transactionsOfDay(from, to)) {
    if (records.isClaimed(ours)) continue;
    const found = ours.reference ? await ledger.findByReference?.(ours.reference) : null;
    if (found) {
      rows.push(compared(found, ours, 'not in the day’s listing; found at the processor by reference'));
    } else {
      rows.push({
        processor,
        outcome: 'missing_at_provider',
        ours,
        differences: [],
        note:
          ledger.findByReference === undefined
            ? `no ${processor} transaction created that day matches it`
            : `${processor} does not know reference ${ours.reference}`,
      });
    }
  }
  return rows;
}

function compared(transaction: ProviderTransaction, ours: OurRecord, note?: string): ReconcileRow {
  const differences = differencesOf(transaction, ours);
  return {
    processor: transaction.processor,
    outcome: differences.length === 0 ? 'matched' : 'mismatch',
    provider: providerSide(transaction),
    ours,
    differences,
    ...(note ? { note } : {}),
  };
}

function providerSide(t: ProviderTransaction): ReconcileRow['provider'] {
  return {
    id: t.id,
    status: t.status,
    amountMinor: t.amountMinor,
    currency: t.currency,
    createdAt: t.createdAt,
  };
}

/** Amounts in minor units and currencies must be equal; statuses must agree on whether money moved. */
export function differencesOf(transaction: ProviderTransaction, ours: OurRecord): Difference[] {
  const differences: Difference[] = [];
  if (transaction.amountMinor !== ours.amountMinor) {
    differences.push({ field: 'amount', ours: ours.amountMinor, provider: transaction.amountMinor });
  }
  if (transaction.currency !== ours.currency) {
    differences.push({ field: 'currency', ours: ours.currency, provider: transaction.currency });
  }
  if (transaction.moneyState !== ourMoneyState(ours)) {
    differences.push({ field: 'status', ours: ours.status, provider: transaction.status });
  }
  // The runbook's "payment complete but not activated": the processor collected, our invoice still waits.
  if (
    ours.kind === 'transaction' &&
    transaction.moneyState === 'collected' &&
    ours.invoiceId !== null &&
    ours.invoiceStatus !== null &&
    ours.invoiceStatus !== 'paid'
  ) {
    differences.push({ field: 'invoice_status', ours: ours.invoiceStatus, provider: transaction.status });
  }
  return differences;
}

function ourMoneyState(ours: OurRecord): MoneyState {
  if (ours.kind === 'invoice') return ours.status === 'paid' ? 'collected' : 'not_collected';
  switch (ours.status) {
    case 'success':
      return 'collected';
    case 'refunded':
      return 'refunded';
    case 'partially_refunded':
      return 'partially_refunded';
    default:
      return 'not_collected';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Our records
// ---------------------------------------------------------------------------------------------------------------

interface TransactionRow {
  id: string;
  tenant_id: string;
  invoice_id: string | null;
  invoice_status: string | null;
  reference: string;
  status: string;
  amount_minor: number;
  currency: string;
  created_at: Date;
}

interface InvoiceRow {
  id: string;
  tenant_id: string;
  status: string;
  total_minor: number;
  currency: string;
  created_at: Date;
}

const TRANSACTION_COLUMNS = `t.id, t.tenant_id, t.invoice_id, i.status AS invoice_status, t.reference, t.status,
  t.amount_minor, t.currency, t.created_at
  FROM payment_transactions t LEFT JOIN invoices i ON i.id = t.invoice_id`;

/** Reads one processor's payment_transactions and invoices, and remembers which rows a provider transaction took. */
class OurRecords {
  private readonly claimed = new Set<string>();

  constructor(
    private readonly pool: Pool,
    private readonly processor: ReconcileProcessor,
  ) {}

  claim(record: OurRecord): void {
    this.claimed.add(record.id);
  }

  isClaimed(record: OurRecord): boolean {
    return this.claimed.has(record.id);
  }

  async transactionsByReference(references: string[]): Promise<Map<string, OurRecord>> {
    if (references.length === 0) return new Map();
    const { rows } = await this.pool.query<TransactionRow>(
      `SELECT ${TRANSACTION_COLUMNS} WHERE t.processor = $1 AND t.reference = ANY($2::text[])`,
      [this.processor, [...new Set(references)]],
    );
    return new Map(rows.map((row) => [row.reference, fromTransactionRow(row)]));
  }

  async transactionsOfInvoice(invoiceId: string): Promise<OurRecord[]> {
    const { rows } = await this.pool.query<TransactionRow>(
      `SELECT ${TRANSACTION_COLUMNS} WHERE t.processor = $1 AND t.invoice_id = $2`,
      [this.processor, invoiceId],
    );
    return rows.map(fromTransactionRow);
  }

  async transactionsOfDay(from: Date, to: Date): Promise<OurRecord[]> {
    const { rows } = await this.pool.query<TransactionRow>(
      `SELECT ${TRANSACTION_COLUMNS} WHERE t.processor = $1 AND t.created_at >= $2 AND t.created_at < $3
       ORDER BY t.created_at, t.id`,
      [this.processor, from, to],
    );
    return rows.map(fromTransactionRow);
  }

  /** Our invoice by our own id, else by the processor's invoice id. */
  async invoiceFor(ourInvoiceId?: string, processorInvoiceId?: string): Promise<OurRecord | undefined> {
    const columns = 'id, tenant_id, status, total_minor, currency, created_at FROM invoices';
    const lookups: [string, unknown[]][] = [];
    if (ourInvoiceId) lookups.push([`SELECT ${columns} WHERE id = $1`, [ourInvoiceId]]);
    if (processorInvoiceId) {
      lookups.push([
        `SELECT ${columns} WHERE processor = $1 AND processor_invoice_id = $2`,
        [this.processor, processorInvoiceId],
      ]);
    }
    for (const [sql, params] of lookups) {
      const { rows } = await this.pool.query<InvoiceRow>(sql, params);
      const row = rows[0];
      if (row) {
        return {
          kind: 'invoice',
          id: row.id,
          tenantId: row.tenant_id,
          invoiceId: row.id,
          invoiceStatus: row.status,
          status: row.status,
          amountMinor: row.total_minor,
          currency: row.currency,
          createdAt: row.created_at.toISOString(),
        };
      }
    }
    return undefined;
  }
}

function fromTransactionRow(row: TransactionRow): OurRecord {
  return {
    kind: 'transaction',
    id: row.id,
    reference: row.reference,
    tenantId: row.tenant_id,
    invoiceId: row.invoice_id,
    invoiceStatus: row.invoice_status,
    status: row.status,
    amountMinor: row.amount_minor,
    currency: row.currency,
    createdAt: row.created_at.toISOString(),
  };
}
