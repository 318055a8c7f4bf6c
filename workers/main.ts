// Standalone worker process (docker-compose, production): connects to the configured Temporal and serves the task queue.
import { resolve } from 'node:path';
import { createGatewaysFromConfig } from '../drivers/gateways';
import { loadConfig, loadPolicyForConfig } from '../config/load';
import { connectClient } from '../temporal/connection';
import { migrate } from '../db/migrate';
import { createBillopsWorker, connectWorker } from './createWorker';
import { createWorkerDependencies, incidentDependencies } from './dependencies';
import { startWebhookDispatch } from './webhookDispatch';

async function main(): Promise<void> {
  const config = loadConfig();
  const missing = (['TEMPORAL_ADDRESS', 'DATABASE_URL', 'SMTP_URL'] as const).filter(
    (name) =>
      !{
        TEMPORAL_ADDRESS: config.temporal.address,
        DATABASE_URL: config.databaseUrl,
        SMTP_URL: config.smtpUrl,
      }[name],
  );
  if (missing.length > 0) {
    console.error(
      `billops worker: ${missing.join(', ')} must be set for a standalone worker (npm start runs embedded defaults instead).`,
    );
    process.exit(2);
  }
  const databaseUrl = config.databaseUrl as string;
  await migrate(databaseUrl);
  const connection = await connectWorker({ ...config.temporal, address: config.temporal.address as string });
  // Activities that signal or start workflows (webhook replay, dunning mass actions) use a client of their own.
  const temporalClient = await connectClient({
    ...config.temporal,
    address: config.temporal.address as string,
  });
  const deps = createWorkerDependencies({
    databaseUrl,
    smtpUrl: config.smtpUrl as string,
    mailFrom: config.mailFrom,
    billingPortalUrl: config.billingPortalUrl,
    decisionsLogPath: resolve(config.decisionsLogPath),
    gateways: createGatewaysFromConfig(config),
    incidents: incidentDependencies(config),
    temporalClient,
  });
  const worker = await createBillopsWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    deps,
  });
  console.log(`billops worker: serving task queue ${config.taskQueue} on ${config.temporal.address}`);
  const dispatch = startWebhookDispatch({
    pool: deps.pool,
    client: temporalClient,
    taskQueue: config.taskQueue,
    policy: loadPolicyForConfig(config),
  });
  // The SDK's runtime turns SIGINT/SIGTERM into a graceful shutdown: running activities finish, then run() resolves.
  await worker.run();
  await dispatch.stop();
  await connection.close();
  await temporalClient.connection.close();
  await deps.close();
  console.log('billops worker: stopped');
}

main().catch((err: Error) => {
  console.error(`billops worker: ${err.message}`);
  process.exit(1);
});
