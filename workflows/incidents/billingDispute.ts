// Over/underbilling dispute (seed 000 §4): stop billing the tenant or meter, pull the raw usage of the disputed period,
// recalculate with the correct rates, then credit the overbilled (Stripe credit note or balance, Paystack refund, or an
// internal credit) or bill the underbilled difference on an adjustment invoice, and send the Billing Error
// Acknowledgment. The DECISIONS.log line carries the credit.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type {
  DisputeActivities,
  DisputeCredit,
  DisputeFacts,
} from '../../activities/incidents/billingDispute';
import type { IncidentActivities } from '../../activities/incidents/common';
import type { UsageIncidentActivities } from '../../activities/incidents/usageMeteringFailure';
import type { InvoicingActivities, RecalculatedInvoice } from '../../activities/invoicing';
import type { IncidentInput } from '../../domain/incident';
import { formatMinorUnits } from '../../domain/money';
import { incidentStep } from '../shared/activityOptions';
import { BILLOPS, openIncident, type IncidentOutcome } from './frame';
import { rebuildRollupsUntilValid } from './frame/rollupRebuild';

export interface BillingDisputeParams {
  tenantId: string;
  /** Our invoices.id of the disputed invoice. */
  invoiceId: string;
  /** The disputed meter; the whole invoice when left out. */
  meter?: string;
  /** The disputed period (ISO-8601). */
  from: string;
  to: string;
  /** The rates row (its id) that should have priced the meter; left out with `rates`, the rates in force apply. */
  correctRateVersion?: number;
  /** The correct per-unit prices in minor units (decimal text), by meter. */
  rates?: Record<string, string>;
  /** The customer's complaint, the anomaly or the audit finding. */
  reason: string;
}

