// Usage metering failure and usage data corruption (seed 000 §2): stop invoice generation, check ingestion and the
// aggregation job, spot-check tenants, backfill the rollups from raw events (rerun every 2 hours for 48 hours until
// a spot check is clean), recalculate the affected invoices, and hold their delivery until validation is complete:
// for a P1, until an operator approves the release.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { UsageIncidentActivities } from '../../activities/incidents/usageMeteringFailure';
import type { InvoicingActivities } from '../../activities/invoicing';
import type { SpotCheckRequest, UsageIntegrityActivities } from '../../activities/usage/integrity';
import type { IncidentInput } from '../../domain/incident';
import { formatMinorUnits } from '../../domain/money';
import { RollupWindowError, wholeHours, type TimeWindow } from '../../domain/rollups';
import { incidentStep, long } from '../shared/activityOptions';
import { BILLOPS, openIncident, type IncidentOutcome } from './frame';
import { rebuildRollupsUntilValid, type RebuildOutcome } from './frame/rollupRebuild';

export interface UsageMeteringFailureParams {
  /** The window whose usage is in doubt (ISO-8601), widened to whole hours. */
  from: string;
  to: string;
  /** Only these tenants; every tenant when left out (the incident's tenantIds are used if these are absent). */
  tenantIds?: string[];
  /** Only these meters are held from invoicing; every meter when left out. */
  meters?: string[];
}

export async function usageMeteringFailureWorkflow(
  input: IncidentInput<UsageMeteringFailureParams>,
): Promise<IncidentOutcome> {
  const window = windowOf(input.params);
  const incident = await openIncident(input);
  const { step } = incident;
  const { policy } = input;
  const named = input.params.tenantIds ?? input.tenantIds;
  const tenants = named?.length ? named : undefined;
  const scope = { ...window, ...(tenants ? { tenants } : {}) };
  const workflowId = incident.state.workflowId;
  const heldFor = `${input.kind.replaceAll('_', ' ')} ${workflowId}`;
  const deliveryHold = { ...scope, reason: `${heldFor}: delivery held until validation is complete` };
  const invoicing = proxyActivities<InvoicingActivities>(incidentStep(policy));
  const metering = proxyActivities<UsageIncidentActivities>(incidentStep(policy));
  const integrity = proxyActivities<UsageIntegrityActivities>(incidentStep(policy));
  // Recalculation can touch every invoice of the window: it gets longer than the shared one-minute bound.
  const recalculation = proxyActivities<UsageIncidentActivities>(long(policy));
  incident.affects(tenants ?? []);

  // ---- Immediate actions ----
  // 1. Stop invoice generation until data integrity is confirmed (and keep the window's invoices from going out).
  await step(
    'stop invoice generation',
    async () => {
      const placed = [];
      for (const hold of holdScopes(tenants, input.params.meters)) {
        placed.push(
          await invoicing.holdInvoiceGeneration({
            ...hold,
            reason: `${heldFor}: usage data in doubt for ${window.from}..${window.to}`,
            operator: BILLOPS,
            idempotencyKey: incident.key(`hold/${hold.tenantId ?? '*'}/${hold.meter ?? '*'}`),
            workflowId,
          }),
        );
      }
      return placed;
    },
    (holds) =>
      `${holds.length} billing hold${holds.length === 1 ? '' : 's'} on ${scopeText(tenants, input.params.meters)}`,
  );
  await step(
    'hold invoice delivery',
    () => metering.holdWindowInvoiceDelivery({ ...deliveryHold, operator: BILLOPS }),
    (r) => `${r.held} undelivered invoices of the window held`,
  );
  // 2. Check usage_events ingestion (last event timestamp).
  await step(
    'check usage_events ingestion',
    () => metering.usageIngestionSummary(input.params.meters ? { meters: input.params.meters } : {}),
    (s) =>
      s.lastReceivedAt === null
        ? 'no usage event ever arrived'
        : `last event received ${s.lastReceivedAt} (${s.lagSeconds} s ago)` +
          (s.stalestMeter
            ? `; stalest meter ${s.stalestMeter.meter}, ${s.stalestMeter.lagSeconds} s behind`
            : ''),
  );
  // 3. Verify aggregation job status and logs.
  await step(
    'verify aggregation job status',
    () => metering.aggregationStatus(window),
    (s) =>
      `${s.failed} failed, ${s.succeeded} succeeded, ${s.running} running rollup runs over the window` +
      (s.lastFailure ? `; last failure (run ${s.lastFailure.runId}): ${s.lastFailure.error}` : ''),
  );
  // 4. Validate data consistency (spot check known tenants).
  const spotCheck: SpotCheckRequest = tenants
    ? { ...window, tenants }
    : { ...window, sample: policy.usageMeteringFailure.spotCheckSampleTenants };
  const found = await step(
    'spot check tenants',
    () => integrity.spotCheckUsageRollups(spotCheck),
    (c) => `${c.tenants.length} tenants checked, ${c.mismatches.length} hours differ from the raw events`,
  );
  incident.affects(found.mismatches.map((m) => m.tenant));

  // ---- Containment ----
  // 1. Backfill missing usage data from raw events, rerun on the policy's schedule until a spot check is clean.
  const rebuilt = await rebuildRollupsUntilValid(incident, { window, tenants, spotCheck });
  if (!rebuilt.validated) {
    const why = incident.state.resolution
      ? `resolved by ${incident.state.resolution.by} before the usage data validated`
      : `the rollups of ${window.from}..${window.to} did not validate in ${rebuilt.attempts} attempts over ` +
        `${policy.usageAggregationRetry.forHours} hours`;
    incident.skip('release invoice generation and delivery', `${why}; the holds stay in place`);
    await incident.waitForResolution();
    return incident.close({
      impact: `usage data of ${window.from}..${window.to} not validated; invoice generation and delivery held`,
      executor: 'billops',
    });
  }
  // Data integrity confirmed: invoicing may use the rollups again (recalculation adds meters a hold kept out).
  await step(
    'resume invoice generation',
    () =>
      metering.releaseIncidentHolds({
        workflowId,
        operator: BILLOPS,
        reason: `usage data of ${window.from}..${window.to} validated by spot check`,
      }),
    (holds) => `${holds.length} billing holds released`,
  );
  // 2. Recalculate affected invoices.
  const recalculated = await step(
    'recalculate affected invoices',
    () => recalculation.recalculateWindowInvoices(scope),
    (r) =>
      `${r.invoices} invoices over ${r.periods} periods: ${r.updated} corrected, ${r.unchanged} unchanged, ` +
      `${r.needsAdjustment.length} finalized need a credit or adjustment` +
      (r.changedBy.length ? ` (changed by ${r.changedBy.map(money).join(', ')})` : ''),
  );
  incident.affects(recalculated.tenantsChanged);
  incident.state.revenueImpact = recalculated.changedBy[0] ?? null;
  // 3. Hold invoice delivery until validation is complete: corrected invoices wait to be delivered again.
  const held = await step(
    'hold delivery of the recalculated invoices',
    () => metering.holdWindowInvoiceDelivery({ ...deliveryHold, operator: BILLOPS }),
    (r) => `${r.held} invoices held for delivery`,
  );

  // A P1 is released by a person; any other severity once the spot check is clean.
  let releasedBy = BILLOPS;
  if (incident.state.severity === 'P1') {
    const approval = await incident.approval(
      'release invoice delivery',
      `Rollups of ${window.from}..${window.to} rebuilt and spot-checked clean; ${recalculated.invoices} invoices ` +
        `recalculated (${recalculated.updated} corrected, ${recalculated.needsAdjustment.length} finalized need a ` +
        `credit or adjustment). Release delivery of ${held.held} held invoices?`,
    );
    if (!approval.approved) {
      incident.skip(
        'release invoice delivery',
        `not approved by ${approval.operator}${approval.reason ? ` (${approval.reason})` : ''}; delivery stays held`,
      );
      await incident.waitForResolution();
      return incident.close({ impact: impactText(window, rebuilt, recalculated), executor: 'billops' });
    }
    releasedBy = approval.operator;
  }
  await step(
    'release invoice delivery',
    () =>
      metering.releaseWindowInvoiceDelivery({
        ...deliveryHold,
        releaseReason: `${heldFor}: validation complete, released by ${releasedBy}`,
        operator: releasedBy,
      }),
    (r) => `${r.released} invoices released for delivery`,
  );

  const adjustments = recalculated.needsAdjustment;
  incident.resolveAsBillops(
    `rollups of ${window.from}..${window.to} rebuilt from raw events (attempt ${rebuilt.attempts}) and validated; ` +
      `${recalculated.updated} invoices corrected and released for delivery` +
      (adjustments.length
        ? `; ${adjustments.length} finalized invoices need a credit or adjustment invoice: ` +
          adjustments
            .slice(0, 10)
            .map((a) => `${a.invoiceId} (${money({ amountMinor: a.differenceMinor, currency: a.currency })})`)
            .join(', ')
        : ''),
  );
  return incident.close({ impact: impactText(window, rebuilt, recalculated), executor: 'billops' });
}

