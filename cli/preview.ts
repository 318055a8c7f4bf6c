// `billops preview`: the dunning lifecycle a payment failure would run (per tier or tenant), or a running one's rest.
import { parseArgs } from 'node:util';
import type { Client } from '@temporalio/client';
import { loadPolicyForConfig } from '../config/load';
import { describeDatabaseUrl } from '../db/pool';
import { getTenant } from '../db/tenants';
import {
  DunningRefusedError,
  formatDuration,
  type DunningInput,
  type DunningStatus,
} from '../domain/dunning';
import {
  previewLifecycle,
  previewMismatches,
  previewRunningLifecycle,
  stateFromStatus,
  type LifecyclePreview,
  type PreviewStep,
} from '../domain/dunning/preview';
import { BILLING_TIERS, type BillingTier } from '../domain/policy';
import { HOUR_MS } from '../domain/vocabulary';
import { dunningStatusQuery } from '../workflows/definitions';
import {
  answeredByWorker,
  cliConfig,
  columns,
  describeWorkflow,
  oneOf,
  printJson,
  RefusedError,
  requireDatabaseUrl,
  UsageError,
  withDatabase,
  withTemporal,
} from './common';
import { shortTime, when } from './format';

export async function preview(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, tier: { type: 'string' }, json: { type: 'boolean' } },
  });
  const given = [values.tenant, values.tier, ...positionals].filter((v) => v !== undefined);
  if (given.length !== 1 || positionals.length > 1) {
    throw new UsageError(
      'give exactly one of --tier TIER, --tenant ID or a running lifecycle id (dunning-<tenantId>)',
    );
  }
  const now = Date.now();
  const running = positionals[0];
  if (running !== undefined && !running.startsWith('dunning-')) {
    throw new UsageError(`${running} is not a dunning lifecycle id: they read dunning-<tenantId>`);
  }
  const answer = running
    ? await withTemporal((client) => previewOfWorkflow(client, running, now))
    : { preview: await previewOfFailureNow(values.tenant, values.tier, now), mismatches: [] };
  if (values.json) printJson({ ...answer.preview, mismatches: answer.mismatches });
  else
    for (const line of previewView(answer.preview, running, values.tenant !== undefined, now))
      console.log(line);
  for (const problem of answer.mismatches) console.error(`billops: warning: ${problem}`);
  return 0;
}

/** A failure today, under the policy in force (BILLOPS_POLICY_FILE; an invalid file exits 2 listing every problem). */
async function previewOfFailureNow(
  tenantId: string | undefined,
  tierFlag: string | undefined,
  now: number,
): Promise<LifecyclePreview> {
  const policy = loadPolicyForConfig(cliConfig());
  let tier: BillingTier | undefined = oneOf(tierFlag, BILLING_TIERS, '--tier');
  if (tenantId !== undefined) {
    if (!tenantId.trim()) throw new UsageError('--tenant needs a tenant id');
    const tenant = await withDatabase((pool) => getTenant(pool, tenantId));
    if (!tenant)
      throw new RefusedError(`no tenant ${tenantId} in ${describeDatabaseUrl(requireDatabaseUrl())}`);
    if (tenant.deletedAt) throw new RefusedError(`tenant ${tenantId} was deleted; there is nothing to dun`);
    tier = tenant.tier;
  }
  if (tenantId === undefined && policy.tiers[tier!].graceDays === null) {
    throw new RefusedError(
      `the ${tier} tier has no payment processing under policy ${policy.version}: a failed payment starts no dunning lifecycle`,
    );
  }
  try {
    return previewLifecycle({ tier: tier!, policy, ...(tenantId ? { tenantId } : {}) }, now);
  } catch (err) {
    if (err instanceof DunningRefusedError) throw new RefusedError(err.message);
    throw err;
  }
}

