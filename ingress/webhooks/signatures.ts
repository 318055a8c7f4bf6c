// Webhook authenticity over the raw body: Stripe's signed, timestamped header through the SDK's own check; Paystack's HMAC-SHA512.
import { createHmac, timingSafeEqual } from 'node:crypto';
import Stripe from 'stripe';

/** Stripe's recommended tolerance: a signature older than five minutes is a replay, not a delivery. */
export const STRIPE_TOLERANCE_SECONDS = 300;

export type Verified =
  | { ok: true; body: unknown }
  | { ok: false; problem: 'signature' | 'json'; reason: string };

/**
 * The SDK compares every v1 signature in the header with the one computed from our secret, so a header signed
 * with both the old and the new secret (Stripe's secret roll) verifies on either side of the roll.
 */
export function verifyStripe(
  rawBody: Buffer,
  header: string | string[] | undefined,
  secret: string,
): Verified {
  if (header === undefined || header === '') {
    return { ok: false, problem: 'signature', reason: 'the Stripe-Signature header is missing' };
  }
  if (Array.isArray(header)) {
    return { ok: false, problem: 'signature', reason: 'more than one Stripe-Signature header was sent' };
  }
  try {
    return {
      ok: true,
      body: Stripe.webhooks.constructEvent(rawBody, header, secret, STRIPE_TOLERANCE_SECONDS),
    };
  } catch (err) {
    if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
      // The SDK's first sentence says what failed (no match, timestamp outside the tolerance, unreadable header).
      return { ok: false, problem: 'signature', reason: firstSentence(err.message) };
    }
    if (err instanceof SyntaxError)
      return { ok: false, problem: 'json', reason: `malformed JSON: ${err.message}` };
    throw err;
  }
}

/** Paystack signs the raw body with HMAC-SHA512 (hex) and no timestamp: deduplication is what stops a replay. */
export function verifyPaystack(
  rawBody: Buffer,
  header: string | string[] | undefined,
  secret: string,
): Verified {
  if (header === undefined || header === '') {
    return { ok: false, problem: 'signature', reason: 'the x-paystack-signature header is missing' };
  }
  if (!paystackSignatureMatches(rawBody, header, secret)) {
    return {
      ok: false,
      problem: 'signature',
      reason: 'x-paystack-signature does not match the HMAC-SHA512 of the body',
    };
  }
  try {
    return { ok: true, body: JSON.parse(rawBody.toString('utf8')) };
  } catch (err) {
    return { ok: false, problem: 'json', reason: `malformed JSON: ${(err as Error).message}` };
  }
}

function paystackSignatureMatches(rawBody: Buffer, header: string | string[], secret: string): boolean {
  if (typeof header !== 'string' || !/^[0-9a-fA-F]+$/.test(header.trim())) return false;
  const expected = createHmac('sha512', secret).update(rawBody).digest();
  const given = Buffer.from(header.trim(), 'hex');
  // timingSafeEqual throws on unequal lengths; the length of a signature is no secret.
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function firstSentence(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/\s*Are you passing.*$/, '').trim();
}