export async function billingDisputeWorkflow(
  input: IncidentInput<BillingDisputeParams>,
): Promise<IncidentOutcome> {
  const params = validParams(input.params);
  const incident = await openIncident(input);
  const { step } = incident;
  const invoicing = proxyActivities<InvoicingActivities>(incidentStep(input.policy));
  const disputes = proxyActivities<DisputeActivities>(incidentStep(input.policy));
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const holds = proxyActivities<UsageIncidentActivities>(incidentStep(input.policy));
  const workflowId = incident.state.workflowId;
  const { tenantId, invoiceId, meter } = params;
  incident.affects([tenantId]);

  // 1. Stop further billing for the affected meter/tenant.
  await step(
    `stop billing ${meter ? `meter ${meter} of ` : ''}tenant ${tenantId}`,
    () =>
      invoicing.holdInvoiceGeneration({
        tenantId,
        meter: meter ?? null,
        reason: `billing dispute ${workflowId}: ${params.reason}`,
        operator: BILLOPS,
        idempotencyKey: incident.key('stop billing'),
        workflowId,
      }),
    (hold) => `billing hold ${hold.holdId}`,
  );

  // 2. Pull raw usage data for the disputed period.
  const facts = await step(
    'pull raw usage for the disputed period',
    () =>
      disputes.pullDisputedUsage({
        tenantId,
        invoiceId,
        ...(meter ? { meter } : {}),
        from: params.from,
        to: params.to,
      }),
    usageText,
  );
  const { invoice } = facts;
  if (facts.rollupMismatches > 0) {
    // The invoice was priced from rollups that differ from the raw events: rebuild them first.
    const window = { from: invoice.periodStart, to: invoice.periodEnd };
    const rebuilt = await rebuildRollupsUntilValid(incident, {
      window,
      tenants: [tenantId],
      spotCheck: { ...window, tenants: [tenantId] },
    });
    if (!rebuilt.validated) return waitForOperator('the rollups of the invoice period did not validate');
  } else {
    incident.skip('rebuild rollups', 'the rollups of the invoice period match the raw events');
  }

  // 3. Recalculate charges using the correct rates.
  const override = params.correctRateVersion !== undefined || params.rates !== undefined;
  if (!override && !invoice.usageInvoice) {
    return waitForOperator(`invoice ${invoiceId} is not a usage invoice and no correct rate was named`);
  }
  const recalculated = await step(
    'recalculate with the correct rates',
    async (): Promise<RecalculatedInvoice | undefined> => {
      if (override) {
        return disputes.repriceDisputedInvoice({
          invoiceId,
          ...(meter ? { meter } : {}),
          ...(params.correctRateVersion !== undefined
            ? { correctRateVersion: params.correctRateVersion }
            : {}),
          ...(params.rates ? { rates: params.rates } : {}),
        });
      }
      const { invoices } = await invoicing.recalculateInvoices({
        periodStart: invoice.periodStart,
        periodEnd: invoice.periodEnd,
        tenants: [tenantId],
      });
      return invoices.find((i) => i.invoiceId === invoiceId);
    },
    (r) =>
      r
        ? `${money(r.oldTotalMinor, r.currency)} billed, ${money(r.newTotalMinor, r.currency)} correct (${r.action})`
        : 'the invoice was not recalculated',
  );
  if (!recalculated) return waitForOperator(`invoice ${invoiceId} could not be recalculated`);

  // 4. Generate an adjustment invoice or credit.
  const { differenceMinor, currency } = recalculated;
  const overbilled = Math.max(0, -differenceMinor);
  const underbilled = Math.max(0, differenceMinor);
  // A draft or open invoice the recalculation corrected in place needs no credit, unless a processor still bills it.
  const correctedInPlace = recalculated.action === 'updated';
  const onProcessor = invoice.processor !== 'none' && invoice.processorInvoiceId !== null;
  const settlement = {
    idempotencyKey: '',
    workflowId,
    tenantId,
    invoiceId,
    currency,
    reason: `billing dispute ${workflowId}: ${params.reason}`,
    operator: BILLOPS,
  };
  let credit: DisputeCredit | null = null;
  let adjustmentInvoiceId: string | null = null;
  if (overbilled > 0 && (!correctedInPlace || onProcessor)) {
    credit = await step(
      'issue the credit',
      () =>
        disputes.issueDisputeCredit({
          ...settlement,
          idempotencyKey: incident.key('credit'),
          amountMinor: overbilled,
        }),
      (c) => `${money(c.amountMinor, c.currency)} ${creditText(c)}`,
    );
  } else if (underbilled > 0 && !correctedInPlace) {
    const adjustment = await step(
      'generate an adjustment invoice',
      () =>
        disputes.issueAdjustmentInvoice({
          ...settlement,
          idempotencyKey: incident.key('adjustment invoice'),
          amountMinor: underbilled,
        }),
      (a) => `adjustment invoice ${a.adjustmentInvoiceId} for ${money(a.amountMinor, a.currency)}`,
    );
    adjustmentInvoiceId = adjustment.adjustmentInvoiceId;
  } else if (differenceMinor !== 0) {
    incident.skip(
      'credit or adjustment invoice',
      `invoice ${invoiceId} was still ${recalculated.status}: corrected in place to ${money(recalculated.newTotalMinor, currency)}`,
    );
  } else {
    incident.skip('credit or adjustment invoice', 'the recalculated total equals the invoiced total');
  }
  // CREDITS: what the tenant is no longer charged, credited or corrected on the invoice itself.
  if (overbilled > 0) incident.state.credits = { amountMinor: overbilled, currency };
  if (differenceMinor !== 0)
    incident.state.revenueImpact = { amountMinor: Math.abs(differenceMinor), currency };

  // 5. The runbook's Billing Error Acknowledgment, when there was an error to acknowledge.
  const correction = correctionText(recalculated, credit, adjustmentInvoiceId, params.reason);
  if (differenceMinor !== 0) {
    await step(
      'send the Billing Error Acknowledgment',
      () =>
        incidents.notifyTenants({
          idempotencyKey: incident.key('billing error acknowledgment'),
          tenantIds: [tenantId],
          template: 'billingErrorAcknowledgment',
          vars: {
            invoice_id: invoiceId,
            adjustment_description: correction,
            credit_amount: money(overbilled, currency),
            corrected_total: money(recalculated.newTotalMinor, currency),
          },
        }),
      (r) => `sent to ${r.notified} tenant`,
    );
  }

  // 6. Billing resumes with the correction in place.
  await step(
    'resume billing',
    () =>
      holds.releaseIncidentHolds({
        workflowId,
        operator: BILLOPS,
        reason: `billing dispute settled: ${correction}`,
      }),
    (holds) => `${holds.length} billing hold released`,
  );
  incident.resolveAsBillops(
    differenceMinor === 0 ? `no billing error found on invoice ${invoiceId}` : correction,
  );
  return incident.close({
    impact:
      differenceMinor === 0
        ? `no billing error on invoice ${invoiceId}`
        : `invoice ${invoiceId} ${overbilled > 0 ? 'overbilled' : 'underbilled'} by ${money(Math.abs(differenceMinor), currency)}`,
    executor: 'billops',
  });

  /** A step billops cannot take by itself: the hold stays and an operator settles and resolves the dispute. */
  async function waitForOperator(why: string): Promise<IncidentOutcome> {
    incident.skip(
      'recalculate and settle',
      `${why}; billing stays held until an operator resolves the dispute`,
    );
    await incident.waitForResolution();
    return incident.close({ impact: `dispute on invoice ${invoiceId} settled by hand`, executor: 'billops' });
  }
}

