// `billops incidents|incident start|ack|resolve|approve|rca`, and the incident view of `billops status`: the incident
// workflows listed through their search attributes, opened by hand, and steered through their updates.
import { parseArgs } from 'node:util';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import { formatDuration } from '../domain/dunning';
import type { IncidentInput, IncidentPhase, IncidentStatus, TimelineEntry } from '../domain/incident';
import { incidentWorkflowId } from '../domain/incident';
import { formatMinorUnits } from '../domain/money';
import { INCIDENT_KINDS, SEVERITIES, type IncidentKind, type Severity } from '../domain/policy';
import {
  IncidentKind as IncidentKindKey,
  PaymentProcessor,
  Severity as SeverityKey,
  TenantId,
} from '../domain/searchAttributes';
import {
  acknowledgeUpdate,
  approveStepUpdate,
  incidentStatusQuery,
  recordRootCauseUpdate,
  resolveUpdate,
} from '../workflows/definitions';
import { loadPolicyForConfig } from '../config/load';
import { INCIDENT_WORKFLOW_TYPES, incidentKey, incidentQuery, startIncident } from '../temporal/incidents';
import {
  answeredByWorker,
  cliConfig,
  columns,
  describeWorkflow,
  notFound,
  oneOf,
  onePositional,
  operatorName,
  printJson,
  RefusedError,
  required,
  runningWorkflow,
  UsageError,
  withDatabase,
  withTemporal,
} from './common';

const PHASES: readonly IncidentPhase[] = ['open', 'acknowledged', 'resolved', 'closed'];
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isIncidentWorkflowType(type: string): boolean {
  return Object.values(INCIDENT_WORKFLOW_TYPES).includes(type);
}

function severityFlag(value: string | undefined): Severity | undefined {
  if (value === undefined) return undefined;
  const match = SEVERITIES.find((s) => s === value.trim().toUpperCase());
  if (!match)
    throw new UsageError(`--severity must be one of ${SEVERITIES.join(', ')} (got ${JSON.stringify(value)})`);
  return match;
}

function kindArgument(value: string | undefined, what: string): IncidentKind {
  const kind = oneOf(required(value, what), INCIDENT_KINDS, what);
  return kind!;
}

// ---- billops incidents ----

interface ListedIncident {
  workflowId: string;
  runId: string;
  workflowType: string;
  execution: string;
  kind: string | null;
  severity: string | null;
  tenantId: string | null;
  processor: string | null;
  /** From the status query; a completed workflow is `closed`; null when no worker answered. */
  phase: string | null;
  acknowledgedBy: string | null;
  escalationLevel: number | null;
  summary: string | null;
  startedAt: string;
}

