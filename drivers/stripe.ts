// The Stripe side of "Retry Payment" and "Manual Payment Link": pay an invoice under an idempotency key, read its hosted page, and sort Stripe's errors into declines, retries and configuration faults.
import { ApplicationFailure } from '@temporalio/activity';
import Stripe from 'stripe';

/** Whether a declined card is worth retrying on the runbook schedule (0 h, 6 h, 24 h, 48 h). */
export interface DeclineClassification {
  /** hard: the issuer will not approve this card until the customer acts; soft: a later retry may succeed. */
  kind: 'hard' | 'soft';
  /** Stripe's decline_code vocabulary (Paystack's gateway responses are mapped onto it too). */
  declineCode: string;
}

/**
 * Decline codes that end automatic retries: the card is gone, blocked or unusable for this charge, so another
 * attempt cannot collect and card networks fine repeated attempts (Visa's "issuer will never approve" category).
 * The customer has to act: a new card, a call to the bank, or paying through the payment link.
 */
export const STRIPE_HARD_DECLINE_CODES: ReadonlySet<string> = new Set([
  // Lost, stolen or withdrawn cards: Visa category 1, never reattempt.
  'lost_card',
  'stolen_card',
  'pickup_card',
  'fraudulent',
  'merchant_blacklist',
  'stop_payment_order',
  'revocation_of_authorization',
  'revocation_of_all_authorizations',
  'do_not_try_again',
  'security_violation',
  // The account or card number no longer exists, or its details on file are stale.
  'invalid_account',
  'incorrect_number',
  'invalid_number',
  'expired_card',
  'invalid_expiry_month',
  'invalid_expiry_year',
  'new_account_information_available',
  // This card can never pay this charge: wrong card type, currency or a restriction only the issuer can lift.
  'card_not_supported',
  'currency_not_supported',
  'restricted_card',
  'transaction_not_allowed',
  'not_permitted',
  'service_not_allowed',
  // Off-session charges keep failing until the customer authenticates on-session (the payment link).
  'authentication_required',
]);

/**
 * Decline codes a later retry may clear: money, limits, or an issuer that declined without a lasting reason.
 * do_not_honor is here on purpose: it is the issuer's generic refusal (Visa category 4, reattempts allowed) and
 * often a temporary risk block. Codes in neither list are treated as soft: ending retries needs a positive reason.
 */
export const STRIPE_SOFT_DECLINE_CODES: ReadonlySet<string> = new Set([
  'insufficient_funds',
  'generic_decline',
  'do_not_honor',
  'call_issuer',
  'card_velocity_exceeded',
  'withdrawal_count_limit_exceeded',
  'try_again_later',
  'issuer_not_available',
  'processing_error',
  'reenter_transaction',
  'approve_with_id',
  'no_action_taken',
  'duplicate_transaction',
  'incorrect_cvc',
  'invalid_cvc',
  'incorrect_zip',
  'incorrect_pin',
  'invalid_pin',
  'pin_try_exceeded',
  'offline_pin_required',
  'online_or_offline_pin_required',
  'invalid_amount',
  'testmode_decline',
  'card_declined',
]);

/** Classifies a Stripe card error by its decline_code, falling back to its code (e.g. 'expired_card'). */
export function classifyStripeDecline(
  code: string | undefined,
  declineCode: string | undefined,
): DeclineClassification {
  const effective = (declineCode ?? code ?? 'card_declined').trim().toLowerCase() || 'card_declined';
  return { kind: STRIPE_HARD_DECLINE_CODES.has(effective) ? 'hard' : 'soft', declineCode: effective };
}

/** What a Stripe error means for a payment attempt. */
export type StripeErrorMeaning =
  | { kind: 'declined'; decline: DeclineClassification; message: string }
  /** Stripe could not be reached, or answered 5xx, 409 or 429: the same idempotency key is safe to send again. */
  | { kind: 'retryable'; message: string }
  /** 401 or 403: the secret key is wrong, revoked or lacks permission; no retry fixes it. */
  | { kind: 'auth'; message: string }
  /** A 4xx about the request itself (for example the invoice cannot be paid): no retry fixes it. */
  | { kind: 'rejected'; message: string; code?: string };

/**
 * Sorts an error from a Stripe API call; messages never carry the secret key (Stripe's own 401 text shows part of it).
 * Other errors (the SDK refusing its arguments, say) are ours to fix, not an outage, so callers rethrow them as they are.
 */
