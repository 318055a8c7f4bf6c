// Starts the real local servers every suite shares, once per run: PostgreSQL, the Temporal dev server, an SMTP catcher; bundles workflows once.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { Client } from 'pg';
import { migrate } from '../../db/migrate';
import { startMailCatcher } from '../../runtime/mailCatcher';
import { startPostgresCluster } from '../../runtime/postgresCluster';
import { ChildSupervisor, freePort } from '../../runtime/processes';
import { startTemporalDevServer } from '../../runtime/temporalDevServer';
import { startStripeMock } from '../../runtime/stripeMock';
import { findPostgresBinDir, findStripeMock, findTemporalCli, findTestServer } from '../../runtime/tools';
import { workflowsPath } from '../../workers/createWorker';
import { TEST_ENV, type TestRuntime } from './testRuntime';

const quietLogger = new DefaultLogger('WARN');

function missing(piece: string): never {
  throw new Error(
    `${piece} is missing, so the test suites cannot run. Run \`bash scripts/provision.sh\` (npm test does this first).`,
  );
}

export default async function globalSetup(): Promise<void> {
  try {
    await startSharedServers();
  } catch (err) {
    // Jest runs no teardown when setup fails: stop what did start, so no server outlives the run.
    const runtime = (globalThis as { billopsTestRuntime?: TestRuntime }).billopsTestRuntime;
    await runtime?.closeMail?.();
    await runtime?.supervisor.stopAll();
    throw err;
  }
}

async function startSharedServers(): Promise<void> {
  const temporalCli = findTemporalCli() ?? missing('the Temporal CLI (dev server)');
  const testServer = findTestServer() ?? missing('the Temporal time-skipping test server');
  const pgBinDir = findPostgresBinDir() ?? missing('PostgreSQL (initdb, pg_ctl)');
  const stripeMockBin = findStripeMock() ?? missing('stripe-mock (the Stripe API mock)');

  const workDir = mkdtempSync(join(tmpdir(), 'billops-test-'));
  // The PostgreSQL cluster inside runs as the `postgres` user when we are root; it must be able to enter this directory.
  chmodSync(workDir, 0o755);
  const supervisor = new ChildSupervisor();
  const runtime: TestRuntime = { supervisor, workDir };
  // An interrupted run (Ctrl-C, a CI timeout) skips globalTeardown: the servers must not outlive it.
  process.once('exit', () => supervisor.killAllNow());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      supervisor.killAllNow();
      process.exit(130);
    });
  }
  (globalThis as { billopsTestRuntime?: TestRuntime }).billopsTestRuntime = runtime;

  const [pgPort, temporalPort, smtpPort, stripePort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const catcher = await startMailCatcher({ port: smtpPort, dir: join(workDir, 'mail') });
  runtime.closeMail = catcher.close;
  const [cluster, devServer, bundle, stripe] = await Promise.all([
    startPostgresCluster(supervisor, {
      binDir: pgBinDir,
      dataDir: join(workDir, 'pg'),
      port: pgPort,
      logFile: join(workDir, 'postgres.log'),
    }),
    startTemporalDevServer(supervisor, {
      cliPath: temporalCli,
      port: temporalPort,
      logFile: join(workDir, 'temporal.log'),
      namespace: 'default',
    }),
    bundleWorkflowCode({ workflowsPath, logger: quietLogger }),
    startStripeMock(supervisor, {
      binPath: stripeMockBin,
      port: stripePort,
      httpsPort: await freePort(),
      logFile: join(workDir, 'stripe-mock.log'),
    }),
  ]);

  const admin = new Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query('CREATE DATABASE billops_test');
  await admin.end();
  const databaseUrl = cluster.url.replace(/\/postgres$/, '/billops_test');
  await migrate(databaseUrl);

  const bundlePath = join(workDir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);

  process.env[TEST_ENV.databaseUrl] = databaseUrl;
  process.env[TEST_ENV.adminDatabaseUrl] = cluster.url;
  process.env[TEST_ENV.temporalAddress] = devServer.address;
  process.env[TEST_ENV.smtpUrl] = catcher.url;
  process.env[TEST_ENV.mailDir] = catcher.dir;
  process.env[TEST_ENV.workflowBundle] = bundlePath;
  process.env[TEST_ENV.testServer] = testServer;
  process.env[TEST_ENV.stripeApiBase] = stripe.apiBase;
}
