// `billops incident start`: an operator opening incident-<kind>-<key> by hand, or reaching the one already open.
import { parseArgs } from 'node:util';
import { incidentWorkflowId, type IncidentInput } from '../../domain/incident';
import { INCIDENT_KINDS, type IncidentKind } from '../../domain/policy';
import { loadPolicyForConfig } from '../../config/load';
import { INCIDENT_WORKFLOW_TYPES, incidentKey, startIncident } from '../../temporal/incidents';
import {
  cliConfig,
  oneOf,
  onePositional,
  operatorName,
  printJson,
  required,
  UsageError,
  withTemporal,
  runningRunId,
} from '../common';
import { severityFlag, tenantFlag } from '../flags';

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function kindArgument(value: string | undefined, what: string): IncidentKind {
  const kind = oneOf(required(value, what), INCIDENT_KINDS, what);
  return kind!;
}

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
      operator: { type: 'string' },
      json: { type: 'boolean' },
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
  for (const t of tenants) tenantFlag(t);
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
