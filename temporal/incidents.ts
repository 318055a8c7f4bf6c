// Starting incidents from outside (alerts, webhooks, the CLI): one workflow type per kind, id `incident-<kind>-<key>`,
// signal-with-start so a re-fired alert or a retried webhook reaches the running incident instead of a second one.
import type { Client, WorkflowHandle } from '@temporalio/client';
import { incidentWorkflowId, type IncidentInput } from '../domain/incident';
import type { IncidentKind } from '../domain/policy';
import { severityOf } from '../domain/escalation';
import {
  IncidentKind as IncidentKindKey,
  PaymentProcessor,
  Severity,
  TenantId,
} from '../domain/searchAttributes';
import { alertFiredSignal } from '../workflows/definitions';

/** The workflow type that handles each kind; seed 000's two extra rows share the workflow of their family. */
export const INCIDENT_WORKFLOW_TYPES: Record<IncidentKind, string> = {
  payment_processor_outage: 'paymentProcessorOutageWorkflow',
  usage_metering_failure: 'usageMeteringFailureWorkflow',
  usage_data_corruption: 'usageMeteringFailureWorkflow',
  billing_system_outage: 'billingSystemOutageWorkflow',
  billing_dashboard_down: 'billingSystemOutageWorkflow',
  overbilling_dispute: 'billingDisputeWorkflow',
  webhook_failure: 'webhookFailureWorkflow',
  refund: 'refundWorkflow',
  subscription_activation_failure: 'subscriptionActivationWorkflow',
  stuck_transactions: 'stuckTransactionsWorkflow',
};

/** A key as it appears in a workflow id: what Temporal and the Web UI take without escaping. */
export function incidentKey(raw: string): string {
  const key = raw
    .trim()
    .replace(/[^A-Za-z0-9._:-]+/g, '_')
    .slice(0, 200);
  if (key === '')
    throw new Error('an incident key must not be empty (an alert fingerprint, a tenant or invoice id)');
  return key;
}

/** Starts the incident, or signals the running one with the same id (`alertFired`); returns its handle. */
export async function startIncident(
  client: Client,
  taskQueue: string,
  input: IncidentInput<unknown>,
): Promise<WorkflowHandle> {
  const key = incidentKey(input.key);
  const workflowId = incidentWorkflowId(input.kind, key);
  const severity = input.severity ?? severityOf(input.policy, input.kind).severity;
  const tenant = input.tenantIds?.length === 1 ? input.tenantIds[0] : undefined;
  const processor = (input.params as { processor?: unknown } | undefined)?.processor;
  return client.workflow.signalWithStart(INCIDENT_WORKFLOW_TYPES[input.kind], {
    workflowId,
    taskQueue,
    args: [{ ...input, key }],
    signal: alertFiredSignal,
    // The input rides along: a re-fire after the incident was resolved opens a new occurrence with it.
    signalArgs: [{ fingerprint: input.alert?.fingerprint ?? key, input: { ...input, key } }],
    typedSearchAttributes: [
      { key: IncidentKindKey, value: input.kind },
      { key: Severity, value: severity },
      ...(tenant ? [{ key: TenantId, value: tenant }] : []),
      ...(typeof processor === 'string' ? [{ key: PaymentProcessor, value: processor }] : []),
    ],
    staticSummary: `${severity} ${input.kind.replaceAll('_', ' ')} · ${input.summary}`.slice(0, 400),
    staticDetails: `Opened by ${input.openedBy} (${input.source}); policy ${input.policy.version}`,
  });
}

/** Every incident workflow type, for visibility queries (`billops incidents`). */
export function incidentQuery(filter?: string): string {
  const types = [...new Set(Object.values(INCIDENT_WORKFLOW_TYPES))].map((t) => `'${t}'`).join(', ');
  const base = `WorkflowType IN (${types})`;
  return filter ? `${base} AND (${filter})` : base;
}
