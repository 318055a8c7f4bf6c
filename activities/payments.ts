// Payment activities of the dunning lifecycle: "Retry Payment" and "Manual Payment Link" through the tenant's processor, each idempotent under its key.
import { ApplicationFailure } from '@temporalio/activity';
import {
  describeApplication,
  findPayableInvoice,
  recordConfirmedPayment,
  storeHostedInvoiceUrl,
  type PayableInvoice,
} from '../db/payments';
import { activeProcessorRoute } from '../db/processorRoute';
import { formatMinorUnits } from '../domain/money';
import { createBackupRouting } from './backupProcessor';
import { describeQueued, queueWhileReadOnly } from './readOnlyGuard';
import {
  backupTakes,
  createPaymentSteps,
  notConfigured,
  paymentReference,
  type RetryInvoicePaymentRequest,
  type PaymentAttemptResult,
  type ConfirmInvoicePaidRequest,
  type InvoicePaidConfirmation,
  type PaymentLinkRequest,
  type PaymentLink,
  type PaymentActivityDependencies,
} from './paymentSteps';

export type { DeclineClassification, StripeGateway } from '../drivers/stripe';
export type { PaystackGateway } from '../drivers/paystack';
export type { PaymentGateways } from '../drivers/gateways';

export {
  type RetryInvoicePaymentRequest,
  type PaymentAttemptResult,
  type ConfirmInvoicePaidRequest,
  type InvoicePaidConfirmation,
  type PaymentLinkRequest,
  type PaymentLink,
  type PaymentActivityDependencies,
  PAYMENT_FAILURE_TYPES,
  paymentReference,
} from './paymentSteps';