/** A running (or finished) lifecycle: its start input's policy snapshot and its status answer. */
async function previewOfWorkflow(
  client: Client,
  workflowId: string,
  now: number,
): Promise<{ preview: LifecyclePreview; mismatches: string[] }> {
  const { handle, description } = await describeWorkflow(client, workflowId);
  if (description.type !== 'dunningWorkflow') {
    throw new RefusedError(`${workflowId} is a ${description.type}, not a dunning lifecycle`);
  }
  const status: DunningStatus = await answeredByWorker(
    client,
    description,
    { what: 'the status query' },
    () => handle.query(dunningStatusQuery),
  );
  const { decodeFromPayloadsAtIndex } = await import('@temporalio/common/lib/internal-non-workflow');
  const history = await handle.fetchHistory();
  const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
  const input = await decodeFromPayloadsAtIndex<DunningInput>(
    client.options.loadedDataConverter,
    0,
    started?.input?.payloads,
  );
  // The workflow fills settings an older snapshot lacks with their defaults (withCheckedPolicy); so does the preview.
  const { parsePolicy } = await import('../domain/policy');
  const checked = { ...input, policy: safely(() => parsePolicy(input.policy)) ?? input.policy };
  const mismatches = previewMismatches(stateFromStatus(checked, status), status);
  return { preview: previewRunningLifecycle(checked, status, now), mismatches };
}

function safely<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch {
    return undefined;
  }
}

export function previewView(
  p: LifecyclePreview,
  workflowId: string | undefined,
  tenantGiven: boolean,
  now: number,
): string[] {
  const head = workflowId
    ? `${workflowId}: tenant ${p.tenantId} (${p.tier}), the lifecycle's policy snapshot ${p.policyVersion}`
    : `a payment failing now ${tenantGiven ? `for tenant ${p.tenantId} (${p.tier})` : `on the ${p.tier} tier`}, under policy ${p.policyVersion}`;
  const history = workflowId
    ? [
        `  phase now    ${p.phase}`,
        ...(p.paused
          ? [
              `  PAUSED       since ${shortTime(p.paused.since)}: the dates below are those a resume now gives`,
            ]
          : []),
        '  pauses',
        ...(p.pauses.length
          ? p.pauses.map(
              (x) =>
                `    ${shortTime(x.from)} .. ${x.to ? shortTime(x.to) : 'still paused'}${by(x.operator, x.reason)}`,
            )
          : ['    none']),
        '  grace extensions',
        ...(p.extensions.length
          ? p.extensions.map((x) => `    ${shortTime(x.at)}  ${x.detail ?? ''}${by(x.operator, x.reason)}`)
          : ['    none']),
        '  steps done',
        ...(p.done.length
          ? columns(p.done.map((e) => [shortTime(e.dueAt ?? e.at), e.event, e.detail ?? ''])).map(
              (l) => `    ${l}`,
            )
          : ['    none']),
      ]
    : [];
  return [
    head,
    `  first failure ${shortTime(p.firstFailureAt)}`,
    `  grace ends    ${when(p.graceEndsAt, now)}`,
    ...history,
    workflowId ? '  what comes next' : '  the lifecycle',
    ...(p.steps.length
      ? columns(p.steps.map((s) => stepRow(s, now))).map((l) => `    ${l}`)
      : ['    nothing: the lifecycle has ended']),
  ];
}

function stepRow(s: PreviewStep, now: number): string[] {
  const notice = s.notice ? `email ${s.notice.template} to the ${s.notice.to}` : 'no email';
  const dashboard = s.dashboardNotification ? ' + dashboard notice' : '';
  return [
    when(s.at, now),
    offset(s.afterFirstFailureMs),
    s.id,
    `→ ${s.phase}`,
    `${notice}${dashboard}`,
    controlText(s.control),
  ];
}

/** "+0h", "+6h", "+7d": when a step falls after the first failure (pauses included). */
function offset(ms: number): string {
  const hours = ms / HOUR_MS;
  if (hours > 0 && Number.isInteger(hours / 24)) return `+${hours / 24}d`;
  if (Number.isInteger(hours)) return `+${hours}h`;
  return `+${formatDuration(ms)}`;
}

function controlText(control: PreviewStep['control']): string {
  if (!control) return '';
  switch (control.kind) {
    case 'rateLimit':
      return `rate limited to ${control.rateLimitPercent}%`;
    case 'apiBlocked':
      return 'new API requests blocked';
    case 'suspended':
      return 'account suspended';
    case 'dataDeleted':
      return control.approvalRequired ? 'data deleted once an operator approves' : 'data deleted';
  }
}

function by(operator: string | undefined, reason: string | undefined): string {
  return `${operator ? ` by ${operator}` : ''}${reason ? `: ${reason}` : ''}`;
}
