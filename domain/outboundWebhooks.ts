// Outbound webhooks to the product's endpoints: the event types, the Stripe-style signature header and the retry
// schedule (seed 000: increasing intervals for up to 7 days), as plain functions over plain data.
import type { Policy } from './policy';

export const OUTBOUND_EVENT_TYPES = [
  'tenant.access.changed',
  'dunning.phase_changed',
  'invoice.recovered',
  'incident.opened',
  'incident.resolved',
] as const;
export type OutboundEventType = (typeof OUTBOUND_EVENT_TYPES)[number];

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The header the receiver verifies. */
export const SIGNATURE_HEADER = 'Billops-Signature';
/** How long a rotated-out secret still signs, so receivers can switch over. */
export const PREVIOUS_SECRET_VALID_HOURS = 24;
/** How much of a refusing receiver's answer is kept with the delivery. */
export const ANSWER_KEPT_CHARS = 200;

/** The stream of deliveries kept in order: one per tenant, and one for events that concern no single tenant. */
export const NO_TENANT_STREAM = '_';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

export function isOutboundEventType(value: string): value is OutboundEventType {
  return (OUTBOUND_EVENT_TYPES as readonly string[]).includes(value);
}

/** HMAC-SHA256 of the payload under the secret, as lowercase hex; the caller brings the crypto. */
export type HmacSha256Hex = (secret: string, payload: string) => string;

/** What is signed: `<t>.<body>`, t in unix seconds. */
export function signedPayload(timestampSeconds: number, body: string): string {
  return `${timestampSeconds}.${body}`;
}

/** `t=<unix>,v1=<hex>[,v1=<hex>]`: one v1 per secret still valid (the current first, then the previous). */
export function signatureHeader(
  body: string,
  timestampSeconds: number,
  secrets: readonly string[],
  hmac: HmacSha256Hex,
): string {
  if (secrets.length === 0) throw new Error('an endpoint needs at least one secret to sign with');
  const payload = signedPayload(timestampSeconds, body);
  return [`t=${timestampSeconds}`, ...secrets.map((s) => `v1=${hmac(s, payload)}`)].join(',');
}

export interface ParsedSignature {
  timestampSeconds: number;
  v1: string[];
}

/** Reads a Billops-Signature header; undefined when it is not one. */
export function parseSignatureHeader(header: string): ParsedSignature | undefined {
  let timestampSeconds: number | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const [key, value] = part.trim().split('=', 2);
    if (key === 't' && value && /^\d+$/.test(value)) timestampSeconds = Number(value);
    else if (key === 'v1' && value && /^[0-9a-f]{64}$/.test(value)) v1.push(value);
  }
  return timestampSeconds === undefined || v1.length === 0 ? undefined : { timestampSeconds, v1 };
}

/**
 * What a receiver does: the header is valid when one of its v1 values is the HMAC of `<t>.<body>` under the secret and
 * t is within the tolerance of now. (Compare in constant time where the crypto allows it; here, the hex strings.)
 */
export function verifySignature(
  header: string,
  body: string,
  secret: string,
  nowSeconds: number,
  hmac: HmacSha256Hex,
  toleranceSeconds = 300,
): boolean {
  const parsed = parseSignatureHeader(header);
  if (!parsed || Math.abs(nowSeconds - parsed.timestampSeconds) > toleranceSeconds) return false;
  const expected = hmac(secret, signedPayload(parsed.timestampSeconds, body));
  return parsed.v1.includes(expected);
}

/** The secrets an endpoint signs with at `now`: the current one, and the previous one until it expires. */
export function signingSecrets(
  endpoint: { secret: string; previousSecret: string | null; previousSecretExpiresAt: string | null },
  now: number,
): string[] {
  const previousValid =
    endpoint.previousSecret !== null &&
    endpoint.previousSecretExpiresAt !== null &&
    Date.parse(endpoint.previousSecretExpiresAt) > now;
  return previousValid ? [endpoint.secret, endpoint.previousSecret!] : [endpoint.secret];
}

/**
 * When each retry is due, in ms after the first attempt: the first retry after firstRetryMinutes, each interval
 * doubling up to maxRetryIntervalHours, and a last retry exactly at the maxDays mark; after it the delivery has failed.
 */
export function retryOffsetsMs(retry: Policy['webhookRetry']): number[] {
  const window = retry.maxDays * DAY_MS;
  const cap = retry.maxRetryIntervalHours * HOUR_MS;
  const offsets: number[] = [];
  let interval = retry.firstRetryMinutes * MINUTE_MS;
  let at = interval;
  while (at < window) {
    offsets.push(at);
    interval = Math.min(cap, interval * 2);
    at += interval;
  }
  offsets.push(window);
  return offsets;
}

export type ReceiverVerdict = 'delivered' | 'retry' | 'refused';

/** 2xx delivered; 408, 429, 5xx, no answer (null) retried; any other answer is the receiver refusing it for good. */
export function receiverVerdict(status: number | null): ReceiverVerdict {
  if (status === null) return 'retry';
  if (status >= 200 && status < 300) return 'delivered';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'refused';
}

/** An endpoint's URL: absolute http(s), no credentials in it. Returns the problem, or null. */
export function endpointUrlProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${JSON.stringify(url)} is not an absolute URL; give one like https://example.com/billops/webhooks`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `the URL must be http or https, got ${parsed.protocol.replace(/:$/, '')}`;
  }
  if (parsed.username || parsed.password) {
    return 'the URL must not carry a user name or password: the signature authenticates billops';
  }
  return null;
}

/** The one delivery workflow of an (endpoint, stream): its deliveries go out in order, one at a time. */
export function webhookDeliveryWorkflowId(endpointId: string, stream: string): string {
  return `webhook-delivery-${endpointId}-${stream}`;
}

/** What a delivery workflow is started with: its stream, and the policy's retry schedule. */
export interface WebhookDeliveryInput {
  endpointId: string;
  stream: string;
  policy: Pick<Policy, 'webhookRetry' | 'apiRetry'>;
}
