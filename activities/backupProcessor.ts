// The backup processor of a payment-processor outage (operational override processor_route:<processor>): where a
// step's charge goes while the route holds, and charging or linking through the backup.
import type { PayableInvoice } from '../db/payments';
import {
  activeProcessorRoute,
  pendingBackupLink,
  processorHoldingReference,
  recordRefusedAttempt,
  storeBackupLink,
  stripeCustomerOf,
  type ProcessorRoute,
} from '../db/processorRoute';
import type { Processor } from '../domain/vocabulary';
import {
  BACKUP_CURRENCIES,
  backupTakes,
  createPaymentSteps,
  notConfigured,
  paymentReference,
  type RetryInvoicePaymentRequest,
  type PaymentAttemptResult,
  type PaymentActivityDependencies,
} from './paymentSteps';

/** The backup-processor steps of the payment activities, sharing their dependencies and payment steps. */
export function createBackupRouting(
  deps: PaymentActivityDependencies,
  steps: ReturnType<typeof createPaymentSteps>,
) {
  const {
    openTransaction,
    settlePendingPaystack,
    settleRefusal,
    paidEarlier,
    alreadyPaid,
    chargePaystack,
    chargeStripeCustomer,
  } = steps;
  // ---- The backup processor (operational override processor_route:<processor>, set by a processor outage) ----

  /**
   * Where this step's charge goes: the processor that already holds its reference with a charge that may have
   * collected (so one occurrence is never charged on two processors), else the backup while a route applies, else
   * the invoice's own processor.
   */
  async function chargingProcessor(
    invoice: PayableInvoice,
    primary: Processor,
    reference: string,
  ): Promise<{ processor: Processor; route: ProcessorRoute | null }> {
    const holder = await processorHoldingReference(deps.pool, invoice.invoiceId, reference);
    const route = await activeProcessorRoute(deps.pool, primary, invoice.tenantId);
    if (holder) return { processor: holder, route: holder === route?.to ? route : null };
    return route ? { processor: route.to, route } : { processor: primary, route: null };
  }

  const routedNote = (backup: Processor, primary: Processor, route: ProcessorRoute | null) =>
    `through ${backup}, the backup for ${primary}: ` +
    (route ? `${route.reason}${route.workflowId ? ` (${route.workflowId})` : ''}` : 'this step began there');

  /** The tenant's Stripe customer and its default payment method (invoice settings, else the default source). */
  async function stripePayer(tenantId: string) {
    const customerId = await stripeCustomerOf(deps.pool, tenantId);
    if (!customerId || !deps.stripe) return null;
    const customer = await deps.stripe.sdk.customers.retrieve(customerId);
    if (customer.deleted) return null;
    const method = customer.invoice_settings?.default_payment_method ?? customer.default_source;
    const paymentMethodId = typeof method === 'string' ? method : (method?.id ?? null);
    return paymentMethodId ? { customerId, paymentMethodId } : null;
  }

  /** A page where the customer pays this invoice on the backup (and leaves a payment method there); one per amount. */
  async function backupPaymentLink(
    invoice: PayableInvoice,
    backup: Processor,
    reference: string,
  ): Promise<string> {
    const amountDueMinor = invoice.totalMinor - invoice.amountPaidMinor;
    const given = await pendingBackupLink(deps.pool, backup, { ...invoice, amountDueMinor });
    if (given) return given;
    const metadata = { tenant_id: invoice.tenantId, invoice_id: invoice.invoiceId };
    if (backup === 'paystack' && deps.paystack) {
      // The pending row is the link's transaction: charge.success (or a later verify) finds the invoice by it.
      const tx = await openTransaction(invoice, 'paystack', reference);
      const initialized = await deps.paystack.initializeTransaction({
        email: invoice.billingEmail,
        amountMinor: tx.amountMinor,
        currency: tx.currency,
        reference,
        callbackUrl: deps.billingPortalUrl,
        metadata,
      });
      if (initialized.status === 'duplicate_reference') return deps.billingPortalUrl;
      await storeBackupLink(deps.pool, 'paystack', reference, initialized.authorizationUrl);
      return initialized.authorizationUrl;
    }
    if (backup === 'stripe' && deps.stripe) {
      const customer = await stripeCustomerOf(deps.pool, invoice.tenantId);
      // A Checkout page for the amount due that keeps the card for later charges; the key gives the same page.
      const session = await deps.stripe.sdk.checkout.sessions.create(
        {
          mode: 'payment',
          ...(customer ? { customer } : { customer_email: invoice.billingEmail }),
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: invoice.currency.toLowerCase(),
                unit_amount: amountDueMinor,
                product_data: { name: `Invoice ${invoice.invoiceId}` },
              },
            },
          ],
          payment_intent_data: { setup_future_usage: 'off_session', metadata },
          metadata,
          success_url: deps.billingPortalUrl,
        },
        { idempotencyKey: reference },
      );
      if (session.url) return session.url;
    }
    return deps.billingPortalUrl;
  }

  /** "Retry Payment" through the backup: its payment method when the tenant has one there, else the reason and a link. */
  async function retryThroughBackup(
    request: RetryInvoicePaymentRequest,
    invoice: PayableInvoice,
    primary: Processor,
    backup: Processor,
    route: ProcessorRoute | null,
  ): Promise<PaymentAttemptResult> {
    const reference = paymentReference(request.idempotencyKey);
    const note = routedNote(backup, primary, route);
    const refuse = async (reason: string, code: string): Promise<PaymentAttemptResult> => {
      await recordRefusedAttempt(deps.pool, invoice, backup, reference, reason, code);
      return { outcome: 'failed', reason, reference };
    };
    const takes = BACKUP_CURRENCIES[backup];
    if (!backupTakes(backup, invoice.currency)) {
      return refuse(
        `${backup} (the backup for ${primary}) does not take ${invoice.currency} (it takes ${[...(takes ?? [])].join(', ')}): ` +
          `the payment waits for ${primary} to recover, or is accepted by hand`,
        'currency_not_supported',
      );
    }
    const why = route ? `${primary} is routed there: ${route.reason}` : `this step began there`;
    const linkReference = paymentReference(`${request.idempotencyKey}/payment-link`);

    if (backup === 'paystack') {
      if (!deps.paystack) return { outcome: 'failed', reason: `${notConfigured('paystack')} (${note})` };
      // A link the customer paid on Paystack settles the invoice before anything is charged.
      const settled = await settlePendingPaystack(deps.paystack, invoice, reference);
      if (settled.paidBy) return { outcome: 'succeeded', ...settled.paidBy };
      if (
        settled.invoice.status === 'paid' ||
        settled.invoice.totalMinor - settled.invoice.amountPaidMinor <= 0
      ) {
        return alreadyPaid(settled.invoice);
      }
      const code = settled.invoice.paystackAuthorizationCode;
      if (!code) {
        const url = await backupPaymentLink(settled.invoice, 'paystack', linkReference);
        return refuse(
          `no payment method on paystack (${why}): tenant ${invoice.tenantId} has no saved Paystack card ` +
            `(paystack_authorization_code); the customer can pay and save one at ${url}`,
          'no_payment_method',
        );
      }
      const tx = await openTransaction(settled.invoice, 'paystack', reference);
      if (tx.status === 'success') return paidEarlier(settled.invoice, tx);
      return settleRefusal(
        'paystack',
        tx,
        chargePaystack(deps.paystack, settled.invoice, code, tx, request.attempt, note),
      );
    }

    if (!deps.stripe) return { outcome: 'failed', reason: `${notConfigured('stripe')} (${note})` };
    const payer = await stripePayer(invoice.tenantId);
    if (!payer) {
      const url = await backupPaymentLink(invoice, 'stripe', linkReference);
      return refuse(
        `no payment method on stripe (${why}): tenant ${invoice.tenantId} has no Stripe customer with a default ` +
          `payment method (stripe_customer_id, invoice_settings.default_payment_method); the customer can pay at ${url}`,
        'no_payment_method',
      );
    }
    const tx = await openTransaction(invoice, 'stripe', reference);
    if (tx.status === 'success') return paidEarlier(invoice, tx);
    return settleRefusal('stripe', tx, chargeStripeCustomer(deps.stripe, invoice, payer, tx, note));
  }

  return { chargingProcessor, backupPaymentLink, retryThroughBackup };
}
