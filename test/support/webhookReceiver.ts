// A product's webhook receiver on loopback, as the integration guide describes one: it verifies Billops-Signature
// with the secrets it knows, and can be down (503), refuse (400) or answer with any status the test sets.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySignature } from '../../domain/outboundWebhooks';
import { hmacSha256Hex } from '../../drivers/webhookSender';

export interface ReceivedWebhook {
  eventId: string;
  type: string;
  tenantId: string | null;
  data: Record<string, unknown>;
  signature: string;
  /** Per secret given to `verifyWith`, whether the signature verified under it. */
  verified: boolean[];
  attempt: string | undefined;
  /** What the receiver answered. */
  status: number;
}

export interface WebhookReceiver {
  url: string;
  /** Every request, in arrival order. */
  received: ReceivedWebhook[];
  /** The status to answer from now on (200: taken when a signature verifies, else 400). */
  answer(status: number, body?: string): void;
  verifyWith(...secrets: string[]): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  let status = 200;
  let answerBody = 'ok';
  let secrets: string[] = [];
  const received: ReceivedWebhook[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const signature = String(req.headers['billops-signature'] ?? '');
      const verified = secrets.map((s) =>
        verifySignature(signature, raw, s, Math.floor(Date.now() / 1000), hmacSha256Hex),
      );
      const parsed = JSON.parse(raw) as ReceivedWebhook & { id: string };
      const valid = verified.length === 0 || verified.some(Boolean);
      const answered = status === 200 && !valid ? 400 : status;
      received.push({
        eventId: parsed.id,
        type: parsed.type,
        tenantId: parsed.tenantId,
        data: parsed.data,
        signature,
        verified,
        attempt: req.headers['billops-delivery-attempt'] as string | undefined,
        status: answered,
      });
      res.writeHead(answered, { 'Content-Type': 'text/plain' });
      res.end(answered === 200 ? 'ok' : valid ? answerBody : 'signature did not verify');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/billops/webhooks`,
    received,
    answer(next, body = `answered ${next}`) {
      status = next;
      answerBody = body;
    },
    verifyWith(...next) {
      secrets = next;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
