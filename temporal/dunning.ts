// Starting and steering dunning lifecycles from outside: signal-with-start per tenant, and mass actions over a visibility query.
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { DunningInput, FailedInvoice, GraceExtension } from '../domain/dunning';
import { BillingTier, DunningPhase, PaymentProcessor, TenantId } from '../domain/searchAttributes';
import type { OperatorAction } from '../workflows/definitions';
import { extendGraceSignal, pauseSignal, paymentFailedSignal, resumeSignal } from '../workflows/definitions';
import type { dunningWorkflow } from '../workflows/dunning';

export const dunningWorkflowId = (tenantId: string) => `dunning-${tenantId}`;

const TIER_NAMES = { free: 'Free', pro: 'Pro', enterprise: 'Enterprise' } as const;

/**
 * A failed payment: starts the tenant's lifecycle, or joins the running one (signal-with-start on dunning-<tenantId>),
 * so a second failed invoice never starts a second workflow.
 */
export async function startOrJoinDunning(
  client: Client,
  taskQueue: string,
  input: DunningInput,
): Promise<WorkflowHandle<typeof dunningWorkflow>> {
  const invoice: FailedInvoice = input.invoice;
  return client.workflow.signalWithStart<typeof dunningWorkflow, [FailedInvoice]>('dunningWorkflow', {
    workflowId: dunningWorkflowId(input.tenantId),
    taskQueue,
    args: [input],
    signal: paymentFailedSignal,
    signalArgs: [invoice],
    typedSearchAttributes: [
      { key: TenantId, value: input.tenantId },
      { key: BillingTier, value: input.tier },
      { key: PaymentProcessor, value: input.processor },
      { key: DunningPhase, value: 'retrying' },
    ],
    staticSummary: `Dunning · ${input.tenantName ?? input.tenantId} (${TIER_NAMES[input.tier]}) · ${input.processor}`,
    staticDetails: `Policy ${input.policy.version}; first failed invoice ${invoice.invoiceId}`,
  });
}

export interface MassActionReport {
  jobId: string;
  query: string;
  /** Workflows the visibility query selected. */
  selected: number;
  /** Workflows the signal reached. */
  reached: number;
  failed: number;
}

type MassSignal =
  | { kind: 'extendGrace'; extension: GraceExtension }
  | { kind: 'pause'; action: OperatorAction }
  | { kind: 'resume'; action: OperatorAction };

/** Every running dunning lifecycle, narrowed by an operator's visibility filter (for example `PaymentProcessor = 'stripe'`). */
export function dunningQuery(filter?: string): string {
  const base = `WorkflowType = 'dunningWorkflow' AND ExecutionStatus = 'Running'`;
  return filter ? `${base} AND (${filter})` : base;
}

/**
 * Signals every lifecycle the query selects through a server-side batch operation, which scales to tens of thousands of
 * workflows, and waits for the server to report how many it reached.
 */
export async function signalDunningWhere(
  client: Client,
  filter: string | undefined,
  signal: MassSignal,
  opts: { timeoutMs?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<MassActionReport> {
  const query = dunningQuery(filter);
  const { name, arg, operator, reason } =
    signal.kind === 'extendGrace'
      ? {
          name: extendGraceSignal.name,
          arg: signal.extension,
          operator: signal.extension.operator,
          reason: signal.extension.reason,
        }
      : {
          name: (signal.kind === 'pause' ? pauseSignal : resumeSignal).name,
          arg: signal.action,
          operator: signal.action.operator,
          reason: signal.action.reason ?? signal.kind,
        };
  const jobId = `billops-${signal.kind}-${randomUUID()}`;
  const service = client.workflowService;
  const namespace = client.options.namespace;
  await service.startBatchOperation({
    namespace,
    jobId,
    visibilityQuery: query,
    reason: `${signal.kind} by ${operator}: ${reason}`,
    signalOperation: {
      signal: name,
      input: { payloads: [defaultPayloadConverter.toPayload(arg)] },
      identity: operator,
    },
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 10 * 60_000);
  const done = temporal.api.enums.v1.BatchOperationState;
  for (;;) {
    const d = await service.describeBatchOperation({ namespace, jobId });
    const total = Number(d.totalOperationCount ?? 0);
    const complete = Number(d.completeOperationCount ?? 0);
    const failed = Number(d.failureOperationCount ?? 0);
    opts.onProgress?.(complete + failed, total);
    if (d.state === done.BATCH_OPERATION_STATE_COMPLETED || d.state === done.BATCH_OPERATION_STATE_FAILED) {
      return { jobId, query, selected: total, reached: complete, failed };
    }
    if (Date.now() > deadline) {
      throw new Error(
        `batch operation ${jobId} still running after its wait; follow it with: temporal batch describe --job-id ${jobId}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