/** Incidents through a visibility query over IncidentKind, Severity and TenantId; the phase from each one's status. */
export async function incidentsList(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      kind: { type: 'string' },
      tenant: { type: 'string' },
      severity: { type: 'string' },
      phase: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const kind = oneOf(values.kind, INCIDENT_KINDS, '--kind');
  const severity = severityFlag(values.severity);
  const phase = oneOf(values.phase, PHASES, '--phase');
  if (values.tenant !== undefined && !TENANT_ID.test(values.tenant)) {
    throw new UsageError(`--tenant must be a tenant id (got ${JSON.stringify(values.tenant)})`);
  }
  // Open, acknowledged and resolved incidents are running workflows (a resolved one waits for its root cause); a
  // closed one has completed. --all adds every ended execution, terminated or failed ones too.
  const execution =
    phase === 'closed'
      ? `ExecutionStatus = 'Completed'`
      : phase !== undefined || !values.all
        ? `ExecutionStatus = 'Running'`
        : undefined;
  const filter = [
    execution,
    kind && `IncidentKind = '${kind}'`,
    severity && `Severity = '${severity}'`,
    values.tenant && `TenantId = '${values.tenant}'`,
  ]
    .filter(Boolean)
    .join(' AND ');

  const found = await withTemporal(async (client) => {
    const listed: ListedIncident[] = [];
    for await (const ex of client.workflow.list({ query: incidentQuery(filter || undefined) })) {
      const attribute = ex.typedSearchAttributes;
      listed.push({
        workflowId: ex.workflowId,
        runId: ex.runId,
        workflowType: ex.type,
        execution: ex.status.name.toLowerCase(),
        kind: attribute.get(IncidentKindKey) ?? null,
        severity: attribute.get(SeverityKey) ?? null,
        tenantId: attribute.get(TenantId) ?? null,
        processor: attribute.get(PaymentProcessor) ?? null,
        phase: ex.status.name === 'COMPLETED' ? 'closed' : null,
        acknowledgedBy: null,
        escalationLevel: null,
        summary: null,
        startedAt: ex.startTime.toISOString(),
      });
    }
    // The phase lives in the workflow, not in a search attribute: ask each running one.
    const unanswered: string[] = [];
    await Promise.all(
      listed
        .filter((l) => l.execution === 'running')
        .map(async (l) => {
          try {
            const handle = client.workflow.getHandle(l.workflowId, l.runId);
            const s = await client.connection.withDeadline(Date.now() + 10_000, () =>
              handle.query(incidentStatusQuery),
            );
            Object.assign(l, {
              phase: s.phase,
              acknowledgedBy: s.acknowledgedBy,
              escalationLevel: s.escalationLevel,
              summary: s.summary,
            });
          } catch {
            unanswered.push(l.workflowId);
          }
        }),
    );
    if (unanswered.length > 0) {
      if (phase !== undefined) {
        throw new RefusedError(
          `no worker answered the status query of ${unanswered.join(', ')}, so their phase is unknown: ` +
            `is a billops worker polling task queue ${cliConfig().taskQueue}?`,
        );
      }
      console.error(
        `phase unknown for ${unanswered.length} incidents: no worker answered their status query`,
      );
    }
    return listed.filter((l) => phase === undefined || l.phase === phase);
  });

  if (values.json) printJson(found);
  else if (found.length === 0) console.log('no incidents match');
  else {
    const header = [
      'WORKFLOW ID',
      'KIND',
      'SEVERITY',
      'PHASE',
      'ACKNOWLEDGED BY',
      'LEVEL',
      'TENANT',
      'OPENED',
    ];
    const rows = found.map((l) =>
      [
        l.workflowId,
        l.kind,
        l.severity,
        l.phase ?? (l.execution === 'running' ? '?' : l.execution),
        l.acknowledgedBy,
        l.escalationLevel === null ? null : String(l.escalationLevel),
        l.tenantId,
        l.startedAt,
      ].map((cell) => cell ?? '-'),
    );
    for (const line of columns([header, ...rows])) console.log(line);
  }
  return 0;
}

// ---- billops status <incident workflow id> ----

export async function printIncidentStatus(
  client: Client,
  handle: WorkflowHandle,
  description: WorkflowExecutionDescription,
  json: boolean | undefined,
): Promise<number> {
  const status = await answeredByWorker(client, description, { what: 'the status query' }, () =>
    handle.query(incidentStatusQuery),
  );
  if (json) printJson(status);
  else {
    const execution = description.status.name.toLowerCase();
    for (const line of incidentStatusView(description.workflowId, execution, status, Date.now()))
      console.log(line);
  }
  return 0;
}

export function incidentStatusView(
  workflowId: string,
  execution: string,
  s: IncidentStatus,
  now: number,
): string[] {
  const acknowledged = s.acknowledgedBy
    ? `by ${s.acknowledgedBy} at ${shortTime(s.acknowledgedAt!)}`
    : s.resolution
      ? 'no'
      : `no: paging level ${s.escalationLevel} (${s.escalationLevelName})` +
        (s.nextEscalationAt ? `, next level ${when(s.nextEscalationAt, now)}` : '');
  const waiting = s.waitingForApproval
    ? `${s.waitingForApproval.step}: ${s.waitingForApproval.question} (since ${shortTime(s.waitingForApproval.since)}; ` +
      `billops approve ${workflowId} --step "${s.waitingForApproval.step}")`
    : 'none';
  return [
    `${workflowId} (${execution})`,
    `  incident      ${s.kind}, key ${s.key}`,
    `  summary       ${s.summary}`,
    `  severity      ${s.severity} (${s.severityName})`,
    `  phase         ${s.phase}`,
    `  opened        ${shortTime(s.openedAt)} by ${s.openedBy} (${s.source})`,
    `  acknowledged  ${acknowledged}`,
    `  paused        ${s.paused ? 'yes' : 'no'}`,
    `  current step  ${s.currentStep ?? '-'}`,
    `  approval      ${waiting}`,
    `  alert         ${s.alertResolvedAt ? `resolved at ${shortTime(s.alertResolvedAt)}` : s.source === 'alertmanager' ? 'firing' : '-'}`,
    `  resolution    ${s.resolution ? `${shortTime(s.resolution.at)} by ${s.resolution.by}: ${s.resolution.summary}` : '-'}`,
    `  root cause    ${s.rcaRecorded ? 'recorded' : s.resolution ? `not yet (billops rca ${workflowId} --summary ...)` : '-'}`,
    `  tenants       ${s.tenantsAffected} affected`,
    `  credits       ${s.credits ? formatMinorUnits(s.credits.amountMinor, s.credits.currency) : '-'}`,
    '  steps done',
    ...(s.stepsDone.length === 0
      ? ['    none yet']
      : s.stepsDone.map((step) =>
          `    ${shortTime(step.at)}  ${step.name}${step.detail ? `: ${step.detail}` : ''}`.trimEnd(),
        )),
    '  timeline',
    ...s.timeline.map((entry) => `    ${timelineLine(entry)}`),
  ];
}

