// Dunning-to-suspension lifecycle for one tenant: payment retries, notices, downgrade steps, deletion, or recovery.
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BillopsActivities } from '../activities';
import {
  DunningRefusedError,
  addFailedInvoice,
  completeStep,
  deadlines,
  describeLifecycle,
  extendGrace,
  graceExtensionProblem,
  isRecovered,
  markInvoicePaid,
  markRecovered,
  newDunningState,
  nextStep,
  outstanding,
  pause,
  recordHardDecline,
  resume,
  statusOf,
  type DunningInput,
  type DunningPhase,
  type DunningState,
  type GraceExtension,
  type LifecycleStep,
} from '../domain/dunning';
import { formatMinorUnits } from '../domain/money';
import { DunningPhase as DunningPhaseKey } from '../domain/searchAttributes';
import { formatNoticeTime, renderTemplate, type TemplateName, type TemplateVars } from '../domain/templates';
import {
  dunningStatusQuery,
  extendGraceSignal,
  extendGraceUpdate,
  pauseSignal,
  paymentFailedSignal,
  paymentSucceededSignal,
  resumeSignal,
} from './definitions';

export interface DunningOutcome {
  tenantId: string;
  phase: DunningPhase;
  paidInvoices: string[];
}

const SYSTEM = 'billops';

