// Decline classification for "Retry Payment": which Stripe and Paystack failures end automatic retries, which wait for the next one, and which are Temporal's to retry.
import Stripe from 'stripe';
import { ApplicationFailure } from '@temporalio/activity';
import { paymentReference } from '../../../activities/payments';
import {
  classifyPaystackGatewayResponse,
  interpretPaystackStatus,
  PAYSTACK_GATEWAY_RESPONSE_RULES,
} from '../../../drivers/paystack';
import {
  classifyStripeDecline,
  interpretStripeError,
  STRIPE_HARD_DECLINE_CODES,
  STRIPE_SOFT_DECLINE_CODES,
  stripeFailure,
  stripeHostOptions,
} from '../../../drivers/stripe';

const cardError = (decline_code: string | undefined, code = 'card_declined') =>
  Stripe.errors.StripeError.generate({
    type: 'card_error',
    code,
    decline_code,
    message: 'Your card was declined.',
    statusCode: 402,
  });

describe('Stripe decline codes', () => {
  it.each([
    'stolen_card',
    'lost_card',
    'pickup_card',
    'fraudulent',
    'restricted_card',
    'invalid_account',
    'card_not_supported',
    'currency_not_supported',
    'expired_card',
    'incorrect_number',
    'revocation_of_authorization',
    'stop_payment_order',
    'authentication_required',
  ])('%s is a hard decline: retrying the same card cannot collect', (code) => {
    expect(classifyStripeDecline('card_declined', code)).toEqual({ kind: 'hard', declineCode: code });
  });

  it.each([
    'insufficient_funds',
    'generic_decline',
    'do_not_honor',
    'try_again_later',
    'issuer_not_available',
    'card_velocity_exceeded',
  ])('%s is a soft decline: the next scheduled retry may succeed', (code) => {
    expect(classifyStripeDecline('card_declined', code)).toEqual({ kind: 'soft', declineCode: code });
  });

  it('falls back to the error code when there is no decline_code (expired_card is a code, not a decline_code)', () => {
    expect(classifyStripeDecline('expired_card', undefined)).toEqual({
      kind: 'hard',
      declineCode: 'expired_card',
    });
    expect(classifyStripeDecline('incorrect_cvc', undefined)).toEqual({
      kind: 'soft',
      declineCode: 'incorrect_cvc',
    });
    expect(classifyStripeDecline(undefined, undefined)).toEqual({
      kind: 'soft',
      declineCode: 'card_declined',
    });
  });

  it('treats a code it has never seen as soft: ending retries needs a positive reason', () => {
    expect(classifyStripeDecline('card_declined', 'some_future_code')).toEqual({
      kind: 'soft',
      declineCode: 'some_future_code',
    });
  });

  it('keeps the two lists apart', () => {
    const both = [...STRIPE_HARD_DECLINE_CODES].filter((c) => STRIPE_SOFT_DECLINE_CODES.has(c));
    expect(both).toEqual([]);
  });
});

describe('Stripe errors', () => {
  it('reads a card error as a decline, hard or soft by its decline_code', () => {
    expect(interpretStripeError(cardError('stolen_card'))).toMatchObject({
      kind: 'declined',
      decline: { kind: 'hard', declineCode: 'stolen_card' },
    });
    expect(interpretStripeError(cardError('insufficient_funds'))).toMatchObject({
      kind: 'declined',
      decline: { kind: 'soft', declineCode: 'insufficient_funds' },
    });
  });

  it('reads an invoice that needs 3-D Secure as a hard decline: only the customer can authenticate', () => {
    const error = Stripe.errors.StripeError.generate({
      type: 'invalid_request_error',
      code: 'invoice_payment_intent_requires_action',
      message: 'This payment requires additional user action before it can be completed successfully.',
      statusCode: 402,
    });
    expect(interpretStripeError(error)).toMatchObject({
      kind: 'declined',
      decline: { kind: 'hard', declineCode: 'authentication_required' },
    });
  });

  it.each([
    ['api_error', 500],
    ['rate_limit_error', 429],
    ['invalid_request_error', 409],
  ] as const)(
    '%s (HTTP %d) is retryable: Temporal retries with the same idempotency key',
    (type, statusCode) => {
      const meaning = interpretStripeError(
        Stripe.errors.StripeError.generate({ type, message: 'busy', statusCode }),
      );
      expect(meaning.kind).toBe('retryable');
      const failure = stripeFailure(meaning as Exclude<typeof meaning, { kind: 'declined' }>);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.type).toBe('ProcessorUnavailable');
      expect(failure.nonRetryable).toBe(false);
    },
  );

  it('a connection error is retryable', () => {
    const error = new Stripe.errors.StripeConnectionError({ type: 'api_error', message: 'ECONNREFUSED' });
    expect(interpretStripeError(error).kind).toBe('retryable');
  });

  it('a 401 is a non-retryable ProcessorAuthFailed that names STRIPE_SECRET_KEY and never the key', () => {
    const error = Stripe.errors.StripeError.generate({
      type: 'authentication_error',
      message: 'Invalid API Key provided: sk_test_****7890',
      statusCode: 401,
    });
    const meaning = interpretStripeError(error);
    expect(meaning.kind).toBe('auth');
    const failure = stripeFailure(meaning as Exclude<typeof meaning, { kind: 'declined' }>);
    expect(failure.type).toBe('ProcessorAuthFailed');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('STRIPE_SECRET_KEY');
    expect(failure.message).not.toContain('sk_test');
  });

  it('any other 4xx is a non-retryable ProcessorRejected', () => {
    const error = Stripe.errors.StripeError.generate({
      type: 'invalid_request_error',
      code: 'resource_missing',
      message: 'No such invoice',
      statusCode: 404,
    });
    const meaning = interpretStripeError(error);
    expect(meaning).toMatchObject({ kind: 'rejected', code: 'resource_missing' });
    const failure = stripeFailure(meaning as Exclude<typeof meaning, { kind: 'declined' }>);
    expect(failure.type).toBe('ProcessorRejected');
    expect(failure.nonRetryable).toBe(true);
  });
});

