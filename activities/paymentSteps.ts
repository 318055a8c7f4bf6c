// The steps the payment activities are made of: load the invoice, open its transaction, charge Stripe or Paystack,
// record the outcome; and the types and failure names the activities answer with.
import { ApplicationFailure } from '@temporalio/activity';
import {
  describeApplication,
  findPayableInvoice,
  latestPaymentReference,
  markInvoicePaid,
  notePendingPayment,
  openPaymentTransaction,
  pendingReferences,
  recordConfirmedPayment,
  recordPaymentFailure,
  recordPaymentSuccess,
  type ChargingProcessor,
  type OpenTransaction,
  type PayableInvoice,
} from '../db/payments';
import type { PaystackGateway } from '../drivers/paystack';
import {
  declineResult,
  PAYMENT_FAILURE_TYPES,
  succeeded,
  type PaymentActivityDependencies,
  type PaymentAttemptResult,
} from './paymentRequests';
import { interpretStripeError, stripeFailure, type StripeGateway } from '../drivers/stripe';

export * from './paymentRequests';

export function createPaymentSteps(deps: PaymentActivityDependencies) {
  /** The invoice to collect; a missing tenant or invoice is a failure no retry fixes. */
  async function loadInvoice(tenantId: string, invoiceId: string): Promise<PayableInvoice> {
    const found = await findPayableInvoice(deps.pool, tenantId, invoiceId);
    if ('invoice' in found) return found.invoice;
    throw ApplicationFailure.nonRetryable(
      found.missing === 'tenant'
        ? `tenant ${tenantId} is not in the tenants table`
        : `invoice ${invoiceId} of tenant ${tenantId} is not in the invoices table`,
      'InvoiceUnknown',
    );
  }

  async function openTransaction(
    invoice: PayableInvoice,
    processor: ChargingProcessor,
    reference: string,
  ): Promise<OpenTransaction> {
    const opened = await openPaymentTransaction(deps.pool, invoice, processor, reference);
    if ('transaction' in opened) return opened.transaction;
    throw ApplicationFailure.nonRetryable(
      `reference ${reference} already belongs to invoice ${opened.conflictingInvoiceId ?? '(none)'}, not ${invoice.invoiceId}: ` +
        'an idempotency key was reused for another invoice',
      'IdempotencyConflict',
    );
  }

  async function recordSuccess(
    invoice: PayableInvoice,
    processor: ChargingProcessor,
    tx: OpenTransaction,
    response: string,
    paidAt: Date,
    byAmount = processor === 'paystack',
  ): Promise<PaymentAttemptResult> {
    // Stripe paying its own invoice pays all of it; any other charge is applied for the amount it took.
    const amount = byAmount ? { amountMinor: tx.amountMinor, currency: tx.currency } : undefined;
    const application = await recordPaymentSuccess(
      deps.pool,
      processor,
      tx.reference,
      invoice.invoiceId,
      response,
      paidAt,
      amount,
    );
    if (application.applied !== 'paid') {
      return { outcome: 'failed', reason: describeApplication(application), reference: tx.reference };
    }
    return succeeded(tx);
  }

  /**
   * The invoice's pending Paystack references other than `except` (payment links handed out) verified with Paystack:
   * one the customer paid is recorded and applied. The invoice as it stands afterwards, and the reference that paid it.
   */
  async function settlePendingPaystack(
    paystack: PaystackGateway,
    invoice: PayableInvoice,
    except?: string,
  ): Promise<{
    invoice: PayableInvoice;
    paidBy?: { reference: string; amountMinor: number; currency: string };
  }> {
    let paidBy: { reference: string; amountMinor: number; currency: string } | undefined;
    for (const pending of await pendingReferences(deps.pool, 'paystack', invoice.invoiceId)) {
      if (pending.reference === except) continue;
      const verified = await paystack.verifyTransaction(pending.reference);
      if (verified?.status !== 'success') continue;
      const application = await recordConfirmedPayment(deps.pool, invoice, 'paystack', pending.reference, {
        amountMinor: verified.amountMinor,
        currency: verified.currency,
        counts: 'payment',
        paidAt: verified.paidAt ?? new Date(),
        gatewayResponse: verified.gatewayResponse || 'verified with Paystack',
      });
      if (application.applied === 'paid') {
        paidBy = {
          reference: pending.reference,
          amountMinor: verified.amountMinor,
          currency: verified.currency,
        };
      }
    }
    return { invoice: await loadInvoice(invoice.tenantId, invoice.invoiceId), paidBy };
  }

  /**
   * A processor that refused the key or the request charged nothing and will not be asked again under this key:
   * the row says failed, with the failure type as its code. Retryable failures leave it pending for the retry.
   */
  async function settleRefusal(
    processor: ChargingProcessor,
    tx: OpenTransaction,
    attempt: Promise<PaymentAttemptResult>,
  ): Promise<PaymentAttemptResult> {
    try {
      return await attempt;
    } catch (error) {
      if (
        error instanceof ApplicationFailure &&
        (error.type === PAYMENT_FAILURE_TYPES.processorAuthFailed ||
          error.type === PAYMENT_FAILURE_TYPES.processorRejected)
      ) {
        await recordPaymentFailure(deps.pool, processor, tx.reference, error.message, error.type);
      }
      throw error;
    }
  }

  /** An earlier run under this key collected: its row stands as written, the invoice is (re)marked paid. */
  async function paidEarlier(invoice: PayableInvoice, tx: OpenTransaction): Promise<PaymentAttemptResult> {
    await markInvoicePaid(deps.pool, invoice.invoiceId, new Date());
    return succeeded(tx);
  }

  async function alreadyPaid(invoice: PayableInvoice): Promise<PaymentAttemptResult> {
    if (invoice.status !== 'paid') await markInvoicePaid(deps.pool, invoice.invoiceId, new Date());
    const latest = await latestPaymentReference(deps.pool, invoice.invoiceId);
    return {
      outcome: 'succeeded',
      reference: latest ?? invoice.processorInvoiceId ?? invoice.invoiceId,
      // Paid in full: amount_paid_minor never exceeds total_minor, and a paid invoice settled all of it.
      amountMinor: invoice.totalMinor,
      currency: invoice.currency,
    };
  }

  async function chargeStripe(
    stripe: StripeGateway,
    invoice: PayableInvoice,
    processorInvoiceId: string,
    tx: OpenTransaction,
  ): Promise<PaymentAttemptResult> {
    const payment = await stripe.payInvoice(processorInvoiceId, tx.reference);
    if (payment.status === 'paid') {
      const response = `Stripe invoice ${payment.processorInvoiceId} paid (Stripe reports status ${payment.invoiceStatus ?? 'none'})`;
      return recordSuccess(invoice, 'stripe', tx, response, new Date());
    }
    await recordPaymentFailure(
      deps.pool,
      'stripe',
      tx.reference,
      payment.message,
      payment.decline.declineCode,
    );
    return declineResult('Stripe', payment.decline, payment.message, tx.reference);
  }

  async function chargePaystack(
    paystack: PaystackGateway,
    invoice: PayableInvoice,
    authorizationCode: string,
    tx: OpenTransaction,
    attempt: number,
    /** Why the charge went to Paystack when the invoice is another processor's; kept with the processor's answer. */
    routedNote?: string,
  ): Promise<PaymentAttemptResult> {
    const noted = (response: string) => (routedNote ? `${response} (${routedNote})` : response);
    const charge = await paystack.chargeAuthorization({
      authorizationCode,
      email: invoice.billingEmail,
      amountMinor: tx.amountMinor,
      currency: tx.currency,
      reference: tx.reference,
      metadata: { tenant_id: invoice.tenantId, invoice_id: invoice.invoiceId, attempt },
    });
    switch (charge.status) {
      case 'success':
        if (charge.amountMinor !== tx.amountMinor || charge.currency !== tx.currency) {
          throw ApplicationFailure.nonRetryable(
            `Paystack reports ${charge.amountMinor} ${charge.currency} for ${tx.reference}, ` +
              `but ${tx.amountMinor} ${tx.currency} was charged under it: reconcile by hand`,
            'ProcessorAmountMismatch',
          );
        }
        return recordSuccess(
          invoice,
          'paystack',
          tx,
          noted(charge.gatewayResponse),
          charge.paidAt ?? new Date(),
        );
      case 'failed':
        await recordPaymentFailure(
          deps.pool,
          'paystack',
          tx.reference,
          noted(charge.gatewayResponse),
          charge.decline.declineCode,
        );
        return declineResult('Paystack', charge.decline, charge.gatewayResponse, tx.reference);
      case 'pending':
        await notePendingPayment(
          deps.pool,
          'paystack',
          tx.reference,
          charge.gatewayResponse || charge.paystackStatus,
        );
        // The retry sends the same reference, meets "Duplicate Transaction Reference" and verifies it.
        throw ApplicationFailure.retryable(
          `Paystack charge ${tx.reference} is ${charge.paystackStatus}; verifying again on retry`,
          'PaymentPending',
        );
    }
  }

  /**
   * The backup charge of an invoice that is not Stripe's: a PaymentIntent for the amount due on the customer's default
   * payment method, off session, under the reference as Idempotency-Key; Stripe's answers sorted as for an invoice.
   */
  async function chargeStripeCustomer(
    stripe: StripeGateway,
    invoice: PayableInvoice,
    payer: { customerId: string; paymentMethodId: string },
    tx: OpenTransaction,
    routedNote: string,
  ): Promise<PaymentAttemptResult> {
    let intent: Awaited<ReturnType<StripeGateway['sdk']['paymentIntents']['create']>>;
    try {
      intent = await stripe.sdk.paymentIntents.create(
        {
          amount: tx.amountMinor,
          currency: tx.currency.toLowerCase(),
          customer: payer.customerId,
          payment_method: payer.paymentMethodId,
          off_session: true,
          confirm: true,
          metadata: { tenant_id: invoice.tenantId, invoice_id: invoice.invoiceId, reference: tx.reference },
        },
        { idempotencyKey: tx.reference },
      );
    } catch (error) {
      if (!(error instanceof stripe.sdk.errors.StripeError)) throw error;
      const meaning = interpretStripeError(error);
      if (meaning.kind !== 'declined') throw stripeFailure(meaning);
      const response = `${meaning.message} (${routedNote})`;
      await recordPaymentFailure(deps.pool, 'stripe', tx.reference, response, meaning.decline.declineCode);
      return declineResult('Stripe', meaning.decline, meaning.message, tx.reference);
    }
    const response = `Stripe PaymentIntent ${intent.id} ${intent.status} (${routedNote})`;
    if (intent.status === 'succeeded') {
      if (intent.amount !== tx.amountMinor || intent.currency.toUpperCase() !== tx.currency) {
        throw ApplicationFailure.nonRetryable(
          `Stripe reports ${intent.amount} ${intent.currency} for ${tx.reference}, ` +
            `but ${tx.amountMinor} ${tx.currency} was charged under it: reconcile by hand`,
          'ProcessorAmountMismatch',
        );
      }
      return recordSuccess(invoice, 'stripe', tx, response, new Date(), true);
    }
    if (intent.status === 'processing') {
      await notePendingPayment(deps.pool, 'stripe', tx.reference, response);
      throw ApplicationFailure.retryable(
        `Stripe PaymentIntent ${intent.id} is processing; verifying again on retry`,
        'PaymentPending',
      );
    }
    // requires_action or requires_payment_method: only the customer, on session, can complete it.
    await recordPaymentFailure(deps.pool, 'stripe', tx.reference, response, 'authentication_required');
    return declineResult(
      'Stripe',
      { kind: 'hard', declineCode: 'authentication_required' },
      `PaymentIntent ${intent.id} is ${intent.status}`,
      tx.reference,
    );
  }

  return {
    loadInvoice,
    openTransaction,
    recordSuccess,
    chargeStripeCustomer,
    settlePendingPaystack,
    settleRefusal,
    paidEarlier,
    alreadyPaid,
    chargeStripe,
    chargePaystack,
  };
}
