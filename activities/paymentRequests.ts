// What the payment activities are asked and answer: requests, results, failure names, the processor's reference of
// a step's key, and the currencies a backup processor takes.
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { ChargingProcessor, OpenTransaction } from '../db/payments';
import type { PaymentGateways } from '../drivers/gateways';
import type { DeclineClassification } from '../drivers/stripe';

export interface RetryInvoicePaymentRequest {
  /** Workflow id + step: the same key is the same charge, however often the activity runs. */
  idempotencyKey: string;
  tenantId: string;
  /** Our invoices.id. */
  invoiceId: string;
  /** 1-based retry number in the runbook schedule (0 h, 6 h, 24 h, 48 h); sent to Paystack as metadata. */
  attempt: number;
}

export type PaymentAttemptResult =
  | { outcome: 'succeeded'; reference: string; amountMinor: number; currency: string }
  | { outcome: 'failed'; reason: string; reference?: string }
  | { outcome: 'hard_declined'; reason: string; declineCode: string; reference?: string };

export interface ConfirmInvoicePaidRequest {
  tenantId: string;
  invoiceId: string;
  /** The reference the signal named (a Paystack transaction reference is verified with Paystack). */
  reference?: string;
}

/** Whether the database or the provider shows the invoice paid in full; if not, why not. */
export type InvoicePaidConfirmation =
  | { confirmed: true; detail: string }
  | { confirmed: false; reason: string };

export interface PaymentLinkRequest {
  tenantId: string;
  invoiceId: string;
  idempotencyKey: string;
}

export interface PaymentLink {
  url: string;
}

export interface PaymentActivityDependencies extends PaymentGateways {
  pool: Pool;
  /** Where a customer pays when no processor can give a link (BILLOPS_BILLING_PORTAL_URL). */
  billingPortalUrl: string;
}

/** ApplicationFailure types these activities throw; the workflow branches on them. */
export const PAYMENT_FAILURE_TYPES = {
  /** Non-retryable: the tenant or invoice is not in the database. */
  invoiceUnknown: 'InvoiceUnknown',
  /** Non-retryable: the invoice is void, or has no processor invoice to pay. */
  invoiceNotPayable: 'InvoiceNotPayable',
  /** Non-retryable: the processor refused our secret key. */
  processorAuthFailed: 'ProcessorAuthFailed',
  /** Non-retryable: the processor refused the request itself. */
  processorRejected: 'ProcessorRejected',
  /** Non-retryable: the processor reports a different amount or currency for our reference. */
  processorAmountMismatch: 'ProcessorAmountMismatch',
  /** Non-retryable: the idempotency key was already used for another invoice. */
  idempotencyConflict: 'IdempotencyConflict',
  /** Non-retryable: an empty idempotency key. */
  invalidRequest: 'InvalidRequest',
  /** Non-retryable: an amount that is not a positive integer in minor units reached the Paystack gateway. */
  invalidAmount: 'InvalidAmount',
  /** Retryable: network, 5xx or 429; the retry reuses the key, so nothing is charged twice. */
  processorUnavailable: 'ProcessorUnavailable',
  /** Retryable: the processor answered with something we could not read. */
  processorResponseInvalid: 'ProcessorResponseInvalid',
  /** Retryable: the charge is still in flight at the processor; the retry verifies it. */
  paymentPending: 'PaymentPending',
} as const;

/**
 * The processor reference for an idempotency key: readable (the runbook looks transactions up by reference),
 * within Paystack's alphabet (letters, digits, '-', '.', '='), and unique through a digest of the whole key.
 */
export function paymentReference(idempotencyKey: string): string {
  if (idempotencyKey.trim() === '') {
    throw ApplicationFailure.nonRetryable('idempotencyKey must not be empty', 'InvalidRequest');
  }
  const readable = idempotencyKey
    .replace(/[^A-Za-z0-9.=-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48);
  const digest = createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 16);
  return `${readable || 'billops'}-${digest}`;
}

/**
 * The currencies a processor takes when it stands in as the backup; null: it refuses what it does not take itself
 * (Stripe settles in the account's enabled currencies, and its refusal is recorded). Paystack: its merchant currencies.
 */
export const BACKUP_CURRENCIES: Readonly<Record<ChargingProcessor, ReadonlySet<string> | null>> = {
  paystack: new Set(['NGN', 'GHS', 'ZAR', 'KES', 'USD', 'XOF', 'EGP']),
  stripe: null,
};

export function backupTakes(processor: ChargingProcessor, currency: string): boolean {
  return BACKUP_CURRENCIES[processor]?.has(currency) ?? true;
}

export function notConfigured(processor: ChargingProcessor): string {
  return processor === 'stripe'
    ? 'no stripe processor configured (set STRIPE_SECRET_KEY)'
    : 'no paystack processor configured (set PAYSTACK_SECRET_KEY)';
}

/** The attempt's own transaction, as collected. */
export function succeeded(tx: OpenTransaction): PaymentAttemptResult {
  return {
    outcome: 'succeeded',
    reference: tx.reference,
    amountMinor: tx.amountMinor,
    currency: tx.currency,
  };
}

export function declineResult(
  processorName: string,
  decline: DeclineClassification,
  detail: string,
  reference: string,
): PaymentAttemptResult {
  const reason = `${processorName} declined the charge (${decline.declineCode}): ${detail || 'no reason given'}`;
  return decline.kind === 'hard'
    ? { outcome: 'hard_declined', reason, declineCode: decline.declineCode, reference }
    : { outcome: 'failed', reason, reference };
}

/** The payment steps over the activities' dependencies; each activity in activities/payments.ts is a few of them. */
