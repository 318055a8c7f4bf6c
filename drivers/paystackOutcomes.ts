// What a Paystack answer means for a payment: a transaction's status read as paid, failed or pending, and the
// issuer's text in `gateway_response` sorted into hard and soft declines with Stripe's decline codes.
import type { DeclineClassification } from './stripe';

interface GatewayResponseRule {
  pattern: RegExp;
  kind: DeclineClassification['kind'];
  declineCode: string;
}

/**
 * Paystack reports why a card charge failed only as issuer text in `gateway_response` ("Insufficient Funds",
 * "Stolen Card, Pick-Up", "Do Not Honor", ...). These rules map that text onto Stripe's decline codes, in order,
 * first match wins; hard ones come first so "Lost Card, Pick-Up" is never read as a generic decline. The reasons
 * for hard and soft are the ones in STRIPE_HARD_DECLINE_CODES; text that matches nothing is soft.
 */
export const PAYSTACK_GATEWAY_RESPONSE_RULES: readonly GatewayResponseRule[] = [
  { pattern: /stolen/i, kind: 'hard', declineCode: 'stolen_card' },
  { pattern: /\blost\b/i, kind: 'hard', declineCode: 'lost_card' },
  { pattern: /pick[\s-]?up/i, kind: 'hard', declineCode: 'pickup_card' },
  { pattern: /fraud/i, kind: 'hard', declineCode: 'fraudulent' },
  { pattern: /restricted/i, kind: 'hard', declineCode: 'restricted_card' },
  { pattern: /\bexpired\b.*\bcard\b|\bcard\b.*\bexpired\b/i, kind: 'hard', declineCode: 'expired_card' },
  {
    pattern: /invalid (card|account)|no such (issuer|card|account)|closed account|account (is )?closed/i,
    kind: 'hard',
    declineCode: 'invalid_account',
  },
  { pattern: /not permitted|not allowed/i, kind: 'hard', declineCode: 'transaction_not_allowed' },
  { pattern: /not enabled|not supported/i, kind: 'hard', declineCode: 'card_not_supported' },
  { pattern: /stop payment|revok|revocation/i, kind: 'hard', declineCode: 'stop_payment_order' },
  { pattern: /do not (re)?try/i, kind: 'hard', declineCode: 'do_not_try_again' },
  {
    pattern: /insufficient|not sufficient funds|low balance/i,
    kind: 'soft',
    declineCode: 'insufficient_funds',
  },
  { pattern: /do not hono(u)?r/i, kind: 'soft', declineCode: 'do_not_honor' },
  { pattern: /limit|exceed/i, kind: 'soft', declineCode: 'withdrawal_count_limit_exceeded' },
  {
    pattern: /inoperative|unavailable|time ?out|timed out|try again/i,
    kind: 'soft',
    declineCode: 'issuer_not_available',
  },
  { pattern: /declined/i, kind: 'soft', declineCode: 'generic_decline' },
];

/** Classifies the issuer text of a failed Paystack card charge; no text, or unknown text, is a soft decline. */
export function classifyPaystackGatewayResponse(
  gatewayResponse: string | null | undefined,
): DeclineClassification {
  const text = gatewayResponse ?? '';
  const rule = PAYSTACK_GATEWAY_RESPONSE_RULES.find((r) => r.pattern.test(text));
  return rule
    ? { kind: rule.kind, declineCode: rule.declineCode }
    : { kind: 'soft', declineCode: 'generic_decline' };
}

/** Paystack wants the customer to do something (OTP, PIN, 3-D Secure): an unattended retry cannot complete it. */
const CUSTOMER_ACTION_STATUSES: ReadonlySet<string> = new Set([
  'send_otp',
  'send_pin',
  'send_birthday',
  'send_phone',
  'send_address',
  'open_url',
  'pay_offline',
]);

export type PaystackOutcome =
  | { status: 'success' }
  | { status: 'failed'; decline: DeclineClassification }
  /** pending, ongoing, processing, queued (or a status we do not know): not final, verify again later. */
  | { status: 'pending' };

/** What a transaction status (from a charge or a verify) means for the attempt. */
export function interpretPaystackStatus(
  status: string,
  gatewayResponse: string | null | undefined,
): PaystackOutcome {
  if (status === 'success') return { status: 'success' };
  if (status === 'failed')
    return { status: 'failed', decline: classifyPaystackGatewayResponse(gatewayResponse) };
  if (CUSTOMER_ACTION_STATUSES.has(status)) {
    return { status: 'failed', decline: { kind: 'hard', declineCode: 'authentication_required' } };
  }
  // Abandoned: the charge never completed; reversed: refunded or charged back. Neither collected; a retry may.
  if (status === 'abandoned' || status === 'reversed') {
    return { status: 'failed', decline: { kind: 'soft', declineCode: status } };
  }
  return { status: 'pending' };
}
