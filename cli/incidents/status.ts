// The incident view of `billops status`: severity, acknowledgement, escalation, steps, approvals, resolution and
// timeline of one incident workflow.
import type { Client, WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { IncidentStatus, TimelineEntry } from '../../domain/incident';
import { formatMinorUnits } from '../../domain/money';
import { incidentStatusQuery } from '../../workflows/definitions';
import { INCIDENT_WORKFLOW_TYPES } from '../../temporal/incidents';
import { answeredByWorker, printJson } from '../common';
import { shortTime, when } from '../format';

/** Whether a workflow is an incident: one workflow type per incident kind. */
export function isIncidentWorkflowType(type: string): boolean {
  return Object.values(INCIDENT_WORKFLOW_TYPES).includes(type);
}

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

function timelineLine(entry: TimelineEntry): string {
  return [shortTime(entry.at), entry.event.padEnd(18), entry.detail, entry.operator && `by ${entry.operator}`]
    .filter(Boolean)
    .join('  ')
    .trimEnd();
}
