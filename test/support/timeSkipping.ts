// A time-skipping test server with billops' search attributes, the suite's worker dependencies, and billops workers on
// it running the workflow bundle built once per run; for incident suites, with the receivers and a Paystack fake too.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { ensureSearchAttributes } from '../../temporal/searchAttributes';
import { createBillopsWorker } from '../../workers/createWorker';
import type { WorkerDependencies } from '../../workers/dependencies';
import { startIncidentReceivers, type IncidentReceivers } from './incidentFixtures';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from './paystackFake';
import { pollUntil } from './poll';
import { testEnv, workflowBundle } from './testRuntime';
import { ownClientDependencies, type OwnClientOptions } from './workerDeps';

export interface TimeSkipping {
  env: TestWorkflowEnvironment;
  deps: WorkerDependencies;
  /** The workflow bundle, for workers of a suite's own making. */
  bundle: { code: string };
  /** A billops worker on `taskQueue`, with the suite's dependencies unless given others. */
  newWorker(taskQueue: string, deps?: WorkerDependencies): Promise<Worker>;
  /** Closes the suite's dependencies and tears the server down. */
  close(): Promise<void>;
}

export async function startTimeSkipping(opts: OwnClientOptions = {}): Promise<TimeSkipping> {
  const bundle = workflowBundle();
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testEnv('testServer') } },
  });
  let deps: WorkerDependencies;
  try {
    await ensureSearchAttributes(env.connection, 'default');
    deps = ownClientDependencies(opts, env.client);
  } catch (error) {
    await env.teardown();
    throw error;
  }
  return {
    env,
    deps,
    bundle,
    newWorker: (taskQueue, workerDeps = deps) =>
      createBillopsWorker({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue,
        deps: workerDeps,
        workflowBundle: bundle,
      }),
    async close() {
      await deps.close();
      await env.teardown();
    },
  };
}

export interface IncidentTimeSkipping extends TimeSkipping {
  /** Stand-ins for PagerDuty, Slack and the status page, wired into the dependencies. */
  receivers: IncidentReceivers;
  /** The Paystack-shaped fake the dependencies' Paystack gateway reaches. */
  paystack: PaystackFake;
}

/** startTimeSkipping for incident suites: the incident receivers and a Paystack-shaped fake, started and closed with it. */
export async function startIncidentTimeSkipping(
  opts: Omit<OwnClientOptions, 'gateways' | 'incidents'> = {},
): Promise<IncidentTimeSkipping> {
  const receivers = await startIncidentReceivers();
  const paystack = await startPaystackFake().catch(async (error: unknown) => {
    await receivers.close();
    throw error;
  });
  const ts = await startTimeSkipping({
    ...opts,
    gateways: { paystack: fakePaystackGateway(paystack) },
    incidents: receivers.incidents,
  }).catch(async (error: unknown) => {
    await paystack.close();
    await receivers.close();
    throw error;
  });
  return {
    ...ts,
    receivers,
    paystack,
    async close() {
      await ts.close();
      await receivers.close();
      await paystack.close();
    },
  };
}

/**
 * Terminates a workflow once no activity of it is in flight: the time-skipping server keeps its clock still while an
 * activity is outstanding, and a terminated workflow's activity stays outstanding until its timeout, which would
 * freeze time for the tests that follow.
 */
export async function terminateWhenIdle(handle: {
  describe(): Promise<{ raw: { pendingActivities?: unknown[] | null } }>;
  terminate(reason?: string): Promise<unknown>;
}): Promise<void> {
  await pollUntil(
    () => handle.describe(),
    (d) => (d.raw.pendingActivities ?? []).length === 0,
    'no activity in flight',
    { timeoutMs: 30_000 },
  );
  await handle.terminate('test done');
}
