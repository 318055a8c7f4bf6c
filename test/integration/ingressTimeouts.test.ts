// ingress/server.ts: the HTTP server's request, connection and keep-alive timeouts, so a silent or slow-drip client
// cannot hold a connection open for ever.
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildIngress, INGRESS_TIMEOUTS } from '../../ingress/server';

// The routes are never called here: the timeouts act before any handler runs.
const unused = {} as never;

async function listening(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('the ingress is not listening on a TCP port');
  return address.port;
}

describe('ingress timeouts', () => {
  it('sets request, connection and keep-alive timeouts on the HTTP server by default', async () => {
    const app = buildIngress({ client: unused, pool: unused });
    try {
      expect(app.server.requestTimeout).toBe(INGRESS_TIMEOUTS.requestMs);
      expect(app.server.timeout).toBe(INGRESS_TIMEOUTS.connectionMs);
      expect(app.server.keepAliveTimeout).toBe(INGRESS_TIMEOUTS.keepAliveMs);
      for (const ms of Object.values(INGRESS_TIMEOUTS)) expect(ms).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });

  it('closes a connection on which the client sends nothing', async () => {
    const app = buildIngress({ client: unused, pool: unused, timeouts: { connectionMs: 500 } });
    try {
      const port = await listening(app);
      const startedAt = Date.now();
      const socket = connect(port, '127.0.0.1');
      // Half a request line, then silence.
      socket.on('connect', () => socket.write('POST /webhooks/stripe HTTP/1.1\r\n'));
      socket.resume();
      await new Promise<void>((resolve, reject) => {
        socket.on('close', () => resolve());
        socket.on('error', reject);
      });
      expect(Date.now() - startedAt).toBeLessThan(5_000);
    } finally {
      await app.close();
    }
  }, 15_000);
});
