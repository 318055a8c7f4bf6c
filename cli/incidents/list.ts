// `billops incidents`: the incident workflows listed through their search attributes, each with its phase from the
// workflow itself.
import { parseArgs } from 'node:util';
import type { IncidentPhase } from '../../domain/incident';
import { INCIDENT_KINDS } from '../../domain/policy';
import {
  IncidentKind as IncidentKindKey,
  PaymentProcessor,
  Severity as SeverityKey,
  TenantId,
} from '../../domain/searchAttributes';
import { incidentStatusQuery } from '../../workflows/definitions';
import { incidentQuery } from '../../temporal/incidents';
import { cliConfig, columns, oneOf, printJson, RefusedError, withTemporal } from '../common';
import { severityFlag, tenantFlag } from '../flags';

const PHASES: readonly IncidentPhase[] = ['open', 'acknowledged', 'resolved', 'closed'];

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
  const tenant = tenantFlag(values.tenant);
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
    tenant && `TenantId = '${tenant}'`,
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
