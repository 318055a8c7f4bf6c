// A billops worker as its own OS process, for tests that kill it: production's configuration and wiring, the pre-built workflow bundle.
import { readFileSync } from 'node:fs';
import { createGatewaysFromConfig } from '../../drivers/gateways';
import { loadConfig } from '../../config/load';
import { connectWorker, createBillopsWorker } from '../../workers/createWorker';
import { createWorkerDependencies, incidentDependencies } from '../../workers/dependencies';
import { TEST_ENV } from './testRuntime';

/** The line a parent waits for before it counts on this worker polling its task queue. */
export const WORKER_READY = 'worker ready';

async function main(): Promise<void> {
  // The variables of workers/main.ts (TEMPORAL_ADDRESS, BILLOPS_TASK_QUEUE, DATABASE_URL, SMTP_URL, PAYSTACK_*, STRIPE_*, ...).
  const config = loadConfig();
  const bundlePath = process.env[TEST_ENV.workflowBundle];
  const { address } = config.temporal;
  const { databaseUrl, smtpUrl } = config;
  if (!address || !databaseUrl || !smtpUrl || !bundlePath) {
    throw new Error(
      `TEMPORAL_ADDRESS, DATABASE_URL, SMTP_URL and ${TEST_ENV.workflowBundle} must be set: ` +
        'this worker talks to the servers of a test run, never to embedded defaults',
    );
  }

  const connection = await connectWorker({ ...config.temporal, address });
  const deps = createWorkerDependencies({
    databaseUrl,
    smtpUrl,
    mailFrom: config.mailFrom,
    billingPortalUrl: config.billingPortalUrl,
    decisionsLogPath: config.decisionsLogPath,
    gateways: createGatewaysFromConfig(config),
    incidents: incidentDependencies(config),
  });
  const worker = await createBillopsWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.taskQueue,
    deps,
    workflowBundle: { code: readFileSync(bundlePath, 'utf8') },
  });
  const running = worker.run();
  // pid of this node process: under tsx it is not the pid the parent spawned.
  console.log(`${WORKER_READY} pid=${process.pid} taskQueue=${config.taskQueue}`);
  await running;
  await connection.close();
  await deps.close();
  console.log('worker stopped');
}

main().catch((err: unknown) => {
  console.error(`worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
