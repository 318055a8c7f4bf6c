// `billops webhooks retry --hours N`: the runbook's "force retry failed webhooks", over paymentEvents/replay.ts.
import { parseArgs } from 'node:util';
import { loadPolicyForConfig } from '../config/load';
import type { ReplayReport } from '../paymentEvents/replay';
import {
  cliConfig,
  columns,
  positiveWholeNumber,
  printJson,
  required,
  withDatabase,
  withTemporal,
} from './common';
import { shortTime } from './format';

/** Exit 0 when every retried event was dealt with (expired ones are reported, not retried); 1 when any still fails. */
export async function webhooksRetry(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { hours: { type: 'string' }, json: { type: 'boolean' } },
  });
  const hours = positiveWholeNumber(required(values.hours, '--hours N'), '--hours');
  const config = cliConfig();
  const policy = loadPolicyForConfig(config);
  const { retryFailedWebhooks } = await import('../paymentEvents/replay');

  const report = await withDatabase((pool) =>
    withTemporal((client) =>
      retryFailedWebhooks(
        { pool, client, taskQueue: config.taskQueue, policy, billingPortalUrl: config.billingPortalUrl },
        { hours },
      ),
    ),
  );
  if (values.json) printJson(report);
  else for (const line of retryView(report)) console.log(line);
  return report.totals.failing > 0 ? 1 : 0;
}

export function retryView(r: ReplayReport): string[] {
  const scope = `failed webhook events received in the last ${r.hours} h (since ${shortTime(r.since)})`;
  if (r.events.length === 0) return [`no ${scope}: nothing to retry`];
  const header = ['PROVIDER', 'EVENT', 'TYPE', 'RECEIVED', 'OUTCOME', 'DETAIL'];
  const rows = r.events.map((e) => [
    e.provider,
    e.eventKey,
    e.eventType,
    shortTime(e.receivedAt),
    e.outcome,
    [e.workflowId, e.reason].filter(Boolean).join('; ') || '-',
  ]);
  const { ok, failing, expired, skipped } = r.totals;
  return [
    `${r.events.length} ${scope}:`,
    ...columns([header, ...rows]).map((line) => `  ${line}`),
    `retried ok: ${ok}, still failing: ${failing}, expired: ${expired} ` +
      `(older than the ${r.retryWindowDays}-day retry window, not retried)` +
      (skipped > 0 ? `, skipped: ${skipped} (taken by a live delivery)` : ''),
  ];
}
