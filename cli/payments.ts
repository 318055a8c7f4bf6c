// `billops payments record`: a payment accepted by hand (seed 000 "Enable manual payment acceptance") is recorded with
// its audit row, applied to its invoice, and, when that invoice is now paid, reported to the tenant's dunning lifecycle.
import { parseArgs } from 'node:util';
import {
  MANUAL_PAYMENT_METHODS,
  ManualPaymentRefused,
  recordManualPayment,
  type ManualPayment,
} from '../db/manualPayments';
import { describeApplication } from '../db/paymentApplication';
import { formatMinorUnits, MoneyError, normalizeCurrency } from '../domain/money';
import { dunningWorkflowId, signalPaymentSucceeded } from '../temporal/dunning';
import {
  oneOf,
  operatorName,
  printJson,
  RefusedError,
  required,
  UsageError,
  withDatabase,
  withTemporal,
} from './common';

const DEFAULT_REASON = 'manual payment acceptance';

/** What the tenant's lifecycle was told: signalled, nothing to tell (partial, or no lifecycle), or not reachable. */
interface LifecycleReport {
  workflowId: string;
  signalled: boolean;
  detail: string;
  error?: string;
}

function amountFlag(value: string): number {
  const text = value.trim();
  const amount = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(amount) || amount <= 0) {
    throw new UsageError(
      `--amount must be a positive whole number of minor units, e.g. 4900 for USD 49.00 (got ${JSON.stringify(value)})`,
    );
  }
  return amount;
}

function currencyFlag(value: string): string {
  try {
    return normalizeCurrency(value);
  } catch (err) {
    if (err instanceof MoneyError) throw new UsageError(`--currency: ${err.message}`);
    throw err;
  }
}

/** `payments record --invoice ID --amount MINOR --currency C --method M --reference R [--operator O] [--reason TEXT]`. */
export async function paymentsRecord(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      invoice: { type: 'string' },
      amount: { type: 'string' },
      currency: { type: 'string' },
      method: { type: 'string' },
      reference: { type: 'string' },
      operator: { type: 'string' },
      reason: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const invoiceId = required(values.invoice, '--invoice ID').trim();
  const amountMinor = amountFlag(required(values.amount, '--amount MINOR'));
  const currency = currencyFlag(required(values.currency, '--currency C'));
  const method = oneOf(required(values.method, '--method M'), MANUAL_PAYMENT_METHODS, '--method')!;
  const reference = required(values.reference, '--reference R').trim();
  const operator = operatorName(values.operator);
  const reason = values.reason?.trim() || DEFAULT_REASON;

  const payment = await withDatabase(async (pool) => {
    try {
      return await recordManualPayment(pool, {
        invoiceId,
        amountMinor,
        currency,
        method,
        reference,
        operator,
        reason,
      });
    } catch (err) {
      if (err instanceof ManualPaymentRefused) throw new RefusedError(err.message);
      throw err;
    }
  });
  const lifecycle = await tellLifecycle(payment);

  if (values.json) {
    printJson({ ...payment, recordedAt: payment.recordedAt.toISOString(), lifecycle });
  } else {
    const money = `${formatMinorUnits(payment.amountMinor, payment.currency)} by ${payment.method}`;
    console.log(
      payment.recorded === 'new'
        ? `recorded ${money}, reference ${payment.reference}, for invoice ${payment.invoiceId} of tenant ` +
            `${payment.tenantId} (operator ${payment.operator})`
        : `already recorded: reference ${payment.reference}, ${money} for invoice ${payment.invoiceId} of tenant ` +
            `${payment.tenantId} (by ${payment.operator} at ${payment.recordedAt.toISOString()}); nothing recorded twice`,
    );
    console.log(describeApplication(payment.application));
    if (!lifecycle.error) console.log(lifecycle.detail);
  }
  if (lifecycle.error) {
    console.error(`billops: ${lifecycle.detail}`);
    return 1;
  }
  return 0;
}

/** A paid invoice is signalled to the tenant's lifecycle, which confirms it against the database before it recovers. */
async function tellLifecycle(payment: ManualPayment): Promise<LifecycleReport> {
  const workflowId = dunningWorkflowId(payment.tenantId);
  if (payment.application.applied !== 'paid') {
    return {
      workflowId,
      signalled: false,
      detail: `the invoice is not paid in full, so ${workflowId} was not signalled; it recovers when the rest is paid`,
    };
  }
  const { WorkflowNotFoundError } = await import('@temporalio/client');
  try {
    await withTemporal((client) =>
      signalPaymentSucceeded(client, payment.tenantId, {
        invoiceId: payment.invoiceId,
        reference: `manual ${payment.reference}`,
      }),
    );
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      return {
        workflowId,
        signalled: false,
        detail: `no running dunning lifecycle ${workflowId}: nothing to recover`,
      };
    }
    const error = err instanceof Error ? err.message : String(err);
    return {
      workflowId,
      signalled: false,
      error,
      detail:
        `could not signal paymentSucceeded to ${workflowId}: ${error}\n` +
        'the payment is recorded; re-run this same command once Temporal is reachable: it answers "already recorded" ' +
        `and signals the lifecycle again (until then ${workflowId} goes on as if unpaid)`,
    };
  }
  return {
    workflowId,
    signalled: true,
    detail:
      `signalled paymentSucceeded to ${workflowId}: it confirms the invoice is paid in the database and recovers ` +
      `when no invoice is outstanding (billops status ${workflowId})`,
  };
}
