// `billops status <workflowId>`: a lifecycle's phase, deadlines, next action and timeline, for a person or (--json) a script.
import { describeAttention } from '../domain/attention';
import { parseArgs } from 'node:util';
import type { DunningStatus, TimelineEntry } from '../domain/dunning';
import { formatMinorUnits } from '../domain/money';
import { dunningStatusQuery } from '../workflows/definitions';
import { answeredByWorker, describeWorkflow, onePositional, printJson, withTemporal } from './common';
import { shortTime, when } from './format';

export async function status(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { json: { type: 'boolean' } },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  return withTemporal(async (client) => {
    const { handle, description } = await describeWorkflow(client, workflowId);
    const execution = description.status.name.toLowerCase();
    const incidents = await import('./incidents/status');
    if (incidents.isIncidentWorkflowType(description.type)) {
      return incidents.printIncidentStatus(client, handle, description, values.json);
    }
    if (description.type !== 'dunningWorkflow') {
      // Other workflow types answer the same `status` query name with their own shape.
      const answer: unknown = await answeredByWorker(client, description, { what: 'the status query' }, () =>
        handle.query('status'),
      );
      if (values.json) printJson(answer);
      else
        console.log(`${workflowId} (${description.type}, ${execution})\n${JSON.stringify(answer, null, 2)}`);
      return 0;
    }
    const dunning = await answeredByWorker(client, description, { what: 'the status query' }, () =>
      handle.query(dunningStatusQuery),
    );
    if (values.json) printJson(dunning);
    else for (const line of statusView(workflowId, execution, dunning, Date.now())) console.log(line);
    return 0;
  });
}

export function statusView(workflowId: string, execution: string, s: DunningStatus, now: number): string[] {
  const d = s.deadlines;
  const next = s.nextAction
    ? `${s.nextAction.step} ${when(s.nextAction.at, now)}`
    : s.paused
      ? 'none while paused'
      : 'none';
  const invoices = s.outstandingInvoices.map(
    (i) => `${i.invoiceId} ${formatMinorUnits(i.amountMinor, i.currency)}`,
  );
  return [
    `${workflowId} (${execution})`,
    `  tenant       ${s.tenantId} (${s.tier}, ${s.processor}), policy ${s.policyVersion}`,
    `  phase        ${s.phase}`,
    `  paused       ${s.paused ? 'yes' : 'no'}`,
    // Absent from the answer of a lifecycle started before the attention wait existed.
    ...(s.attention ? [`  ATTENTION    ${describeAttention(s.attention)}`] : []),
    `  outstanding  ${invoices.length ? invoices.join(', ') : 'none'}`,
    `  next action  ${next}`,
    '  deadlines',
    `    grace ends   ${when(d.graceEndsAt, now)}`,
    `    warning      ${when(d.warningAt, now)}`,
    `    soft limit   ${when(d.softLimitAt, now)}`,
    `    hard limit   ${when(d.hardLimitAt, now)}`,
    `    suspension   ${when(d.suspensionAt, now)}`,
    `    deletion     ${when(d.deletionAt, now)}`,
    '  timeline',
    ...s.timeline.map((entry) => `    ${timelineLine(entry)}`),
  ];
}

/** One line per entry: time, event, detail, then who did it and why. */
function timelineLine(entry: TimelineEntry): string {
  return [
    shortTime(entry.at),
    entry.event.padEnd(16),
    entry.detail,
    entry.operator && `by ${entry.operator}`,
    entry.reason && `reason: ${entry.reason}`,
  ]
    .filter(Boolean)
    .join('  ')
    .trimEnd();
}
