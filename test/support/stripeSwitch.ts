// stripe-mock behind a switch a test turns: answers as stripe-mock does, or as Stripe does when the secret key was
// revoked (401), or declines every invoice payment (402 card_declined, insufficient funds) so a lifecycle goes on.
import { createServer, type Server } from 'node:http';
import { forward, listenOnLoopback } from './httpProxy';

export type StripeMode = 'answering' | 'key_revoked' | 'declining';

export interface StripeSwitch {
  url: string;
  mode: StripeMode;
  /** Every request: method, path, idempotency key and what it was answered. */
  seen: { method: string; path: string; idempotencyKey?: string; status: number }[];
  close(): Promise<void>;
}

export async function startStripeSwitch(stripeMockBase: string): Promise<StripeSwitch> {
  const upstream = new URL(stripeMockBase);
  const state = { mode: 'answering' as StripeMode };
  const seen: StripeSwitch['seen'] = [];
  const server: Server = createServer((req, res) => {
    const entry = {
      method: req.method ?? '',
      path: req.url ?? '',
      idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      status: 0,
    };
    seen.push(entry);
    const answer = (status: number, error: object) => {
      entry.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error }));
    };
    if (state.mode === 'key_revoked') {
      // Stripe's answer to a revoked key; its message shows part of the key, which must never reach a timeline.
      return answer(401, {
        type: 'invalid_request_error',
        message: 'Invalid API Key provided: sk_test_********************revk',
      });
    }
    if (
      state.mode === 'declining' &&
      req.method === 'POST' &&
      /^\/v1\/invoices\/[^/]+\/pay/.test(entry.path)
    ) {
      return answer(402, {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'insufficient_funds',
        message: 'Your card has insufficient funds.',
      });
    }
    forward(upstream, req, res, { onStatus: (status) => (entry.status = status) });
  });
  const listening = await listenOnLoopback(server);
  return {
    ...listening,
    seen,
    get mode() {
      return state.mode;
    },
    set mode(mode: StripeMode) {
      state.mode = mode;
    },
  };
}
