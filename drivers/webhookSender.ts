// The HTTP sender of outbound webhooks: one signed POST, its answer read but never thrown, and the HMAC they are
// signed with.
import { createHmac } from 'node:crypto';
import axios from 'axios';
import { ANSWER_KEPT_CHARS, SIGNATURE_HEADER, signatureHeader } from '../domain/outboundWebhooks';

export function hmacSha256Hex(secret: string, payload: string): string {
  return createHmac('sha256', secret).update(payload, 'utf8').digest('hex');
}

export interface SignedPost {
  url: string;
  body: string;
  eventId: string;
  eventType: string;
  attempt: number;
  /** Every secret that still signs: one v1 each. */
  secrets: readonly string[];
  timeoutMs: number;
}

/** The receiver's status (null: no answer) and, when it did not take it, why (its answer's start, or the error). */
export interface PostResult {
  status: number | null;
  answer: string | null;
}

export async function postSignedWebhook(req: SignedPost, now: () => number = Date.now): Promise<PostResult> {
  const t = Math.floor(now() / 1000);
  try {
    const response = await axios.post<string>(req.url, req.body, {
      timeout: req.timeoutMs,
      maxRedirects: 0,
      validateStatus: () => true,
      responseType: 'text',
      transformRequest: [(data: string) => data],
      transformResponse: [(data: string) => data],
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'billops-webhooks/1',
        [SIGNATURE_HEADER]: signatureHeader(req.body, t, req.secrets, hmacSha256Hex),
        'Billops-Event-Id': req.eventId,
        'Billops-Event-Type': req.eventType,
        'Billops-Delivery-Attempt': String(req.attempt),
      },
    });
    const text = typeof response.data === 'string' ? response.data : '';
    return { status: response.status, answer: `${response.status} ${text}`.slice(0, ANSWER_KEPT_CHARS) };
  } catch (err) {
    // No answer: refused, timed out, DNS. The message names the cause, never a secret (none is in the URL).
    const code = axios.isAxiosError(err) ? (err.code ?? 'ERROR') : 'ERROR';
    const message = err instanceof Error ? err.message : String(err);
    return { status: null, answer: `no answer (${code}): ${message}`.slice(0, ANSWER_KEPT_CHARS) };
  }
}
