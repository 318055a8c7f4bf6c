// `npm start`: runs billops on its embedded defaults (or on the Temporal / PostgreSQL / SMTP the environment names).
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { migrate } from '../db/migrate';
import { describeDatabaseUrl } from '../db/pool';
import { seedDemoTenants } from '../db/seed';
import { createBillopsWorker, connectWorker } from '../workers/createWorker';
import { startWebhookDispatch } from '../workers/webhookDispatch';
import { createWorkerDependencies, incidentDependencies } from '../workers/dependencies';
import { createGatewaysFromConfig } from '../drivers/gateways';
import { createStripeGateway } from '../drivers/stripe';
import { loadConfig, loadPolicyForConfig } from '../config/load';
import { webhookSettingsFromConfig } from '../ingress/webhooks/routes';
import { buildIngress } from '../ingress/server';
import { embeddedPostgresDir, startEmbeddedPostgres } from './embeddedPostgres';
import { ensureLocalApiKey } from './localApiKey';
import { startMailCatcher } from './mailCatcher';
import { ChildSupervisor } from './processes';
import { passedOnEnv, withLocalSecrets, writeRuntimeFile } from './runtimeFile';
import { startTemporalDevServer } from './temporalDevServer';
import { STRIPE_MOCK_SECRET_KEY, startStripeMock } from './stripeMock';
import { findStripeMock, findTemporalCli, projectRoot, provision } from './tools';
import { ensureSearchAttributes } from '../temporal/searchAttributes';
import { ensureRollupSchedule } from '../temporal/usage';
import { connectClient } from '../temporal/connection';

const EMBEDDED_PG_PORT = Number(process.env.BILLOPS_EMBEDDED_PG_PORT ?? 54329);
const EMBEDDED_SMTP_PORT = Number(process.env.BILLOPS_EMBEDDED_SMTP_PORT ?? 2525);
const EMBEDDED_STRIPE_MOCK_PORT = Number(process.env.BILLOPS_EMBEDDED_STRIPE_MOCK_PORT ?? 12111);

type Stopper = { name: string; stop: () => Promise<unknown> };