function when(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const relative =
    Math.abs(ms) < 60_000 ? 'now' : ms > 0 ? `in ${formatDuration(ms)}` : `${formatDuration(-ms)} ago`;
  return `${shortTime(iso)} (${relative})`;
}

function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function timelineLine(entry: TimelineEntry): string {
  return [shortTime(entry.at), entry.event.padEnd(18), entry.detail, entry.operator && `by ${entry.operator}`]
    .filter(Boolean)
    .join('  ')
    .trimEnd();
}

// ---- billops ack|resolve|approve|rca ----

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

// ---- billops incident start ----

/** `--param name=value`: the value as JSON where it parses (numbers, lists, true), else the text itself. */
function parseParams(raw: string[]): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const item of raw) {
    const eq = item.indexOf('=');
    const name = eq > 0 ? item.slice(0, eq).trim() : '';
    if (!PARAM_NAME.test(name))
      throw new UsageError(`--param must be name=value (got ${JSON.stringify(item)})`);
    const text = item.slice(eq + 1);
    try {
      params[name] = JSON.parse(text);
    } catch {
      params[name] = text;
    }
  }
  return params;
}

export async function incidentStart(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...steerFlags,
      key: { type: 'string' },
      summary: { type: 'string' },
      tenant: { type: 'string', multiple: true },
      severity: { type: 'string' },
      param: { type: 'string', multiple: true },
    },
  });
  const kind = kindArgument(onePositional(positionals, '<kind>'), '<kind>');
  let key: string;
  try {
    key = incidentKey(required(values.key, '--key K'));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const summary = required(values.summary, '--summary TEXT');
  const tenants = values.tenant ?? [];
  for (const t of tenants)
    if (!TENANT_ID.test(t)) throw new UsageError(`--tenant must be a tenant id (got ${JSON.stringify(t)})`);
  const severity = severityFlag(values.severity);
  const params = parseParams(values.param ?? []);
  const operator = operatorName(values.operator);
  const config = cliConfig();
  const input: IncidentInput<unknown> = {
    kind,
    key,
    summary,
    source: 'operator',
    openedBy: operator,
    ...(severity ? { severity } : {}),
    ...(tenants.length > 0 ? { tenantIds: tenants } : {}),
    params,
    policy: loadPolicyForConfig(config),
  };
  const workflowId = incidentWorkflowId(kind, key);
  return withTemporal(async (client) => {
    const before = await runningRunId(client, workflowId);
    const handle = await startIncident(client, config.taskQueue, input);
    const { runId } = await handle.describe();
    const outcome = runId === before ? 'joined' : 'started';
    if (values.json)
      printJson({ outcome, workflowId, runId, kind, key, workflowType: INCIDENT_WORKFLOW_TYPES[kind] });
    else if (outcome === 'started')
      console.log(`started ${workflowId} (run ${runId}): ${kind.replaceAll('_', ' ')}, ${summary}`);
    else console.log(`joined ${workflowId} (run ${runId}): already open; its timeline records it`);
    return 0;
  });
}

async function runningRunId(client: Client, workflowId: string): Promise<string | undefined> {
  try {
    const description = await client.workflow.getHandle(workflowId).describe();
    return description.status.name === 'RUNNING' ? description.runId : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}
