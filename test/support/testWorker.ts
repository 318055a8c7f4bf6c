// A billops worker on the shared dev server for one suite's task queue, with a client, and one call to stop both.
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createBillopsWorker } from '../../workers/createWorker';
import type { WorkerDependencies } from '../../workers/dependencies';
import { testEnv, workflowBundle } from './testRuntime';
import { testWorkerDependencies, type TestWorkerOptions } from './workerDeps';

export interface TestWorker {
  deps: WorkerDependencies;
  client: Client;
  stop(): Promise<void>;
}

export async function startTestWorker(taskQueue: string, opts: TestWorkerOptions = {}): Promise<TestWorker> {
  const deps = testWorkerDependencies(opts);
  const nativeConnection = await NativeConnection.connect({ address: testEnv('temporalAddress') });
  const client = new Client({
    connection: await Connection.connect({ address: testEnv('temporalAddress') }),
  });
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