export async function dunningWorkflow(input: DunningInput): Promise<DunningOutcome> {
  const info = workflowInfo();
  let state: DunningState;
  try {
    state = newDunningState(input, `${info.workflowId}/${info.firstExecutionRunId}`, Date.now());
  } catch (err) {
    if (err instanceof DunningRefusedError)
      throw ApplicationFailure.nonRetryable(err.message, 'DunningRefused');
    throw err;
  }
  const retry = input.policy.apiRetry;
  // A lost worker's activity is retried after this timeout; every call here finishes in seconds when healthy.
  const act = proxyActivities<BillopsActivities>({
    startToCloseTimeout: '30 seconds',
    retry: {
      initialInterval: retry.initialIntervalMs,
      maximumInterval: retry.maximumIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      nonRetryableErrorTypes: ['TenantUnknown', 'InvoiceUnknown', 'ProcessorAuthFailed'],
    },
  });
  const key = (step: string) => `${state.workflowKey}/${step}`;
  let restoreNeeded = false;

  // ---- Message handling ----
  setHandler(dunningStatusQuery, () => statusOf(state));
  setHandler(paymentFailedSignal, (invoice) => addFailedInvoice(state, invoice, Date.now()));
  setHandler(paymentSucceededSignal, ({ invoiceId, reference }) => {
    markInvoicePaid(state, invoiceId, Date.now(), reference ? `paid, reference ${reference}` : 'paid');
  });
  setHandler(pauseSignal, ({ operator, reason }) => pause(state, Date.now(), operator, reason));
  setHandler(resumeSignal, ({ operator }) => resume(state, Date.now(), operator));
  const applyExtension = (extension: GraceExtension) => {
    restoreNeeded = extendGrace(state, extension, Date.now()).restoreService || restoreNeeded;
    return deadlines(state);
  };
  setHandler(extendGraceUpdate, applyExtension, {
    validator: (extension) => {
      const problem = graceExtensionProblem(state, extension);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(extendGraceSignal, (extension) => {
    if (!graceExtensionProblem(state, extension)) applyExtension(extension);
  });

  // ---- Main lifecycle ----
  const contact = await act.getTenantContact(input.tenantId);
  state.tenantName = contact.name;
  await act.openDunningRecord({
    tenantId: state.tenantId,
    workflowId: info.workflowId,
    invoiceIds: state.invoices.map((i) => i.invoiceId),
    startedAt: new Date(state.startedAt).toISOString(),
    graceEndsAt: deadlines(state).graceEndsAt,
  });
  publish(state);

  const email = async <N extends TemplateName>(
    step: string,
    template: N,
    vars: TemplateVars<N>,
    to = contact.billingEmail,
  ) => {
    const message = renderTemplate(template, vars);
    await act.sendEmail({ idempotencyKey: key(step), tenantId: state.tenantId, to, template, ...message });
  };
  const firstOpen = () => outstanding(state)[0] ?? state.invoices[0]!;
  const amountDue = () => {
    const open = outstanding(state);
    const currency = open[0]?.currency ?? state.invoices[0]!.currency;
    return formatMinorUnits(
      open.reduce((sum, i) => sum + i.amountMinor, 0),
      currency,
    );
  };
  const when = (iso: string) => formatNoticeTime(new Date(iso));
  const portal = input.billingPortalUrl;

  const perform = async (step: LifecycleStep): Promise<string | undefined> => {
    const d = deadlines(state);
    switch (step.kind) {
      case 'paymentRetry': {
        const results: string[] = [];
        for (const invoice of outstanding(state)) {
          const result = await act.retryInvoicePayment({
            idempotencyKey: key(`${step.id}/${invoice.invoiceId}`),
            tenantId: state.tenantId,
            invoiceId: invoice.invoiceId,
            attempt: step.attempt ?? 1,
          });
          if (result.outcome === 'succeeded')
            markInvoicePaid(state, invoice.invoiceId, Date.now(), `retry ${step.attempt}`);
          if (result.outcome === 'hard_declined') recordHardDecline(state, Date.now(), result.reason);
          results.push(
            `${invoice.invoiceId}: ${result.outcome}${'reason' in result ? ` (${result.reason})` : ''}`,
          );
        }
        if (!isRecovered(state) && !state.failureNoticeSent) {
          // The runbook's Payment Failure Notice, with a real link to pay ("manual payment link").
          const invoice = firstOpen();
          const link = await act.createPaymentLink({
            tenantId: state.tenantId,
            invoiceId: invoice.invoiceId,
            idempotencyKey: key(`payment-link/${invoice.invoiceId}`),
          });
          const graceDays = Math.max(0, Math.round((Date.parse(d.graceEndsAt) - Date.now()) / 86_400_000));
          await email('payment-failure-notice', 'paymentFailureNotice', {
            tenant_id: state.tenantId,
            invoice_id: invoice.invoiceId,
            grace_days: graceDays,
            billing_portal_url: link.url,
          });
          state.failureNoticeSent = true;
        }
        return results.join('; ');
      }
      case 'pastDueContact': {
        const days = step.daysPastDue ?? 0;
        if (step.contact === 'accountManagerContact') {
          const vars = {
            tenant_id: state.tenantId,
            invoice_id: firstOpen().invoiceId,
            amount_due: amountDue(),
            days_past_due: days,
          };
          await email(
            step.id,
            'accountManagerContact',
            vars,
            contact.accountManagerEmail ?? contact.billingEmail,
          );
        } else {
          await email(step.id, 'paymentReminder', {
            tenant_id: state.tenantId,
            invoice_id: firstOpen().invoiceId,
            amount_due: amountDue(),
            days_past_due: days,
            billing_portal_url: portal,
          });
        }
        return `${days} days past due`;
      }
      case 'warning': {
        const vars = {
          tenant_id: state.tenantId,
          invoice_id: firstOpen().invoiceId,
          amount_due: amountDue(),
          soft_limit_at: when(d.softLimitAt),
          soft_limit_percent: input.policy.downgrade.softLimitRatePercent,
          hard_limit_at: when(d.hardLimitAt),
          suspension_at: when(d.suspensionAt),
          billing_portal_url: portal,
        };
        await email(step.id, 'downgradeWarning', vars);
        const subject = renderTemplate('downgradeWarning', vars).subject;
        await act.addDashboardNotification({
          idempotencyKey: key(step.id),
          tenantId: state.tenantId,
          kind: 'downgradeWarning',
          message: subject,
        });
        return `grace ends ${d.graceEndsAt}`;
      }
      case 'softLimit': {
        const percent = input.policy.downgrade.softLimitRatePercent;
        await act.applyServiceControls({ ...controlsBy(step), rateLimitPercent: percent });
        await email(step.id, 'softLimitNotice', {
          tenant_id: state.tenantId,
          soft_limit_percent: percent,
          hard_limit_at: when(d.hardLimitAt),
          suspension_at: when(d.suspensionAt),
          billing_portal_url: portal,
        });
        return `rate limited to ${percent}% of normal capacity`;
      }
      case 'hardLimit':
        await act.applyServiceControls({ ...controlsBy(step), apiBlocked: true });
        await email(step.id, 'hardLimitNotice', {
          tenant_id: state.tenantId,
          suspension_at: when(d.suspensionAt),
          billing_portal_url: portal,
        });
        return 'new API requests blocked';
      case 'suspension':
        await act.applyServiceControls({ ...controlsBy(step), suspended: true });
        await email(step.id, 'suspensionNotice', {
          tenant_id: state.tenantId,
          deletion_at: when(d.deletionAt),
          billing_portal_url: portal,
        });
        return 'account suspended';
      case 'deletion': {
        const deleted = await act.deleteTenantData({
          tenantId: state.tenantId,
          workflowId: info.workflowId,
          operator: SYSTEM,
          reason: `${input.policy.downgrade.deletionDaysAfterSuspension} days after suspension`,
        });
        await act.recordDecision({
          idempotencyKey: key('deletion-decision'),
          workflowId: info.workflowId,
          entry: {
            timestamp: new Date().toISOString(),
            operator: SYSTEM,
            incidentType: 'dunning_data_deletion',
            tenants: 1,
            impact: `service; ${amountDue()} uncollected`,
            resolution: `tenant ${state.tenantId} data permanently deleted ${input.policy.downgrade.deletionDaysAfterSuspension} days after suspension`,
            credits: null,
            executor: SYSTEM,
          },
        });
        return `deleted ${Object.entries(deleted.deleted)
          .map(([table, n]) => `${n} ${table}`)
          .join(', ')}`;
      }
    }
  };
  const controlsBy = (step: LifecycleStep) => ({
    tenantId: state.tenantId,
    workflowId: info.workflowId,
    operator: SYSTEM,
    reason: `dunning ${step.id}: payment not collected`,
  });

  for (let step = nextStep(state); step; step = nextStep(state)) {
    if (restoreNeeded)
      await restoreService('grace extended', state, act, info.workflowId, () => (restoreNeeded = false));
    const due = await waitUntilDue(state, step);
    if (isRecovered(state)) break;
    if (!due) continue; // a pause, an extension or a new invoice moved the schedule: look again
    const detail = await perform(step);
    completeStep(state, step, Date.now(), detail);
    await act.updateDunningRecord({
      tenantId: state.tenantId,
      workflowId: info.workflowId,
      phase: state.phase,
      invoiceIds: state.invoices.map((i) => i.invoiceId),
      graceEndsAt: deadlines(state).graceEndsAt,
    });
    publish(state);
    if (isRecovered(state)) break;
  }

  if (isRecovered(state)) {
    // Recovery: restore service, confirm to the customer, close the record.
    await restoreService('payment recovered', state, act, info.workflowId, () => undefined);
    await email('payment-recovered', 'paymentRecovered', {
      tenant_id: state.tenantId,
      invoice_id: state.invoices.map((i) => i.invoiceId).join(', '),
      amount_paid: formatMinorUnits(
        state.invoices.reduce((sum, i) => sum + i.amountMinor, 0),
        state.invoices[0]!.currency,
      ),
    });
    markRecovered(state, Date.now());
    await act.closeDunningRecord({
      tenantId: state.tenantId,
      workflowId: info.workflowId,
      outcome: 'recovered',
      phase: 'recovered',
    });
  } else {
    await act.closeDunningRecord({
      tenantId: state.tenantId,
      workflowId: info.workflowId,
      outcome: 'deleted',
      phase: 'deleted',
    });
  }
  publish(state);
  await condition(allHandlersFinished);
  return {
    tenantId: state.tenantId,
    phase: state.phase,
    paidInvoices: state.invoices.filter((i) => i.paid).map((i) => i.invoiceId),
  };
}

/** Sleeps until the step is due. False when something moved the schedule first; recovery is checked by the caller. */
async function waitUntilDue(state: DunningState, step: LifecycleStep): Promise<boolean> {
  if (state.paused) {
    await condition(() => !state.paused || isRecovered(state));
    return false;
  }
  const revision = state.revision;
  const remaining = step.at - Date.now();
  if (remaining <= 0) return true;
  const interrupted = await condition(
    () => state.paused || isRecovered(state) || state.revision !== revision,
    remaining,
  );
  return !interrupted;
}

async function restoreService(
  reason: string,
  state: DunningState,
  act: Pick<BillopsActivities, 'restoreService'>,
  workflowId: string,
  done: () => void,
): Promise<void> {
  await act.restoreService({ tenantId: state.tenantId, workflowId, operator: SYSTEM, reason });
  state.timeline.push({ at: new Date().toISOString(), event: 'service restored', detail: reason });
  done();
}

/** Search attributes and the Web UI's current-details line follow the phase. */
function publish(state: DunningState): void {
  upsertSearchAttributes([{ key: DunningPhaseKey, value: state.phase }]);
  setCurrentDetails(describeLifecycle(state));
}