describe('STRIPE_API_BASE', () => {
  it('becomes the SDK host, port and protocol', () => {
    expect(stripeHostOptions('http://127.0.0.1:12111')).toEqual({
      host: '127.0.0.1',
      port: 12111,
      protocol: 'http',
    });
    expect(stripeHostOptions('https://api.stripe.com')).toEqual({
      host: 'api.stripe.com',
      port: 443,
      protocol: 'https',
    });
  });

  it('refuses a path prefix the SDK would silently drop', () => {
    expect(() => stripeHostOptions('http://127.0.0.1:12111/stripe')).toThrow(/must not have a path/);
  });
});

describe('Paystack gateway responses', () => {
  it.each([
    ['Stolen Card, Pick-Up', 'stolen_card'],
    ['Lost Card, Pick-Up', 'lost_card'],
    ['Pick-up card (no fraud)', 'pickup_card'],
    ['Suspected Fraud', 'fraudulent'],
    ['Restricted Card', 'restricted_card'],
    ['Expired Card', 'expired_card'],
    ['Invalid card number', 'invalid_account'],
    ['No Such Issuer', 'invalid_account'],
    ['Transaction Not Permitted to Cardholder', 'transaction_not_allowed'],
    ['Card not enabled for international transactions', 'card_not_supported'],
  ])('"%s" is a hard decline (%s)', (text, declineCode) => {
    expect(classifyPaystackGatewayResponse(text)).toEqual({ kind: 'hard', declineCode });
  });

  it.each([
    ['Insufficient Funds', 'insufficient_funds'],
    ['Not sufficient funds', 'insufficient_funds'],
    ['Do Not Honor', 'do_not_honor'],
    ['Do not honour', 'do_not_honor'],
    ['Exceeds Withdrawal Limit', 'withdrawal_count_limit_exceeded'],
    ['Issuer or Switch Inoperative', 'issuer_not_available'],
    ['Declined', 'generic_decline'],
  ])('"%s" is a soft decline (%s)', (text, declineCode) => {
    expect(classifyPaystackGatewayResponse(text)).toEqual({ kind: 'soft', declineCode });
  });

  it('reads missing or unknown text as a soft generic decline', () => {
    expect(classifyPaystackGatewayResponse(undefined)).toEqual({
      kind: 'soft',
      declineCode: 'generic_decline',
    });
    expect(classifyPaystackGatewayResponse('Something new')).toEqual({
      kind: 'soft',
      declineCode: 'generic_decline',
    });
  });

  it('maps onto the Stripe vocabulary, hard codes onto Stripe hard codes', () => {
    for (const rule of PAYSTACK_GATEWAY_RESPONSE_RULES) {
      if (rule.kind === 'hard' && rule.declineCode !== 'authorization_invalid') {
        expect(STRIPE_HARD_DECLINE_CODES.has(rule.declineCode)).toBe(true);
      }
    }
  });
});

describe('Paystack transaction statuses', () => {
  it('success is final, failed is classified by its gateway response', () => {
    expect(interpretPaystackStatus('success', 'Approved')).toEqual({ status: 'success' });
    expect(interpretPaystackStatus('failed', 'Insufficient Funds')).toEqual({
      status: 'failed',
      decline: { kind: 'soft', declineCode: 'insufficient_funds' },
    });
  });

  it('a charge that asks for an OTP is a hard decline: nobody is there to type it', () => {
    expect(interpretPaystackStatus('send_otp', 'Kindly enter the OTP')).toEqual({
      status: 'failed',
      decline: { kind: 'hard', declineCode: 'authentication_required' },
    });
  });

  it.each(['pending', 'ongoing', 'processing', 'queued'])('%s is not final: verify again later', (status) => {
    expect(interpretPaystackStatus(status, '')).toEqual({ status: 'pending' });
  });
});

describe('paymentReference', () => {
  it('is deterministic, readable and within Paystack’s alphabet', () => {
    const key = 'dunning-acme/run 1/payment-retry-2/inv_42';
    const reference = paymentReference(key);
    expect(paymentReference(key)).toBe(reference);
    expect(reference).toMatch(/^[A-Za-z0-9.=-]+$/);
    expect(reference.startsWith('dunning-acme-run-1-payment-retry-2-inv-42-')).toBe(true);
  });

  it('keeps keys that differ only in punctuation apart', () => {
    expect(paymentReference('a/b')).not.toBe(paymentReference('a b'));
  });

  it('refuses an empty key', () => {
    expect(() => paymentReference('  ')).toThrow(/must not be empty/);
  });
});
