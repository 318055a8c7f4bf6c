// A billops worker on the shared dev server for one suite's task queue, with a client, and one call to stop both;
// optionally with its payment gateways on the Paystack-shaped fake and stripe-mock.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createStripeGateway, type StripeGatewayOptions } from '../../drivers/stripe';
import { createBillopsWorker } from '../../workers/createWorker';
import type { WorkerDependencies } from '../../workers/dependencies';
import { fakePaystackGateway, startPaystackFake, type PaystackFake } from './paystackFake';
import { testEnv, workflowBundle } from './testRuntime';
import { ownClientDependencies, type OwnClientOptions } from './workerDeps';

export interface TestWorker {
  deps: WorkerDependencies;
  client: Client;
  stop(): Promise<void>;
}

export async function startTestWorker(taskQueue: string, opts: OwnClientOptions = {}): Promise<TestWorker> {
  const client = new Client({
    connection: await Connection.connect({ address: testEnv('temporalAddress') }),
  });
  const deps = ownClientDependencies(opts, client);
  const nativeConnection = await NativeConnection.connect({ address: testEnv('temporalAddress') });
  const worker = await createBillopsWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    deps,
    workflowBundle: workflowBundle(),
  });
  const running = worker.run();
  return {
    deps,
    client,
    async stop() {
      worker.shutdown();
      await running;
      await client.connection.close();
      await nativeConnection.close();
      await deps.close();
    },
  };
}

export interface ProviderTestWorker extends TestWorker {
  /** The Paystack-shaped fake the worker's Paystack gateway reaches; stop() closes it too. */
  paystack: PaystackFake;
}

export interface ProviderTestWorkerOptions extends Omit<OwnClientOptions, 'gateways'> {
  /** The Stripe gateway's key and hooks; its API is stripe-mock unless `apiBase` says otherwise. */
  stripe: StripeGatewayOptions;
}

/** A test worker whose Paystack gateway reaches a Paystack-shaped fake started here, and whose Stripe one stripe-mock. */
export async function startProviderTestWorker(
  taskQueue: string,
  opts: ProviderTestWorkerOptions,
): Promise<ProviderTestWorker> {
  const { stripe, ...rest } = opts;
  const paystack = await startPaystackFake();
  let worker: TestWorker;
  try {
    worker = await startTestWorker(taskQueue, {
      ...rest,
      gateways: {
        paystack: fakePaystackGateway(paystack),
        stripe: createStripeGateway({ apiBase: testEnv('stripeApiBase'), ...stripe }),
      },
    });
  } catch (error) {
    await paystack.close();
    throw error;
  }
  return {
    ...worker,
    paystack,
    async stop() {
      await worker.stop();
      await paystack.close();
    },
  };
}
