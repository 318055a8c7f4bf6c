// The ingress describes itself: an OpenAPI document generated from the route schemas, served at /docs/json.
import { Client, Connection } from '@temporalio/client';
import { createPool } from '../../db/pool';
import { defaultPolicy } from '../../domain/policy';
import { buildIngress } from '../../ingress/server';
import { testEnv } from '../support/testRuntime';

describe('GET /docs/json', () => {
  it('serves an OpenAPI 3 description of every ingress route, with the usage request schema', async () => {
    const pool = createPool(testEnv('databaseUrl'), { max: 2 });
    const client = new Client({
      connection: await Connection.connect({ address: testEnv('temporalAddress') }),
    });
    const app = buildIngress({
      client,
      pool,
      webhooks: {
        taskQueue: 'openapi-test',
        policy: defaultPolicy,
        billingPortalUrl: 'https://billing.test',
      },
    });
    try {
      const address = await app.listen({ host: '127.0.0.1', port: 0 });
      const response = await fetch(`${address}/docs/json`);
      expect(response.status).toBe(200);
      const doc = (await response.json()) as {
        openapi: string;
        paths: Record<
          string,
          Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>
        >;
      };
      expect(doc.openapi).toMatch(/^3\./);
      expect(Object.keys(doc.paths).sort()).toEqual(
        [
          '/alerts/alertmanager',
          '/healthz',
          '/v1/access',
          '/v1/tenants/{id}/access',
          '/v1/tenants/{id}/access/decision',
          '/v1/tenants/{id}/notices',
          '/v1/tenants/{id}/notices/{nid}/ack',
          '/metrics',
          '/usage/events',
          '/usage/lag',
          '/webhooks/paystack',
          '/webhooks/stripe',
        ].sort(),
      );
      expect(Object.keys(doc.paths['/usage/events'] ?? {})).toEqual(['post']);
      const usageBody = doc.paths['/usage/events']?.post?.requestBody?.content['application/json']?.schema;
      expect(JSON.stringify(usageBody)).toContain('events');
      expect(Object.keys(doc.paths['/webhooks/stripe'] ?? {})).toEqual(['post']);
      expect(Object.keys(doc.paths['/v1/tenants/{id}/access'] ?? {})).toEqual(['get']);
      expect(Object.keys(doc.paths['/v1/tenants/{id}/notices/{nid}/ack'] ?? {})).toEqual(['post']);
    } finally {
      await app.close();
      await client.connection.close();
      await pool.end();
    }
  });
});
