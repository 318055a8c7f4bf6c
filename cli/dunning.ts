// `billops dunning start|list`: open (or join) a tenant's lifecycle by hand, and list the running ones.
import { parseArgs } from 'node:util';
import { describeDatabaseUrl } from '../db/pool';
import { getTenant } from '../db/tenants';
import { DUNNING_PHASES, type DunningInput, type PaymentProcessorName } from '../domain/dunning';
import { formatMinorUnits } from '../domain/money';
import { BILLING_TIERS } from '../domain/policy';
import { BillingTier, DunningPhase, PaymentProcessor, TenantId } from '../domain/searchAttributes';
import { loadPolicyForConfig } from '../config/load';
import { dunningQuery, dunningWorkflowId, startOrJoinDunning } from '../temporal/dunning';
import {
  cliConfig,
  columns,
  oneOf,
  positiveWholeNumber,
  printJson,
  RefusedError,
  required,
  requireDatabaseUrl,
  UsageError,
  withDatabase,
  withTemporal,
  runningRunId,
} from './common';

const PROCESSORS: readonly PaymentProcessorName[] = ['stripe', 'paystack', 'none'];
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A failed payment entered by hand: the same signal-with-start the webhooks use, with the tenant read from the database. */
export async function dunningStart(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      tenant: { type: 'string' },
      invoice: { type: 'string' },
      amount: { type: 'string' },
      currency: { type: 'string' },
      tier: { type: 'string' },
      processor: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const tenantId = required(values.tenant, '--tenant ID');
  const invoiceId = required(values.invoice, '--invoice ID');
  const amountMinor = positiveWholeNumber(required(values.amount, '--amount MINOR'), '--amount');
  const currency = values.currency?.trim().toUpperCase();
  if (currency !== undefined && !/^[A-Z]{3}$/.test(currency)) {
    throw new UsageError(
      `--currency must be a three-letter ISO 4217 code such as USD (got ${values.currency})`,
    );
  }
  const tierFlag = oneOf(values.tier, BILLING_TIERS, '--tier');
  const processorFlag = oneOf(values.processor, PROCESSORS, '--processor');

  const config = cliConfig();
  const policy = loadPolicyForConfig(config);
  const tenant = await withDatabase((pool) => getTenant(pool, tenantId));
  if (!tenant)
    throw new RefusedError(`no tenant ${tenantId} in ${describeDatabaseUrl(requireDatabaseUrl())}`);
  if (tenant.deletedAt) throw new RefusedError(`tenant ${tenantId} was deleted; there is nothing to dun`);
  const tier = tierFlag ?? tenant.tier;
  if (policy.tiers[tier].graceDays === null) {
    throw new RefusedError(
      `refused: tenant ${tenantId} is on the ${tier} tier, which has no payment processing, so there is nothing to dun`,
    );
  }
  const input: DunningInput = {
    tenantId,
    tenantName: tenant.name,
    tier,
    processor: processorFlag ?? tenant.paymentProcessor,
    invoice: { invoiceId, amountMinor, currency: currency ?? tenant.currency },
    policy,
    billingPortalUrl: config.billingPortalUrl,
  };

  return withTemporal(async (client) => {
    const workflowId = dunningWorkflowId(tenantId);
    const runningBefore = await runningRunId(client, workflowId);
    const handle = await startOrJoinDunning(client, config.taskQueue, input);
    const { runId } = await handle.describe();
    const outcome = runId === runningBefore ? 'joined' : 'started';
    const amount = formatMinorUnits(amountMinor, input.invoice.currency);
    if (values.json)
      printJson({ outcome, workflowId, runId, tenantId, invoiceId, tier, processor: input.processor });
    else if (outcome === 'started')
      console.log(`started ${workflowId} (run ${runId}): invoice ${invoiceId}, ${amount}`);
    else
      console.log(
        `joined ${workflowId} (run ${runId}): invoice ${invoiceId}, ${amount}, added to the running lifecycle`,
      );
    return 0;
  });
}

/** Running lifecycles through a visibility query over the search attributes every lifecycle sets. */
export async function dunningList(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      tenant: { type: 'string' },
      phase: { type: 'string' },
      processor: { type: 'string' },
      tier: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.tenant !== undefined && !TENANT_ID.test(values.tenant)) {
    throw new UsageError(`--tenant must be a tenant id (got ${JSON.stringify(values.tenant)})`);
  }
  const phase = oneOf(values.phase, DUNNING_PHASES, '--phase');
  const processor = oneOf(values.processor, PROCESSORS, '--processor');
  const tier = oneOf(values.tier, BILLING_TIERS, '--tier');
  const filter = [
    values.tenant && `TenantId = '${values.tenant}'`,
    phase && `DunningPhase = '${phase}'`,
    processor && `PaymentProcessor = '${processor}'`,
    tier && `BillingTier = '${tier}'`,
  ]
    .filter(Boolean)
    .join(' AND ');

  const lifecycles = await withTemporal(async (client) => {
    const found = [];
    for await (const execution of client.workflow.list({ query: dunningQuery(filter || undefined) })) {
      const attribute = execution.typedSearchAttributes;
      found.push({
        workflowId: execution.workflowId,
        runId: execution.runId,
        tenantId: attribute.get(TenantId) ?? null,
        tier: attribute.get(BillingTier) ?? null,
        phase: attribute.get(DunningPhase) ?? null,
        processor: attribute.get(PaymentProcessor) ?? null,
        startedAt: execution.startTime.toISOString(),
      });
    }
    return found;
  });

  if (values.json) printJson(lifecycles);
  else if (lifecycles.length === 0) console.log('no running dunning lifecycles match');
  else {
    const header = ['WORKFLOW ID', 'TENANT', 'TIER', 'PHASE', 'PROCESSOR', 'STARTED'];
    const rows = lifecycles.map((l) =>
      [l.workflowId, l.tenantId, l.tier, l.phase, l.processor, l.startedAt].map((cell) => cell ?? '-'),
    );
    for (const line of columns([header, ...rows])) console.log(line);
  }
  return 0;
}
