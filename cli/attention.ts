// `billops dunning retry|skip|approve-deletion` and `billops retry|skip`: move on a step that waits for a person.
import { parseArgs } from 'node:util';
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { AttentionWait } from '../domain/attention';
import { dunningWorkflowId } from '../temporal/dunning';
import { approveDeletionUpdate, retryNowSignal, skipStepUpdate } from '../workflows/definitions';
import {
  answeredByWorker,
  onePositional,
  operatorName,
  printJson,
  RefusedError,
  required,
  runningWorkflow,
  withTemporal,
} from './common';

const flags = {
  operator: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `dunning retry <tenantId>`: the tenant's lifecycle tries its waiting step (or its next retry) now. */
export async function dunningRetry(args: string[]): Promise<number> {
  return retryNow(args, '<tenantId>', dunningWorkflowId);
}

/** `retry <workflowId>`: the same for any billops workflow (an incident's refused status page, say). */
export async function retryStep(args: string[]): Promise<number> {
  return retryNow(args, '<workflowId>', (id) => id);
}

export async function dunningSkip(args: string[]): Promise<number> {
  return skip(args, '<tenantId>', dunningWorkflowId);
}

export async function skipStep(args: string[]): Promise<number> {
  return skip(args, '<workflowId>', (id) => id);
}

/** `dunning approve-deletion <tenantId> --reason`: the day-111 deletion a policy holds for an operator goes ahead. */
export async function dunningApproveDeletion(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: flags });
  const workflowId = dunningWorkflowId(onePositional(positionals, '<tenantId>'));
  const request = { operator: operatorName(values.operator), reason: required(values.reason, '--reason') };
  return withTemporal(async (client) => {
    await refusedAsError(() =>
      update(client, workflowId, 'the approveDeletion update', (handle) =>
        handle.executeUpdate(approveDeletionUpdate, { args: [request] }),
      ),
    );
    if (values.json) printJson({ workflowId, approvedBy: request.operator, reason: request.reason });
    else console.log(`approved the deletion of ${workflowId} (by ${request.operator}: ${request.reason})`);
    return 0;
  });
}

async function retryNow(args: string[], what: string, toWorkflowId: (id: string) => string): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: flags });
  const workflowId = toWorkflowId(onePositional(positionals, what));
  const operator = operatorName(values.operator);
  return withTemporal(async (client) => {
    const { handle } = await runningWorkflow(client, workflowId);
    const waiting = await waitingStep(handle);
    await handle.signal(retryNowSignal, { operator, reason: values.reason });
    if (values.json) printJson({ workflowId, signal: 'retryNow', operator, waiting });
    else if (waiting) console.log(`asked ${workflowId} to try ${waiting.step} again now (by ${operator})`);
    else if (workflowId.startsWith('dunning-'))
      console.log(
        `asked ${workflowId} to retry its open invoices now (by ${operator}); the result shows in billops status ${workflowId}`,
      );
    else console.log(`${workflowId} has no step waiting for attention; nothing to retry`);
    return 0;
  });
}

async function skip(args: string[], what: string, toWorkflowId: (id: string) => string): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: flags });
  const workflowId = toWorkflowId(onePositional(positionals, what));
  const request = { operator: operatorName(values.operator), reason: required(values.reason, '--reason') };
  return withTemporal(async (client) => {
    const skipped = await refusedAsError(() =>
      update(client, workflowId, 'the skipStep update', async (handle) => {
        const waiting = await waitingStep(handle);
        await handle.executeUpdate(skipStepUpdate, { args: [request] });
        return waiting;
      }),
    );
    if (values.json) printJson({ workflowId, skipped, ...request });
    else
      console.log(
        `skipped ${skipped?.step ?? 'the waiting step'} of ${workflowId} (by ${request.operator}: ${request.reason})`,
      );
    return 0;
  });
}

/** What the workflow's status says waits for a person, if anything (every billops status carries `attention`). */
async function waitingStep(handle: WorkflowHandle): Promise<AttentionWait | null> {
  const status = (await handle.query<{ attention?: AttentionWait | null }>('status')) ?? {};
  return status.attention ?? null;
}

async function update<T>(
  client: Client,
  workflowId: string,
  what: string,
  call: (handle: WorkflowHandle) => Promise<T>,
): Promise<T> {
  const { handle, description } = await runningWorkflow(client, workflowId);
  return answeredByWorker(client, description, { what, mayStillApply: true }, () => call(handle));
}

/** The workflow's validator refused: its message is the reason, exit 1. */
async function refusedAsError<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError)
      throw new RefusedError(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}