function validParams(params: BillingDisputeParams | undefined): BillingDisputeParams {
  const problem = !params
    ? 'params are required'
    : !params.tenantId?.trim()
      ? 'tenantId is required'
      : !params.invoiceId?.trim()
        ? 'invoiceId is required'
        : !params.reason?.trim()
          ? 'a reason is required'
          : !(Date.parse(params.to) > Date.parse(params.from))
            ? `the disputed period ${params.from}..${params.to} is empty or not ISO-8601`
            : null;
  if (problem) throw ApplicationFailure.nonRetryable(`billing dispute: ${problem}`, 'InvalidIncidentParams');
  return params!;
}

const money = (amountMinor: number, currency: string) => formatMinorUnits(amountMinor, currency);

function usageText(facts: DisputeFacts): string {
  const meters = facts.usage.map(
    (u) =>
      `${u.meter}: ${u.rawQuantity} from ${u.rawEvents} raw events, ${u.rollupQuantity} rolled up, ` +
      `${u.invoicedQuantity ?? 'nothing'} invoiced`,
  );
  return (
    `${facts.period.from}..${facts.period.to}: ${meters.join('; ') || 'no usage'}` +
    (facts.rollupMismatches ? `; ${facts.rollupMismatches} hours of rollups differ from the raw events` : '')
  );
}

function creditText(credit: DisputeCredit): string {
  switch (credit.method) {
    case 'stripe_credit_note':
      return `Stripe credit note ${credit.processorReference}`;
    case 'stripe_customer_balance':
      return `Stripe customer balance credit ${credit.processorReference}`;
    case 'paystack_refund':
      return `Paystack refund ${credit.processorReference}`;
    case 'internal_credit':
      return `internal credit ${credit.creditId}`;
  }
}

/** The email's "Correction:" line, and the resolution summary. */
function correctionText(
  r: RecalculatedInvoice,
  credit: DisputeCredit | null,
  adjustmentInvoiceId: string | null,
  reason: string,
): string {
  const lines = r.lines
    .filter((l) => l.oldAmountMinor !== l.newAmountMinor || l.oldQuantity !== l.newQuantity)
    .map(
      (l) =>
        `${l.meter} ${l.oldQuantity ?? 0} units ${money(l.oldAmountMinor, r.currency)} → ` +
        `${l.newQuantity ?? 0} units ${money(l.newAmountMinor, r.currency)}`,
    );
  const settled = credit
    ? `credited by ${creditText(credit)}`
    : adjustmentInvoiceId
      ? `the difference is billed on adjustment invoice ${adjustmentInvoiceId}`
      : 'the invoice was corrected';
  return (
    `${reason.trim()}: invoice ${r.invoiceId} recalculated from raw usage (${lines.join('; ') || 'no line changed'}), ` +
    `${money(r.oldTotalMinor, r.currency)} → ${money(r.newTotalMinor, r.currency)}; ${settled}`
  );
}