async function main(): Promise<void> {
  const dataDir = resolve(projectRoot, loadConfig().dataDir);
  mkdirSync(dataDir, { recursive: true });
  // Webhook secrets and the Alertmanager token: the environment's, else local ones (kept in .data/runtime.json).
  const secrets = withLocalSecrets(process.env, dataDir);
  const config = loadConfig(secrets.env);
  const policy = loadPolicyForConfig(config);
  const supervisor = new ChildSupervisor();
  const stoppers: Stopper[] = [];
  let stopping: Promise<void> | undefined;

  const stopAll = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      console.log(`\nbillops: stopping (${reason})...`);
      for (const s of [...stoppers].reverse()) {
        await s
          .stop()
          .catch((err: Error) => console.error(`billops: stopping ${s.name} failed: ${err.message}`));
      }
      await supervisor.stopAll();
      console.log('billops: stopped; every port is free.');
    })();
    return stopping;
  };
  // billops owns shutdown order (worker, ingress, then the servers they use), so the SDK must not react to signals itself.
  Runtime.install({ shutdownSignals: [], logger: new DefaultLogger('WARN') });
  // SIGHUP too: a closed terminal or a wrapper (npm, timeout) that goes away must not leave the dev server behind.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => void stopAll(signal).then(() => process.exit(0)));
  }
  process.once('exit', () => supervisor.killAllNow());
  // A wrapper that dies without passing the signal on (npm killed with SIGKILL, a shell that exits) orphans billops:
  // stop too rather than run on unsupervised.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stopAll('the parent process exited').then(() => process.exit(0));
  }, 1000).unref();

  try {
    // 1. Temporal: the one configured, else the CLI dev server with its Web UI and state under .data/.
    let temporalAddress = config.temporal.address;
    let webUi = 'your Temporal Web UI';
    let webUiUrl: string | undefined;
    const ownPorts: number[] = [];
    if (!temporalAddress) {
      if (!findTemporalCli()) provision(['temporal']);
      const cliPath = findTemporalCli();
      if (!cliPath) throw new Error('the Temporal CLI is still missing after provisioning');
      console.log('billops: starting the Temporal dev server...');
      const server = await startTemporalDevServer(supervisor, {
        cliPath,
        port: config.embedded.temporalPort,
        uiPort: config.embedded.uiPort,
        dbFile: join(dataDir, 'temporal.db'),
        logFile: join(dataDir, 'logs', 'temporal.log'),
        namespace: config.temporal.namespace,
      });
      temporalAddress = server.address;
      webUiUrl = server.uiUrl;
      webUi = server.uiUrl ?? webUi;
      ownPorts.push(config.embedded.temporalPort, config.embedded.uiPort);
    }
    const target = { ...config.temporal, address: temporalAddress };
    const client = await connectClient(target);
    stoppers.push({ name: 'Temporal client', stop: () => client.connection.close() });
    const added = await ensureSearchAttributes(client.connection as Connection, config.temporal.namespace);
    if (added.length > 0) console.log(`billops: registered search attributes ${added.join(', ')}`);

    // 2. PostgreSQL: the configured one, else a PostgreSQL server of our own with its data kept under .data/postgres
    // (stopped with the other children, after the pools); migrated on every start.
    let databaseUrl = config.databaseUrl;
    const embeddedDb = !databaseUrl;
    if (!databaseUrl) {
      console.log('billops: starting PostgreSQL...');
      const pg = await startEmbeddedPostgres(supervisor, {
        dataDir: embeddedPostgresDir(dataDir),
        port: EMBEDDED_PG_PORT,
        logFile: join(dataDir, 'logs', 'postgres.log'),
      });
      databaseUrl = pg.url;
    }
    const applied = await migrate(databaseUrl);
    console.log(
      `billops: database ${describeDatabaseUrl(databaseUrl)} migrated (${applied.length} new migrations)`,
    );

    // 3. SMTP: the configured server, else a local catcher that files every message under .data/mail.
    let smtpUrl = config.smtpUrl;
    let mailbox = 'your SMTP server';
    if (!smtpUrl) {
      const catcher = await startMailCatcher({ port: EMBEDDED_SMTP_PORT, dir: join(dataDir, 'mail') });
      stoppers.push({ name: 'mail catcher', stop: () => catcher.close() });
      smtpUrl = catcher.url;
      mailbox = `${catcher.dir} (one JSON file per message)`;
    }

    // 4. Stripe: the configured account, else stripe-mock where installed, so demo retries reach a Stripe-shaped API.
    let gateways = createGatewaysFromConfig(config);
    let stripeMockApi: string | undefined;
    let stripeNote = config.stripe.secretKey
      ? 'configured (STRIPE_SECRET_KEY)'
      : 'not configured: retries are recorded as failed';
    const stripeMockBin = config.stripe.secretKey ? undefined : findStripeMock();
    if (stripeMockBin) {
      const mock = await startStripeMock(supervisor, {
        binPath: stripeMockBin,
        port: EMBEDDED_STRIPE_MOCK_PORT,
        httpsPort: EMBEDDED_STRIPE_MOCK_PORT + 1,
        logFile: join(dataDir, 'logs', 'stripe-mock.log'),
      });
      gateways = {
        ...gateways,
        stripe: createStripeGateway({ secretKey: STRIPE_MOCK_SECRET_KEY, apiBase: mock.apiBase }),
      };
      stripeMockApi = mock.apiBase;
      stripeNote = `stripe-mock at ${mock.apiBase} (set STRIPE_SECRET_KEY for a real account)`;
    }

    // 5. The worker and the ingress, on the same dependencies.
    const deps = createWorkerDependencies({
      databaseUrl,
      smtpUrl,
      mailFrom: config.mailFrom,
      billingPortalUrl: config.billingPortalUrl,
      decisionsLogPath: resolve(config.decisionsLogPath),
      gateways,
      incidents: incidentDependencies(config),
      poolMax: 10,
      temporalClient: client,
    });
    stoppers.push({ name: 'database pool and mailer', stop: () => deps.close() });
    let apiKeyFile: string | undefined;
    if (embeddedDb) {
      const seeded = await seedDemoTenants(deps.pool);
      if (seeded > 0) console.log(`billops: seeded ${seeded} demo tenants (one of each tier)`);
      const apiKey = await ensureLocalApiKey(deps.pool, dataDir);
      if (apiKey.created) console.log(`billops: wrote a usage API key for local producers to ${apiKey.file}`);
      apiKeyFile = apiKey.file;
    }
    const connection = await connectWorker(target);
    stoppers.push({ name: 'worker connection', stop: () => connection.close() });
    const worker = await createBillopsWorker({
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.taskQueue,
      deps,
    });
    const running = worker.run();
    // The hourly usage rollup (and, through it, overage enforcement) runs on a Temporal Schedule.
    await ensureRollupSchedule(client, config.taskQueue, { policy });
    const dispatch = startWebhookDispatch({ pool: deps.pool, client, taskQueue: config.taskQueue, policy });
    stoppers.push({ name: 'outbound webhook dispatch', stop: () => dispatch.stop() });
    stoppers.push({
      name: 'worker',
      stop: async () => {
        worker.shutdown();
        await running;
      },
    });
    running.catch((err: Error) => {
      console.error(`billops: the worker stopped: ${err.message}`);
      void stopAll('worker failure').then(() => process.exit(1));
    });

    const ingress = buildIngress({
      client,
      pool: deps.pool,
      webhooks: webhookSettingsFromConfig(config, policy),
      access: config.access,
    });
    await ingress.listen({ host: config.ingress.host, port: config.ingress.port });
    stoppers.push({ name: 'ingress', stop: () => ingress.close() });

    // 6. Where everything listens, for the CLI in another terminal (it reads this when its environment names nothing).
    const ingressHost = ['0.0.0.0', '::'].includes(config.ingress.host) ? '127.0.0.1' : config.ingress.host;
    const ingressUrl = `http://${ingressHost}:${config.ingress.port}`;
    const runtimeFile = writeRuntimeFile(dataDir, {
      version: 1,
      pid: process.pid,
      startedAt: new Date().toISOString(),
      env: passedOnEnv(secrets.env, {
        TEMPORAL_ADDRESS: temporalAddress,
        TEMPORAL_NAMESPACE: config.temporal.namespace,
        BILLOPS_TASK_QUEUE: config.taskQueue,
        DATABASE_URL: databaseUrl,
        SMTP_URL: smtpUrl,
        INGRESS_HOST: ingressHost,
        INGRESS_PORT: String(config.ingress.port),
        ...(stripeMockApi
          ? { STRIPE_SECRET_KEY: STRIPE_MOCK_SECRET_KEY, STRIPE_API_BASE: stripeMockApi }
          : {}),
      }),
      temporal: {
        address: temporalAddress,
        namespace: config.temporal.namespace,
        taskQueue: config.taskQueue,
        ...(webUiUrl ? { webUi: webUiUrl } : {}),
      },
      databaseUrl,
      ingressUrl,
      smtpUrl,
      ...(smtpUrl === config.smtpUrl ? {} : { mailDir: join(dataDir, 'mail') }),
      ...(stripeMockApi ? { stripeApiBase: stripeMockApi } : {}),
      ...(apiKeyFile ? { apiKeyFile } : {}),
      generatedSecrets: secrets.generated,
      ports: [
        ...ownPorts,
        embeddedDb ? EMBEDDED_PG_PORT : undefined,
        smtpUrl === config.smtpUrl ? undefined : EMBEDDED_SMTP_PORT,
        stripeMockApi ? EMBEDDED_STRIPE_MOCK_PORT : undefined,
        stripeMockApi ? EMBEDDED_STRIPE_MOCK_PORT + 1 : undefined,
        config.ingress.port,
      ].filter((p): p is number => p !== undefined),
      children: supervisor.running(),
    });

    console.log(
      [
        '',
        'billops is running. Where to look:',
        `  Temporal Web UI   ${webUi}  (filter by TenantId, DunningPhase, IncidentKind, ...)`,
        `  Temporal          ${temporalAddress}  namespace ${config.temporal.namespace}, task queue ${config.taskQueue}`,
        `  Ingress           http://${config.ingress.host}:${config.ingress.port}/healthz  and /metrics`,
        `  Database          ${describeDatabaseUrl(databaseUrl)}${embeddedDb ? ` (embedded PostgreSQL, kept under ${embeddedPostgresDir(dataDir)})` : ''}`,
        `  Mail              ${mailbox}`,
        `  Stripe            ${stripeNote}`,
        `  Logs              ${join(dataDir, 'logs')}`,
        `  For the CLI       ${runtimeFile}  (bin/billops in another terminal reads it when nothing is set)`,
        'Press Ctrl-C to stop everything.',
      ].join('\n'),
    );
  } catch (err) {
    console.error(`billops: cannot start: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll('start-up failed');
    process.exit(1);
  }
}

void main();