export function createPaymentActivities(deps: PaymentActivityDependencies) {
  const steps = createPaymentSteps(deps);
  const {
    loadInvoice,
    openTransaction,
    settlePendingPaystack,
    settleRefusal,
    paidEarlier,
    alreadyPaid,
    chargeStripe,
    chargePaystack,
  } = steps;

  const { chargingProcessor, backupPaymentLink, retryThroughBackup } = createBackupRouting(deps, steps);

  return {
    /**
     * Whether a reported payment (the paymentSucceeded signal, from a webhook, an operator or another workflow) really
     * paid the invoice: the invoices row paid in full, else Paystack verifying the reference named or a pending
     * payment link. Never throws for an unknown invoice: an unconfirmed answer says why.
     */
    async confirmInvoicePaid(request: ConfirmInvoicePaidRequest): Promise<InvoicePaidConfirmation> {
      const found = await findPayableInvoice(deps.pool, request.tenantId, request.invoiceId);
      if (!('invoice' in found)) {
        return {
          confirmed: false,
          reason: `invoice ${request.invoiceId} of tenant ${request.tenantId} is not in the ${found.missing === 'tenant' ? 'tenants' : 'invoices'} table`,
        };
      }
      let invoice = found.invoice;
      const paidInFull = (i: PayableInvoice) => i.status === 'paid' || i.totalMinor - i.amountPaidMinor <= 0;
      if (paidInFull(invoice))
        return { confirmed: true, detail: `invoice ${invoice.invoiceId} is paid in the database` };
      const notes: string[] = [];
      if (invoice.paymentProcessor !== 'paystack' && deps.paystack && invoice.status !== 'void') {
        // A Paystack link the backup route handed out for another processor's invoice may be what paid it.
        invoice = (await settlePendingPaystack(deps.paystack, invoice)).invoice;
        if (paidInFull(invoice)) {
          return {
            confirmed: true,
            detail: `Paystack confirmed the payment of invoice ${invoice.invoiceId}`,
          };
        }
      }
      if (invoice.paymentProcessor === 'paystack' && deps.paystack && invoice.status !== 'void') {
        const reference = request.reference?.replace(/^Paystack\s+/, '').trim();
        if (reference) {
          const verified = await deps.paystack.verifyTransaction(reference);
          if (verified?.status === 'success') {
            const application = await recordConfirmedPayment(deps.pool, invoice, 'paystack', reference, {
              amountMinor: verified.amountMinor,
              currency: verified.currency,
              counts: 'payment',
              paidAt: verified.paidAt ?? new Date(),
              gatewayResponse: verified.gatewayResponse || 'verified with Paystack',
            });
            if (application.applied !== 'paid') notes.push(describeApplication(application));
          } else {
            notes.push(
              `Paystack ${verified ? `reports ${reference} as ${verified.status}` : `does not know ${reference}`}`,
            );
          }
        }
        invoice = (await settlePendingPaystack(deps.paystack, invoice)).invoice;
        if (paidInFull(invoice)) {
          return {
            confirmed: true,
            detail: `Paystack confirmed the payment of invoice ${invoice.invoiceId}`,
          };
        }
      }
      return {
        confirmed: false,
        reason:
          `invoice ${invoice.invoiceId} is ${invoice.status}, ${formatMinorUnits(invoice.amountPaidMinor, invoice.currency)} ` +
          `of ${formatMinorUnits(invoice.totalMinor, invoice.currency)} paid` +
          (notes.length > 0 ? `; ${notes.join('; ')}` : '') +
          ': record the payment (webhook replay or reconcile), then signal again',
      };
    },

    /** Runbook "Retry Payment": charge the amount due once under the key, and mark the invoice paid on success. */
    async retryInvoicePayment(request: RetryInvoicePaymentRequest): Promise<PaymentAttemptResult> {
      const invoice = await loadInvoice(request.tenantId, request.invoiceId);
      if (invoice.status === 'void') {
        throw ApplicationFailure.nonRetryable(
          `invoice ${invoice.invoiceId} is void: nothing to collect`,
          'InvoiceNotPayable',
        );
      }
      if (invoice.status === 'paid' || invoice.totalMinor - invoice.amountPaidMinor <= 0) {
        return alreadyPaid(invoice);
      }

      const processor = invoice.paymentProcessor;
      if (processor === 'none') {
        return {
          outcome: 'failed',
          reason: `no payment processor configured for tenant ${invoice.tenantId} (payment_processor is 'none')`,
        };
      }
      const reference = paymentReference(request.idempotencyKey);

      // Billing read-only (a billing system outage): the charge waits in the queue and is replayed under this key.
      const queued = await queueWhileReadOnly(deps.pool, {
        kind: 'payment',
        tenantId: request.tenantId,
        activity: 'retryInvoicePayment',
        request,
        idempotencyKey: request.idempotencyKey,
      });
      if (queued?.status === 'replayed' && queued.result) return queued.result as PaymentAttemptResult;
      if (queued) return { outcome: 'failed', reason: describeQueued(queued) };

      const { processor: charging, route } = await chargingProcessor(invoice, processor, reference);
      if (charging !== processor) return retryThroughBackup(request, invoice, processor, charging, route);

      if (processor === 'stripe') {
        if (!deps.stripe) return { outcome: 'failed', reason: notConfigured('stripe') };
        const processorInvoiceId = invoice.processor === 'stripe' ? invoice.processorInvoiceId : null;
        if (processorInvoiceId === null) {
          throw ApplicationFailure.nonRetryable(
            `invoice ${invoice.invoiceId} has no Stripe invoice to pay (processor ${invoice.processor}, ` +
              `processor_invoice_id ${invoice.processorInvoiceId ?? 'null'})`,
            'InvoiceNotPayable',
          );
        }
        if (deps.paystack) {
          // A Paystack link handed out while Stripe was routed there, and paid: Stripe is not charged as well.
          const settled = await settlePendingPaystack(deps.paystack, invoice, reference);
          if (settled.paidBy) return { outcome: 'succeeded', ...settled.paidBy };
        }
        const tx = await openTransaction(invoice, 'stripe', reference);
        if (tx.status === 'success') return paidEarlier(invoice, tx);
        return settleRefusal('stripe', tx, chargeStripe(deps.stripe, invoice, processorInvoiceId, tx));
      }

      if (!deps.paystack) return { outcome: 'failed', reason: notConfigured('paystack') };
      const authorizationCode = invoice.paystackAuthorizationCode;
      if (!authorizationCode) {
        return {
          outcome: 'failed',
          reason: `tenant ${invoice.tenantId} has no saved Paystack card (paystack_authorization_code); send a payment link`,
        };
      }
      // A customer who paid by the payment link is never charged again: its pending reference is verified first.
      const settled = await settlePendingPaystack(deps.paystack, invoice, reference);
      if (settled.paidBy) return { outcome: 'succeeded', ...settled.paidBy };
      if (
        settled.invoice.status === 'paid' ||
        settled.invoice.totalMinor - settled.invoice.amountPaidMinor <= 0
      ) {
        return alreadyPaid(settled.invoice);
      }
      const tx = await openTransaction(settled.invoice, 'paystack', reference);
      if (tx.status === 'success') return paidEarlier(settled.invoice, tx);
      return settleRefusal(
        'paystack',
        tx,
        chargePaystack(deps.paystack, settled.invoice, authorizationCode, tx, request.attempt),
      );
    },

    /** Runbook "Manual Payment Link": a page where the customer pays this invoice; the same key gives the same link. */
    async createPaymentLink(request: PaymentLinkRequest): Promise<PaymentLink> {
      const invoice = await loadInvoice(request.tenantId, request.invoiceId);
      const processor = invoice.paymentProcessor;
      const due = invoice.totalMinor - invoice.amountPaidMinor;

      // While the processor is routed to the backup, the customer pays there (when the backup takes the currency).
      const route =
        processor === 'none' ? null : await activeProcessorRoute(deps.pool, processor, invoice.tenantId);
      if (route && invoice.status !== 'paid' && invoice.status !== 'void' && due > 0 && deps[route.to]) {
        if (backupTakes(route.to, invoice.currency)) {
          const reference = paymentReference(request.idempotencyKey);
          return { url: await backupPaymentLink(invoice, route.to, reference) };
        }
      }

      if (
        processor === 'stripe' &&
        deps.stripe &&
        invoice.processor === 'stripe' &&
        invoice.processorInvoiceId
      ) {
        // Stripe's hosted page belongs to the invoice, not to the request: once known, it is reused.
        if (invoice.hostedInvoiceUrl) return { url: invoice.hostedInvoiceUrl };
        const url = await deps.stripe.hostedInvoiceUrl(invoice.processorInvoiceId);
        // A draft invoice has no hosted page yet; the billing portal still lets the customer pay.
        if (url === null) return { url: deps.billingPortalUrl };
        await storeHostedInvoiceUrl(deps.pool, invoice.invoiceId, url);
        return { url };
      }

      const amountDue = invoice.totalMinor - invoice.amountPaidMinor;
      if (processor !== 'paystack' || !deps.paystack || invoice.status === 'paid' || amountDue <= 0) {
        return { url: invoice.hostedInvoiceUrl ?? deps.billingPortalUrl };
      }

      // The pending row is Paystack's transaction for this link: the charge.success webhook finds it by reference.
      const reference = paymentReference(request.idempotencyKey);
      const tx = await openTransaction(invoice, 'paystack', reference);
      // An earlier run under this key got as far as storing its link: hand out the same one.
      if (!tx.created && invoice.hostedInvoiceUrl !== null) return { url: invoice.hostedInvoiceUrl };
      const initialized = await deps.paystack.initializeTransaction({
        email: invoice.billingEmail,
        amountMinor: tx.amountMinor,
        currency: tx.currency,
        reference,
        callbackUrl: deps.billingPortalUrl,
        metadata: { tenant_id: invoice.tenantId, invoice_id: invoice.invoiceId },
      });
      if (initialized.status === 'duplicate_reference') {
        // An earlier run initialized it but stopped before storing the URL, which Paystack cannot give again.
        return { url: invoice.hostedInvoiceUrl ?? deps.billingPortalUrl };
      }
      await storeHostedInvoiceUrl(deps.pool, invoice.invoiceId, initialized.authorizationUrl);
      return { url: initialized.authorizationUrl };
    },
  };
}

export type PaymentActivities = ReturnType<typeof createPaymentActivities>;
