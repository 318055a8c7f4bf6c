// Builds the billops worker from a connection, a task queue and its dependencies: used by `npm start`, tests and embedders.
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities, type ActivityDependencies } from '../activities';
import { TemporalUnreachableError, tlsFor, type TemporalTarget } from '../temporal/connection';

export const workflowsPath = require.resolve('../workflows');

export interface BillopsWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  deps: ActivityDependencies;
  /** A pre-built bundle (tests bundle once per run); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkflowBundle;
}

export async function createBillopsWorker(opts: BillopsWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath }),
    activities: createActivities(opts.deps),
  });
}

export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({
      address: target.address,
      tls: tlsFor(target),
      apiKey: target.apiKey,
    });
  } catch (err) {
    throw new TemporalUnreachableError(target.address, err);
  }
}