// ---- Wording and scopes ----

function windowOf(params: UsageMeteringFailureParams): TimeWindow {
  try {
    return wholeHours(params?.from, params?.to);
  } catch (err) {
    if (!(err instanceof RollupWindowError)) throw err;
    throw ApplicationFailure.nonRetryable(`usage metering failure: ${err.message}`, 'InvalidIncidentParams');
  }
}

/** One hold per tenant and meter named; a side left out is "every". */
function holdScopes(
  tenants: string[] | undefined,
  meters: string[] | undefined,
): { tenantId: string | null; meter: string | null }[] {
  const tenantScopes = tenants?.length ? tenants : [null];
  const meterScopes = meters?.length ? meters : [null];
  return tenantScopes.flatMap((tenantId) => meterScopes.map((meter) => ({ tenantId, meter })));
}

function scopeText(tenants: string[] | undefined, meters: string[] | undefined): string {
  const who = tenants?.length ? `${tenants.length} tenant${tenants.length === 1 ? '' : 's'}` : 'every tenant';
  const what = meters?.length ? meters.join(', ') : 'every meter';
  return `${who}, ${what}`;
}

const money = (m: { amountMinor: number; currency: string }) => formatMinorUnits(m.amountMinor, m.currency);

function impactText(
  window: TimeWindow,
  rebuilt: RebuildOutcome,
  recalculated: {
    invoices: number;
    tenantsChanged: string[];
    changedBy: { amountMinor: number; currency: string }[];
  },
): string {
  const changed = recalculated.changedBy.length ? ` by ${recalculated.changedBy.map(money).join(', ')}` : '';
  return (
    `usage of ${window.from}..${window.to} re-aggregated (${rebuilt.eventsProcessed} events); ` +
    `${recalculated.invoices} invoices recalculated, ${recalculated.tenantsChanged.length} tenants' totals changed${changed}`
  );
}
