// The surface other parts rely on (registered activities, workflow types, message names, CLI commands, HTTP routes,
// migrations), snapshotted so a move or an extraction that changes any of it fails here. No servers: the pool and
// the Temporal client are lazy and never used.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@temporalio/client';
import { Pool } from 'pg';
import { createActivities } from '../../activities';
import * as definitions from '../../workflows/definitions';
import * as workflows from '../../workflows';
import { defaultPolicy } from '../../domain/policy';
import { buildIngress } from '../../ingress/server';

const root = join(__dirname, '..', '..');

it('registers the same activity names', () => {
  const activities = createActivities({
    pool: new Pool({ connectionString: 'postgres://surface@127.0.0.1:1/none' }),
    mailer: { send: async () => ({ messageId: 'none' }), close: () => undefined },
    mailFrom: 'billing@example.test',
    gateways: {},
    billingPortalUrl: 'https://billing.example.test',
    decisionsLogPath: '/nonexistent/DECISIONS.log',
    incidents: { paging: { timeoutMs: 1000 }, opsEmail: 'ops@example.test', reportsDir: '/nonexistent' },
  });
  expect(Object.keys(activities).sort()).toMatchSnapshot();
});

it('bundles the same workflow types', () => {
  expect(Object.keys(workflows).sort()).toMatchSnapshot();
});

it('defines the same signals, queries and updates', () => {
  const messages = Object.entries(definitions)
    .filter(([, value]) => typeof value === 'object' && value !== null && 'name' in value && 'type' in value)
    .map(([exported, value]) => {
      const { name, type } = value as { name: string; type: string };
      return `${exported}: ${type} ${name}`;
    })
    .sort();
  expect(messages).toMatchSnapshot();
});

it('offers the same CLI commands', () => {
  const help = execFileSync(join(root, 'bin', 'billops'), ['help'], { encoding: 'utf8' });
  expect(help).toMatchSnapshot();
});

it('serves the same HTTP routes', async () => {
  const pool = new Pool({ connectionString: 'postgres://surface@127.0.0.1:1/none' });
  const client = new Client();
  const app = buildIngress({
    client,
    pool,
    webhooks: {
      taskQueue: 'surface',
      policy: defaultPolicy,
      billingPortalUrl: 'https://billing.example.test',
    },
  });
  try {
    await app.ready();
    const doc = app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(routes.sort()).toMatchSnapshot();
  } finally {
    await app.close();
    await pool.end();
  }
});

it('ships the same migrations', () => {
  expect(readdirSync(join(root, 'db', 'migrations')).sort()).toMatchSnapshot();
});
