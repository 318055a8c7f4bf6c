// Starting and steering dunning lifecycles from outside: signal-with-start per tenant, and mass actions over a visibility query.
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { DunningInput, FailedInvoice, GraceExtension } from '../domain/dunning';
import { BillingTier, DunningPhase, PaymentProcessor, TenantId } from '../domain/searchAttributes';
import type { OperatorAction } from '../workflows/definitions';
import {
  extendGraceSignal,
  pauseSignal,
  paymentFailedSignal,
  paymentSucceededSignal,
  resumeSignal,
} from '../workflows/definitions';
import type { dunningWorkflow } from '../workflows/dunning';
import { GRPC, grpcCode, stableId } from './grpc';

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

export type MassSignal =
  | { kind: 'extendGrace'; extension: GraceExtension }
  | { kind: 'pause'; action: OperatorAction }
  | { kind: 'resume'; action: OperatorAction };

/** Which lifecycles a mass signal reaches: every running one a visibility filter selects, or these workflow ids. */
export type DunningTargets = { where: string | undefined } | { workflowIds: string[] };

export interface MassSignalOptions {
  /**
   * Names the batch jobs (and, without batch operations, each signal's request id), so a repeated call with the same
   * key reaches no lifecycle twice: it finds its jobs started and waits for them. Absent: a fresh job id per call.
   */
  idempotencyKey?: string;
  /** Part of the job id that says who asked, e.g. `outage` for an incident's mass action. */
  requestedBy?: string;
  /** How long to wait for the server to finish; then a retryable BatchStillRunning failure names the job. */
  waitMs?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface MassSignalReport {
  /** batch: server-side batch operations; signals: one signal per lifecycle (a server without batch operations). */
  via: 'batch' | 'signals' | 'none';
  jobIds: string[];
  query: string;
  selected: number;
  reached: number;
  failed: number;
}

/** Every running dunning lifecycle, narrowed by an operator's visibility filter (for example `PaymentProcessor = 'stripe'`). */
export function dunningQuery(filter?: string): string {
  const base = `WorkflowType = 'dunningWorkflow' AND ExecutionStatus = 'Running'`;
  return filter ? `${base} AND (${filter})` : base;
}

// A list of ids goes to the server in chunks, each one batch job, so a visibility query stays within its size limit.
const ID_CHUNK = 100;
const POLL_MS = 500;
const DEFAULT_WAIT_MS = 10 * 60_000;

function signalPayload(signal: MassSignal): { name: string; arg: unknown; operator: string; reason: string } {
  if (signal.kind === 'extendGrace') {
    const { extension } = signal;
    return {
      name: extendGraceSignal.name,
      arg: extension,
      operator: extension.operator,
      reason: extension.reason,
    };
  }
  const { action } = signal;
  const name = (signal.kind === 'pause' ? pauseSignal : resumeSignal).name;
  return { name, arg: action, operator: action.operator, reason: action.reason ?? signal.kind };
}

/**
 * The one dunning mass signal: server-side batch operations over a visibility query (which scale to tens of thousands
 * of workflows), waiting for the server to report how many it reached. A list of ids on a server without batch
 * operations falls back to one signal per lifecycle.
 */
export async function signalDunning(
  client: Client,
  targets: DunningTargets,
  signal: MassSignal,
  opts: MassSignalOptions = {},
): Promise<MassSignalReport> {
  const byIds = 'workflowIds' in targets;
  if (byIds && targets.workflowIds.length === 0) {
    return { via: 'none', jobIds: [], query: dunningQuery('false'), selected: 0, reached: 0, failed: 0 };
  }
  const queries = byIds
    ? chunks(targets.workflowIds, ID_CHUNK).map((ids) =>
        dunningQuery(`WorkflowId IN (${ids.map((id) => `'${id}'`).join(', ')})`),
      )
    : [dunningQuery(targets.where)];
  try {
    return await signalByBatch(client, queries, signal, opts);
  } catch (error) {
    if (!byIds || grpcCode(error) !== GRPC.unimplemented) throw error;
    return signalEach(client, targets.workflowIds, signal, opts.idempotencyKey ?? randomUUID());
  }
}

/** The mass signal over an operator's visibility filter, reported as one batch job. */
export async function signalDunningWhere(
  client: Client,
  filter: string | undefined,
  signal: MassSignal,
  opts: { timeoutMs?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<MassActionReport> {
  const report = await signalDunning(client, { where: filter }, signal, {
    waitMs: opts.timeoutMs,
    onProgress: opts.onProgress,
  });
  const { selected, reached, failed, query } = report;
  return { jobId: report.jobIds[0] ?? '', query, selected, reached, failed };
}

async function signalByBatch(
  client: Client,
  queries: string[],
  signal: MassSignal,
  opts: MassSignalOptions,
): Promise<MassSignalReport> {
  const { name, arg, operator, reason } = signalPayload(signal);
  const service = client.workflowService;
  const namespace = client.options.namespace;
  const prefix = opts.requestedBy ? `billops-${opts.requestedBy}-${signal.kind}` : `billops-${signal.kind}`;
  const jobIds: string[] = [];
  for (const [i, visibilityQuery] of queries.entries()) {
    const jobId = `${prefix}-${opts.idempotencyKey ? stableId(`${opts.idempotencyKey}/${i * ID_CHUNK}`) : randomUUID()}`;
    try {
      await service.startBatchOperation({
        namespace,
        jobId,
        visibilityQuery,
        reason: `${signal.kind} by ${operator}: ${reason}`,
        signalOperation: {
          signal: name,
          input: { payloads: [defaultPayloadConverter.toPayload(arg)] },
          identity: operator,
        },
      });
    } catch (error) {
      // A repeated call with the same key: its job is already there, so wait for it instead of signalling again.
      if (!opts.idempotencyKey || grpcCode(error) !== GRPC.alreadyExists) throw error;
    }
    jobIds.push(jobId);
  }
  const report: MassSignalReport = {
    via: 'batch',
    jobIds,
    query: queries.length === 1 ? queries[0]! : dunningQuery(),
    selected: 0,
    reached: 0,
    failed: 0,
  };
  const states = temporal.api.enums.v1.BatchOperationState;
  const deadline = Date.now() + (opts.waitMs ?? DEFAULT_WAIT_MS);
  for (const jobId of jobIds) {
    for (;;) {
      const d = await service.describeBatchOperation({ namespace, jobId });
      const total = Number(d.totalOperationCount ?? 0);
      const complete = Number(d.completeOperationCount ?? 0);
      const failed = Number(d.failureOperationCount ?? 0);
      opts.onProgress?.(report.reached + report.failed + complete + failed, report.selected + total);
      if (
        d.state === states.BATCH_OPERATION_STATE_COMPLETED ||
        d.state === states.BATCH_OPERATION_STATE_FAILED
      ) {
        report.selected += total;
        report.reached += complete;
        report.failed += failed;
        break;
      }
      if (Date.now() > deadline) {
        throw ApplicationFailure.retryable(
          `batch operation ${jobId} is still running after its wait; follow it with: temporal batch describe --job-id ${jobId}`,
          'BatchStillRunning',
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  return report;
}

/** One signal per lifecycle, each with a request id the server deduplicates on a repeated call. */
async function signalEach(
  client: Client,
  workflowIds: string[],
  signal: MassSignal,
  idempotencyKey: string,
): Promise<MassSignalReport> {
  const { name, arg, operator } = signalPayload(signal);
  const report: MassSignalReport = {
    via: 'signals',
    jobIds: [],
    query: dunningQuery(),
    selected: workflowIds.length,
    reached: 0,
    failed: 0,
  };
  for (const workflowId of workflowIds) {
    try {
      await client.workflowService.signalWorkflowExecution({
        namespace: client.options.namespace,
        workflowExecution: { workflowId },
        signalName: name,
        input: { payloads: [defaultPayloadConverter.toPayload(arg)] },
        identity: operator,
        requestId: stableId(`${idempotencyKey}/${workflowId}`),
      });
      report.reached++;
    } catch (error) {
      // A lifecycle that ended meanwhile has nothing left to steer.
      if (grpcCode(error) !== GRPC.notFound) throw error;
      report.failed++;
    }
  }
  return report;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A payment the processor confirmed, for the tenant's running lifecycle (the workflow checks it against the database). */
export async function signalPaymentSucceeded(
  client: Client,
  tenantId: string,
  payment: { invoiceId: string; reference?: string },
): Promise<void> {
  await client.workflow.getHandle(dunningWorkflowId(tenantId)).signal(paymentSucceededSignal, payment);
}
