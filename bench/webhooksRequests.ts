// The two sides' requests: the bare signalWithStart input, and the signed Stripe delivery POSTed to the ingress.
import { randomUUID } from 'node:crypto';
import { type Agent, request } from 'node:http';
import Stripe from 'stripe';
import type { DunningInput } from '../domain/dunning';
import { defaultPolicy } from '../domain/policy';
import { PORTAL_URL, STRIPE_SECRET } from './webhooksOptions';
import type { Side } from './webhooksRun';

const AMOUNT_MINOR = 4_900;
const DAY_SECONDS = 86_400;

export const tenantId = (side: Side, run: number, i: number) =>
  `bench-${side === 'bare' ? 'b' : 'w'}${run}-${String(i).padStart(7, '0')}`;

/** The input the ingress would build for a tenant: same tier, processor, policy and invoice shape. */
export function bareInput(run: number, i: number): DunningInput {
  const id = tenantId('bare', run, i);
  return {
    tenantId: id,
    tenantName: `Bench tenant ${id}`,
    tier: 'pro',
    processor: 'stripe',
    invoice: { invoiceId: randomUUID(), amountMinor: AMOUNT_MINOR, currency: 'USD' },
    policy: defaultPolicy,
    billingPortalUrl: PORTAL_URL,
  };
}

interface Delivery {
  eventId: string;
  payload: string;
  signature: string;
}

/** A Stripe invoice.payment_failed event for its own tenant and invoice, signed as Stripe signs it. */
export function stripeDelivery(run: number, i: number): Delivery {
  const now = Math.floor(Date.now() / 1000);
  const start = now - 30 * DAY_SECONDS;
  const eventId = `evt_bench_${run}_${i}`;
  const payload = JSON.stringify({
    id: eventId,
    object: 'event',
    api_version: '2025-09-30.clover',
    created: now,
    type: 'invoice.payment_failed',
    data: {
      object: {
        id: `in_bench_${run}_${i}`,
        object: 'invoice',
        customer: `cus_bench_${run}_${i}`,
        metadata: { tenant_id: tenantId('ingress', run, i) },
        amount_due: AMOUNT_MINOR,
        amount_paid: 0,
        currency: 'usd',
        status: 'open',
        period_start: start,
        period_end: now,
        lines: { object: 'list', data: [{ period: { start, end: now } }] },
        hosted_invoice_url: 'https://invoice.stripe.test/i/bench',
      },
    },
  });
  const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: STRIPE_SECRET });
  return { eventId, payload, signature };
}

/** POSTs one delivery and fails unless the ingress answers 200 with the lifecycle it started. */
export function deliver(agent: Agent, port: number, delivery: Delivery): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/webhooks/stripe',
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(delivery.payload),
          'stripe-signature': delivery.signature,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200 && body.includes('"status":"processed"')) return resolve();
          reject(
            new Error(
              `the ingress answered ${res.statusCode} to ${delivery.eventId} instead of 200 processed: ${body}`,
            ),
          );
        });
      },
    );
    req.on('error', reject);
    req.end(delivery.payload);
  });
}
