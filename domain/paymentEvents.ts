// What a verified payment webhook asks billops to do, in processor-neutral terms: the Stripe and Paystack parsers produce these.

import type { Processor } from './vocabulary';

export type WebhookProvider = Processor;

/** How an event names its tenant (DESIGN.md "Tenant identity"): metadata first, else the processor's customer. */
export interface TenantReference {
  /** metadata.tenant_id on the object, its subscription or its customer, in that order. */
  metadataTenantId?: string;
  /** Stripe customer id (cus_...) or Paystack customer code (CUS_...). */
  customerId?: string;
}

/** A failed charge or invoice as the processor reports it; amounts in minor units (cents, kobo). */
export interface FailedProcessorInvoice {
  /** Stripe invoice id, Paystack invoice code or charge reference: our invoices.processor_invoice_id. */
  processorInvoiceId: string;
  /** Our invoices.id when the charge carries it (billops' own Paystack retries put it in metadata). */
  ourInvoiceId?: string;
  /** The Paystack transaction reference, which our payment_transactions rows are keyed by. */
  transactionReference?: string;
  amountMinor: number;
  /** ISO 4217, upper case. */
  currency: string;
  periodStart: Date;
  periodEnd: Date;
  dueAt?: Date;
  hostedInvoiceUrl?: string;
}

export interface PaidProcessorInvoice {
  processorInvoiceId?: string;
  ourInvoiceId?: string;
  transactionReference?: string;
  paidAt: Date;
  /** What the customer sees as the payment's reference in the lifecycle's timeline. */
  reference: string;
  /**
   * What was paid, when the event says: `payment` is this one payment (a Paystack charge), `invoiceTotal` what the
   * processor's invoice has received in all (Stripe's amount_paid). Minor units; ISO 4217, upper case.
   */
  paid?: { amountMinor: number; currency: string; counts: 'payment' | 'invoiceTotal' };
}

export type WebhookIntent =
  | { kind: 'paymentFailed'; tenant: TenantReference; invoice: FailedProcessorInvoice }
  | { kind: 'paymentSucceeded'; tenant: TenantReference; invoice: PaidProcessorInvoice }
  /** Refunds, disputes and subscription changes: kept for the incident workflows that will own them. */
  | { kind: 'storeForIncident'; tenant: TenantReference; category: 'refund' | 'dispute' | 'subscription' }
  | { kind: 'ignore'; reason: string };

/** A verified event, ready to be stored under its deduplication key and acted on. */
export interface VerifiedEvent {
  provider: WebhookProvider;
  /** Unique per provider; a replayed delivery has the same key. */
  key: string;
  type: string;
  intent: WebhookIntent;
}

/** Why a verified delivery cannot be read as an event: answered 400 with this reason. */
export class MalformedEventError extends Error {
  override name = 'MalformedEventError';
}