export function interpretStripeError(error: Stripe.errors.StripeError): StripeErrorMeaning {
  if (error.code === 'invoice_payment_intent_requires_action') {
    // The bank wants 3-D Secure: only the customer, on the hosted invoice page, can complete it. Checked before
    // the card-error branch: stripe 23 (unlike 19, which went by the error type) makes every HTTP 402 a StripeCardError.
    return {
      kind: 'declined',
      decline: { kind: 'hard', declineCode: 'authentication_required' },
      message: error.message,
    };
  }
  if (error instanceof Stripe.errors.StripeCardError) {
    return {
      kind: 'declined',
      decline: classifyStripeDecline(error.code, error.decline_code),
      message: error.message,
    };
  }
  if (
    error instanceof Stripe.errors.StripeAuthenticationError ||
    error instanceof Stripe.errors.StripePermissionError
  ) {
    return {
      kind: 'auth',
      message:
        `Stripe refused the API key (HTTP ${error.statusCode ?? 401}): check STRIPE_SECRET_KEY ` +
        '(a secret key sk_... of the right account and mode, with permission to read and pay invoices)',
    };
  }
  const status = error.statusCode;
  if (
    error instanceof Stripe.errors.StripeConnectionError ||
    error instanceof Stripe.errors.StripeRateLimitError ||
    error instanceof Stripe.errors.StripeAPIError ||
    status === undefined ||
    status === 409 ||
    status === 429 ||
    status >= 500
  ) {
    return {
      kind: 'retryable',
      message: `Stripe is unavailable (${error.type}, HTTP ${status ?? 'none'}): ${error.message}`,
    };
  }
  return {
    kind: 'rejected',
    message: `Stripe rejected the request (HTTP ${status}): ${error.message}`,
    code: error.code,
  };
}

/** Turns a non-decline meaning into the failure Temporal acts on: retry, or stop with a type the workflow branches on. */
export function stripeFailure(
  meaning: Exclude<StripeErrorMeaning, { kind: 'declined' }>,
): ApplicationFailure {
  switch (meaning.kind) {
    case 'retryable':
      return ApplicationFailure.retryable(meaning.message, 'ProcessorUnavailable');
    case 'auth':
      return ApplicationFailure.nonRetryable(meaning.message, 'ProcessorAuthFailed');
    case 'rejected':
      return meaning.code === undefined
        ? ApplicationFailure.nonRetryable(meaning.message, 'ProcessorRejected')
        : ApplicationFailure.nonRetryable(meaning.message, 'ProcessorRejected', { code: meaning.code });
  }
}

export type StripeInvoicePayment =
  | { status: 'paid'; processorInvoiceId: string; invoiceStatus: string | null }
  | { status: 'declined'; decline: DeclineClassification; message: string };

export interface StripeGateway {
  /** `invoices.pay` under the Idempotency-Key; a decline is a result, anything else that fails throws. */
  payInvoice(processorInvoiceId: string, idempotencyKey: string): Promise<StripeInvoicePayment>;
  /** The invoice's hosted payment page; null while the invoice is a draft (Stripe gives finalized invoices one). */
  hostedInvoiceUrl(processorInvoiceId: string): Promise<string | null>;
  /** The configured SDK client (key, API base, no SDK retries) for every other call: refunds, credit notes, lists. */
  readonly sdk: Stripe;
}

export interface StripeGatewayOptions {
  secretKey: string;
  /** STRIPE_API_BASE, e.g. http://127.0.0.1:12111 for stripe-mock; unset means api.stripe.com. */
  apiBase?: string;
  /** Per request; Temporal's activity timeout bounds the whole attempt. */
  timeoutMs?: number;
  /** Called before each request (the SDK's request event); tests use it to see the Idempotency-Key. */
  onRequest?: (event: Stripe.RequestEvent) => void;
}

/** host/port/protocol for the SDK from a base URL; the SDK cannot take a path prefix, so one is refused. */
export function stripeHostOptions(apiBase: string): {
  host: string;
  port: number;
  protocol: Stripe.HttpProtocol;
} {
  const url = new URL(apiBase);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`STRIPE_API_BASE must be an http:// or https:// URL, got protocol ${url.protocol}`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new Error(
      `STRIPE_API_BASE must not have a path (the Stripe SDK adds /v1/...), got ${url.pathname}`,
    );
  }
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  const port = url.port === '' ? (protocol === 'http' ? 80 : 443) : Number(url.port);
  return { host: url.hostname, port, protocol };
}

/**
 * The Stripe API version billops speaks, sent on every request rather than left to the SDK's default (stripe 23.2
 * pins 2026-11-18.endive) or the account's. It is the version of the OpenAPI spec and fixtures in stripe-mock
 * v0.197.0 (scripts/provision.sh), so the tests exercise the shapes billops asks for, and the version billops
 * spoke before (stripe 19's default). The SDK's option is typed as its own pinned version only, hence the cast.
 * Move it together with stripe-mock's spec (docs/configuration.md, "Payment processors").
 */
export const STRIPE_API_VERSION = '2025-09-30.clover';

