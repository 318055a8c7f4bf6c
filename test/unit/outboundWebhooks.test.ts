// Outbound webhook rules: the Stripe-style signature (several v1 while a secret rotates), the retry schedule the policy
// gives (15 min doubling to a 24 h cap, the last retry at the 7-day mark), and which answers are retried.
import { createHmac } from 'node:crypto';
import {
  endpointUrlProblem,
  parseSignatureHeader,
  receiverVerdict,
  retryOffsetsMs,
  signatureHeader,
  signingSecrets,
  verifySignature,
} from '../../domain/outboundWebhooks';
import { defaultPolicy } from '../../domain/policy';

const hmac = (secret: string, payload: string) =>
  createHmac('sha256', secret).update(payload, 'utf8').digest('hex');
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('signature', () => {
  const body = '{"id":"evt_1","type":"tenant.access.changed"}';
  const t = 1_796_688_000;

  it('is t=<unix>,v1=<HMAC-SHA256 of "t.body"> as a receiver computes it', () => {
    const header = signatureHeader(body, t, ['whsec_a'], hmac);
    expect(header).toBe(`t=${t},v1=${hmac('whsec_a', `${t}.${body}`)}`);
    expect(verifySignature(header, body, 'whsec_a', t + 10, hmac)).toBe(true);
  });

  it('fails for another body, another secret or an old timestamp', () => {
    const header = signatureHeader(body, t, ['whsec_a'], hmac);
    expect(verifySignature(header, `${body} `, 'whsec_a', t, hmac)).toBe(false);
    expect(verifySignature(header, body, 'whsec_b', t, hmac)).toBe(false);
    expect(verifySignature(header, body, 'whsec_a', t + 301, hmac)).toBe(false);
  });

  it('carries one v1 per secret while a secret rotates, so both old and new verify', () => {
    const header = signatureHeader(body, t, ['whsec_new', 'whsec_old'], hmac);
    expect(parseSignatureHeader(header)?.v1).toHaveLength(2);
    expect(verifySignature(header, body, 'whsec_new', t, hmac)).toBe(true);
    expect(verifySignature(header, body, 'whsec_old', t, hmac)).toBe(true);
    expect(verifySignature(header, body, 'whsec_other', t, hmac)).toBe(false);
  });

  it('signs with the previous secret only until it expires', () => {
    const now = Date.parse('2026-12-07T12:00:00Z');
    const endpoint = {
      secret: 'new',
      previousSecret: 'old',
      previousSecretExpiresAt: new Date(now + 24 * HOUR).toISOString(),
    };
    expect(signingSecrets(endpoint, now)).toEqual(['new', 'old']);
    expect(signingSecrets(endpoint, now + 24 * HOUR)).toEqual(['new']);
    expect(
      signingSecrets({ secret: 'only', previousSecret: null, previousSecretExpiresAt: null }, now),
    ).toEqual(['only']);
  });

  it('is refused unparsed when it is not a Billops-Signature', () => {
    expect(parseSignatureHeader('v1=abc')).toBeUndefined();
    expect(parseSignatureHeader('t=12')).toBeUndefined();
  });
});

describe('retry schedule from the policy', () => {
  it('retries at 15 min, 45 min, 1 h 45, 3 h 45, ... doubling to 24 h, the last at exactly 7 days', () => {
    const offsets = retryOffsetsMs(defaultPolicy.webhookRetry).map((ms) => ms / MINUTE);
    expect(offsets).toEqual([15, 45, 105, 225, 465, 945, 1905, 3345, 4785, 6225, 7665, 9105, 10080]);
    const intervals = offsets.slice(1).map((m, i) => m - offsets[i]!);
    // Increasing, then capped at maxRetryIntervalHours, before the final one that lands on the 7-day mark.
    expect(intervals.slice(0, 6)).toEqual([30, 60, 120, 240, 480, 960]);
    expect(Math.max(...intervals)).toBe(24 * 60);
  });

  it('follows a policy with other numbers', () => {
    const offsets = retryOffsetsMs({ firstRetryMinutes: 10, maxRetryIntervalHours: 1, maxDays: 1 });
    expect(offsets.slice(0, 4).map((ms) => ms / MINUTE)).toEqual([10, 30, 70, 130]);
    expect(offsets.at(-1)).toBe(24 * HOUR);
    expect(offsets.every((o, i) => i === 0 || o > offsets[i - 1]!)).toBe(true);
  });
});

describe('receiver answers', () => {
  it('delivers on 2xx, retries 408, 429, 5xx and no answer, and refuses other 4xx for good', () => {
    expect(receiverVerdict(200)).toBe('delivered');
    expect(receiverVerdict(204)).toBe('delivered');
    for (const s of [408, 429, 500, 502, 503, null]) expect(receiverVerdict(s)).toBe('retry');
    for (const s of [400, 401, 403, 404, 410, 422, 301]) expect(receiverVerdict(s)).toBe('refused');
  });
});

describe('endpoint URL', () => {
  it('takes http and https, refuses anything else with the reason', () => {
    expect(endpointUrlProblem('https://product.example/hooks')).toBeNull();
    expect(endpointUrlProblem('http://127.0.0.1:9000/x')).toBeNull();
    expect(endpointUrlProblem('ftp://product.example/hooks')).toMatch(/http or https, got ftp/);
    expect(endpointUrlProblem('product.example/hooks')).toMatch(/not an absolute URL/);
    expect(endpointUrlProblem('https://u:p@product.example/')).toMatch(/user name or password/);
  });
});
