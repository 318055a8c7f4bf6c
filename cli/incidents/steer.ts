// `billops ack|resolve|approve|rca`: an operator steering a running incident through its updates; the root cause
// of one that has ended goes straight into its incidents row.
import { parseArgs } from 'node:util';
import {
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import type { IncidentStatus } from '../../domain/incident';
import {
  acknowledgeUpdate,
  approveStepUpdate,
  recordRootCauseUpdate,
  resolveUpdate,
} from '../../workflows/definitions';
import {
  answeredByWorker,
  describeWorkflow,
  notFound,
  onePositional,
  operatorName,
  printJson,
  RefusedError,
  required,
  runningWorkflow,
  withDatabase,
  withTemporal,
} from '../common';
import { shortTime } from '../format';
import { isIncidentWorkflowType } from './status';

/** A running incident workflow; anything else is refused (exit 1). */
async function runningIncident(
  client: Client,
  workflowId: string,
): Promise<{ handle: WorkflowHandle; description: WorkflowExecutionDescription }> {
  const found = await runningWorkflow(client, workflowId);
  if (!isIncidentWorkflowType(found.description.type)) {
    throw new RefusedError(`${workflowId} is a ${found.description.type}, not an incident`);
  }
  return found;
}

/** Runs an update; the workflow's validator refusing it is exit 1 with its reason. */
async function incidentUpdate(
  client: Client,
  description: WorkflowExecutionDescription,
  what: string,
  call: () => Promise<IncidentStatus>,
): Promise<IncidentStatus> {
  try {
    return await answeredByWorker(client, description, { what, mayStillApply: true }, call);
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError)
      throw new RefusedError(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

const steerFlags = { operator: { type: 'string' }, json: { type: 'boolean' } } as const;

export async function ack(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: steerFlags,
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  const operator = operatorName(values.operator);
  return withTemporal(async (client) => {
    const { handle, description } = await runningIncident(client, workflowId);
    const status = await incidentUpdate(client, description, 'the acknowledgeIncident update', () =>
      handle.executeUpdate(acknowledgeUpdate, { args: [{ operator }] }),
    );
    if (values.json) printJson(status);
    else
      console.log(
        `acknowledged ${workflowId} by ${status.acknowledgedBy} at ${shortTime(status.acknowledgedAt!)}; ` +
          `escalation stops at level ${status.escalationLevel} (${status.escalationLevelName})`,
      );
    return 0;
  });
}

export async function resolve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...steerFlags, summary: { type: 'string' } },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  const summary = required(values.summary, '--summary TEXT');
  const operator = operatorName(values.operator);
  return withTemporal(async (client) => {
    const { handle, description } = await runningIncident(client, workflowId);
    const status = await incidentUpdate(client, description, 'the resolveIncident update', () =>
      handle.executeUpdate(resolveUpdate, { args: [{ operator, summary }] }),
    );
    if (values.json) printJson(status);
    else
      console.log(
        `resolved ${workflowId} by ${operator}: ${summary}\n` +
          `the incident now closes (DECISIONS.log, report); record the root cause with: billops rca ${workflowId} --summary ...`,
      );
    return 0;
  });
}

export async function approve(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...steerFlags,
      step: { type: 'string' },
      decline: { type: 'boolean' },
      reason: { type: 'string' },
    },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  const step = required(values.step, '--step NAME');
  const operator = operatorName(values.operator);
  const approved = !values.decline;
  return withTemporal(async (client) => {
    const { handle, description } = await runningIncident(client, workflowId);
    const status = await incidentUpdate(client, description, 'the approveStep update', () =>
      handle.executeUpdate(approveStepUpdate, {
        args: [{ step, approved, operator, ...(values.reason ? { reason: values.reason } : {}) }],
      }),
    );
    if (values.json) printJson(status);
    else console.log(`${approved ? 'approved' : 'declined'} "${step}" of ${workflowId} by ${operator}`);
    return 0;
  });
}

/** The root-cause analysis: through the running workflow, or straight into the incidents row once it has ended. */
export async function rca(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...steerFlags, summary: { type: 'string' } },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  const summary = required(values.summary, '--summary TEXT');
  const operator = operatorName(values.operator);
  const running = await withTemporal(async (client) => {
    let found: { handle: WorkflowHandle; description: WorkflowExecutionDescription };
    try {
      found = await describeWorkflow(client, workflowId);
    } catch (err) {
      // Past the namespace's retention only the incidents row is left.
      if (err instanceof RefusedError) return false;
      throw err;
    }
    const { handle, description } = found;
    if (!isIncidentWorkflowType(description.type))
      throw new RefusedError(`${workflowId} is a ${description.type}, not an incident`);
    if (description.status.name !== 'RUNNING') return false;
    const status = await incidentUpdate(client, description, 'the recordRootCause update', () =>
      handle.executeUpdate(recordRootCauseUpdate, { args: [{ operator, summary }] }),
    );
    if (values.json) printJson(status);
    else console.log(`root cause of ${workflowId} recorded by ${operator}; the incident closes`);
    return true;
  });
  if (running) return 0;

  const row = await withDatabase(async (pool) => {
    const updated = await pool.query<{ rca_at: Date }>(
      `UPDATE incidents SET rca_summary = $2, rca_by = $3, rca_at = now(), updated_at = now()
       WHERE workflow_id = $1 AND rca_summary IS NULL RETURNING rca_at`,
      [workflowId, summary, operator],
    );
    if (updated.rows[0]) return { recordedAt: updated.rows[0].rca_at.toISOString() };
    const existing = await pool.query<{ rca_by: string | null; rca_at: Date | null }>(
      'SELECT rca_by, rca_at FROM incidents WHERE workflow_id = $1',
      [workflowId],
    );
    const found = existing.rows[0];
    if (!found) throw notFound(workflowId);
    throw new RefusedError(
      `refused: a root cause was already recorded by ${found.rca_by} at ${found.rca_at?.toISOString()}`,
    );
  });
  if (values.json) printJson({ workflowId, rcaSummary: summary, rcaBy: operator, rcaAt: row.recordedAt });
  else
    console.log(
      `root cause of ${workflowId} recorded by ${operator} (the workflow has ended: incidents row)`,
    );
  return 0;
}