export function createStripeGateway(options: StripeGatewayOptions): StripeGateway {
  const stripe = new Stripe(options.secretKey, {
    apiVersion: STRIPE_API_VERSION as Stripe.LatestApiVersion,
    ...(options.apiBase ? stripeHostOptions(options.apiBase) : {}),
    // Temporal owns retries, with the runbook's backoff; a second retry loop underneath would hide outages.
    maxNetworkRetries: 0,
    timeout: options.timeoutMs ?? 30_000,
    appInfo: { name: 'billops' },
  });
  if (options.onRequest) stripe.on('request', options.onRequest);

  /** The invoice's status, or null when even reading it fails (the caller then reports its original error). */
  async function invoiceStatus(processorInvoiceId: string): Promise<string | null> {
    try {
      return (await stripe.invoices.retrieve(processorInvoiceId)).status;
    } catch {
      return null;
    }
  }

  return {
    sdk: stripe,
    async payInvoice(processorInvoiceId, idempotencyKey) {
      try {
        // Stripe answers a failed collection with an error, so an answer is a paid invoice; stripe-mock's
        // stateless fixture reports 'draft', which is why the status is passed on rather than checked.
        const invoice = await stripe.invoices.pay(processorInvoiceId, {}, { idempotencyKey });
        return {
          status: 'paid',
          processorInvoiceId: invoice.id ?? processorInvoiceId,
          invoiceStatus: invoice.status,
        };
      } catch (error) {
        if (!(error instanceof Stripe.errors.StripeError)) throw error;
        const meaning = interpretStripeError(error);
        if (meaning.kind === 'declined') {
          return { status: 'declined', decline: meaning.decline, message: meaning.message };
        }
        // Stripe refuses to pay an invoice the customer already paid (hosted page, bank transfer): that is a success.
        if (meaning.kind === 'rejected' && (await invoiceStatus(processorInvoiceId)) === 'paid') {
          return { status: 'paid', processorInvoiceId, invoiceStatus: 'paid' };
        }
        throw stripeFailure(meaning);
      }
    },

    async hostedInvoiceUrl(processorInvoiceId) {
      try {
        const invoice = await stripe.invoices.retrieve(processorInvoiceId);
        return invoice.hosted_invoice_url ?? null;
      } catch (error) {
        if (!(error instanceof Stripe.errors.StripeError)) throw error;
        const meaning = interpretStripeError(error);
        throw stripeFailure(
          meaning.kind === 'declined' ? { kind: 'rejected', message: meaning.message } : meaning,
        );
      }
    },
  };
}

/** What stopping a customer's charges did: subscriptions cancelled and payment methods detached, by id. */
export interface StoppedStripeCharges {
  subscriptionsCancelled: string[];
  paymentMethodsDetached: string[];
}

/** Subscription statuses under which Stripe may still invoice and charge the customer. */
const CHARGING_SUBSCRIPTION_STATUSES: ReadonlySet<string> = new Set([
  'active',
  'trialing',
  'past_due',
  'unpaid',
  'incomplete',
  'paused',
]);

/**
 * Nothing of the customer's can be charged any more: every subscription that could still invoice is cancelled (no
 * proration, no final invoice) and every saved payment method detached, each under an Idempotency-Key derived from
 * `idempotencyKey` and the object's id. Running it again lists nothing left to do. 401/403 throw ProcessorAuthFailed,
 * network trouble and 5xx throw retryable.
 */
export async function stopStripeCustomerCharges(
  gateway: StripeGateway,
  customerId: string,
  idempotencyKey: string,
): Promise<StoppedStripeCharges> {
  const stripe = gateway.sdk;
  try {
    const subscriptionsCancelled: string[] = [];
    for await (const subscription of stripe.subscriptions.list({
      customer: customerId,
      status: 'all',
      limit: 100,
    })) {
      if (!CHARGING_SUBSCRIPTION_STATUSES.has(subscription.status)) continue;
      await stripe.subscriptions.cancel(
        subscription.id,
        { invoice_now: false, prorate: false },
        { idempotencyKey: `${idempotencyKey}/cancel/${subscription.id}` },
      );
      subscriptionsCancelled.push(subscription.id);
    }
    const paymentMethodsDetached: string[] = [];
    for await (const method of stripe.customers.listPaymentMethods(customerId, { limit: 100 })) {
      await stripe.paymentMethods.detach(
        method.id,
        {},
        { idempotencyKey: `${idempotencyKey}/detach/${method.id}` },
      );
      paymentMethodsDetached.push(method.id);
    }
    return { subscriptionsCancelled, paymentMethodsDetached };
  } catch (error) {
    if (!(error instanceof Stripe.errors.StripeError)) throw error;
    const meaning = interpretStripeError(error);
    throw stripeFailure(
      meaning.kind === 'declined' ? { kind: 'rejected', message: meaning.message } : meaning,
    );
  }
}
