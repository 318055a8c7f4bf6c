// Dunning-to-suspension lifecycle for one tenant: payment retries, notices, downgrade steps, deletion, or recovery.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DecisionActivities } from '../../activities/decisions';
import type { DunningRecordActivities } from '../../activities/dunningRecords';
import type { EmailActivities } from '../../activities/email';
import type { NoticeActivities } from '../../activities/notices';
import type { PaymentActivities } from '../../activities/payments';
import type { ServiceControlActivities } from '../../activities/serviceControls';
import type { TenantDataActivities } from '../../activities/tenantData';
import {
  addFailedInvoice,
  completeStep,
  deadlines,
  extendGrace,
  graceExtensionProblem,
  isRecovered,
  markInvoicePaid,
  markRecovered,
  notePaymentUnconfirmed,
  nextStep,
  outstanding,
  recordHardDecline,
  statusOf,
  stepOccurrence,
  type DunningInput,
  type DunningPhase,
  type GraceExtension,
  type LifecycleStep,
} from '../../domain/dunning';
import {
  firstOpen,
  recoveryNotice,
  stepNotice,
  type DunningNotice,
  type NoticeContact,
  type NoticeContext,
} from '../../domain/dunningNotices';
import { renderTemplate } from '../../domain/templates';
import {
  dunningStatusQuery,
  extendGraceSignal,
  extendGraceUpdate,
  paymentFailedSignal,
  paymentSucceededSignal,
  type OperatorAction,
} from '../definitions';
import { quick } from '../shared/activityOptions';
import { deleteTenant } from './deletion';
import {
  dunningAttention,
  joinOutage,
  publish,
  startingState,
  waitUntilDue,
  withCheckedPolicy,
} from './lifecycle';
import { setOperatorHandlers } from './handlers';
import type { Attended } from '../shared/attention';
import { SYSTEM_OPERATOR } from '../../domain/vocabulary';

export interface DunningOutcome {
  tenantId: string;
  phase: DunningPhase;
  paidInvoices: string[];
}

/** Refusals no retry fixes: an unknown tenant or invoice, a processor refusing our key. */
const NOT_RETRIED = ['TenantUnknown', 'InvoiceUnknown', 'ProcessorAuthFailed'];

export async function dunningWorkflow(given: DunningInput): Promise<DunningOutcome> {
  const info = workflowInfo();
  // Issue 15 items 2 and 3, for lifecycles started from this version on (recorded histories replay without them).
  const checksPolicy = patched('dunning-checks-policy');
  const attends = patched('dunning-waits-for-attention');
  // Seed 004 "Retry Payment": an operator's retryNow with no step waiting retries the open invoices at once.
  const retriesOnDemand = patched('dunning-retry-on-demand');
  const retryRequests: OperatorAction[] = [];
  let retriesRequested = 0;
  const input = checksPolicy ? withCheckedPolicy(given) : given;
  // A lifecycle continued for a payment that failed during the previous one's recovery keys its steps by its own run.
  const run = info.continuedFromExecutionRunId ? info.runId : info.firstExecutionRunId;
  const state = startingState(input, `${info.workflowId}/${run}`);
  // Issue 15 item 6, for lifecycles started from this version on (recorded histories replay without them).
  const dunsLateFailure = patched('dunning-late-failure-continues');
  const resendsMovedSteps = patched('dunning-occurrence-keys');
  const readsContactPerNotice = patched('dunning-contact-per-notice');
  // A lost worker's activity is retried after this timeout; every call here finishes in seconds when healthy.
  const options = quick(input.policy, NOT_RETRIED);
  const notices = proxyActivities<NoticeActivities>(options);
  const email = proxyActivities<EmailActivities>(options);
  const payments = proxyActivities<PaymentActivities>(options);
  const serviceControls = proxyActivities<ServiceControlActivities>(options);
  const records = proxyActivities<DunningRecordActivities>(options);
  const tenantData = proxyActivities<TenantDataActivities>(options);
  const decisions = proxyActivities<DecisionActivities>(options);
  const key = (step: string) => `${state.workflowKey}/${step}`;
  let restoreNeeded = false;

  // ---- A step only a person can fix waits here, its timers and state kept (./lifecycle.ts) ----
  const attention = dunningAttention(state, key, info.workflowId);
  /** A step's activities, waiting for attention when they fail for good (older histories fail as they did). */
  const attend = <T>(step: string, run: () => Promise<T>, skippable = true): Promise<Attended<T>> =>
    attends ? attention.run(step, run, { skippable }) : run().then((value) => ({ done: true, value }));

  // ---- Message handling ----
  setHandler(dunningStatusQuery, () => statusOf(state));
  setHandler(paymentFailedSignal, (invoice) => addFailedInvoice(state, invoice, Date.now()));
  setHandler(paymentSucceededSignal, async ({ invoiceId, reference }) => {
    const how = reference ? `paid, reference ${reference}` : 'paid';
    // Counted only when the database or the provider confirms it; histories from before replay as they ran.
    if (!patched('confirm-payment-succeeded')) {
      markInvoicePaid(state, invoiceId, Date.now(), how);
      return;
    }
    if (!state.invoices.some((i) => i.invoiceId === invoiceId && !i.paid)) return;
    let unconfirmed: string;
    try {
      const answer = await payments.confirmInvoicePaid({ tenantId: state.tenantId, invoiceId, reference });
      if (answer.confirmed) {
        markInvoicePaid(state, invoiceId, Date.now(), `${how}; ${answer.detail}`);
        return;
      }
      unconfirmed = answer.reason;
    } catch (err) {
      unconfirmed = `could not be checked (${err instanceof Error ? err.message : String(err)}); signal again`;
    }
    notePaymentUnconfirmed(state, invoiceId, Date.now(), unconfirmed);
  });
  setOperatorHandlers(state, attention, retriesOnDemand ? retryRequests : null);
  const applyExtension = (extension: GraceExtension) => {
    restoreNeeded = extendGrace(state, extension, Date.now()).restoreService || restoreNeeded;
    return deadlines(state);
  };
  // An update, so the operator hears the new deadlines or why the extension was refused.
  setHandler(extendGraceUpdate, applyExtension, {
    validator: (extension) => {
      const problem = graceExtensionProblem(state, extension);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(extendGraceSignal, (extension) => {
    if (!graceExtensionProblem(state, extension)) applyExtension(extension);
  });

  // ---- Main lifecycle: each runbook step when it falls due, until recovered or deleted ----
  const read = await attend('read billing contact', () => notices.getTenantContact(input.tenantId));
  const contact = read.done
    ? read.value
    : {
        name: state.tenantName,
        billingEmail: '',
        accountManagerEmail: null,
        tenantId: input.tenantId,
        tier: input.tier,
      };
  state.tenantName = contact.name;
  const record = () => ({
    tenantId: state.tenantId,
    workflowId: info.workflowId,
    invoiceIds: state.invoices.map((i) => i.invoiceId),
    graceEndsAt: deadlines(state).graceEndsAt,
  });
  await attend('open dunning record', () =>
    records.openDunningRecord({ ...record(), startedAt: new Date(state.startedAt).toISOString() }),
  );
  if (patched('dunning-joins-open-outage')) {
    const hold = await attend('check for an open processor outage', () =>
      records.activeOutageHold({ tenantId: state.tenantId, processor: state.processor }),
    );
    if (hold.done && hold.value) joinOutage(state, hold.value, applyExtension);
  }
  publish(state);

  for (let step = nextStep(state); step; step = nextStep(state)) {
    if (restoreNeeded) {
      await restoreService('grace extended');
      restoreNeeded = false;
    }
    const due = await waitUntilDue(state, step, () => retryRequests.length > 0);
    if (isRecovered(state)) break;
    if (retryRequests.length > 0) {
      await retryOnDemand(retryRequests.shift()!);
      if (isRecovered(state)) break;
      continue;
    }
    if (!due) continue; // a pause, an extension or a new invoice moved the schedule: look again
    const performed = await attend(step.id, () => perform(step), step.kind !== 'deletion');
    if (isRecovered(state)) break;
    completeStep(state, step, Date.now(), performed.done ? performed.value : performed.why);
    await attend('update dunning record', () =>
      records.updateDunningRecord({ ...record(), phase: state.phase }),
    );
    publish(state);
    if (isRecovered(state)) break;
  }

  // Recovery: restore service and confirm to the customer; either way the record closes.
  const outcome = isRecovered(state) ? 'recovered' : 'deleted';
  if (outcome === 'recovered') {
    await restoreService('payment recovered');
    await send('payment-recovered', recoveryNotice(state, await currentContact()));
    markRecovered(state, Date.now());
  }
  await attend('close dunning record', () =>
    records.closeDunningRecord({
      tenantId: state.tenantId,
      workflowId: info.workflowId,
      outcome,
      phase: outcome,
    }),
  );
  publish(state);
  await condition(allHandlersFinished);
  // A payment failed while the recovery was finishing: checked in the same workflow task as the return, so a signal
  // that arrives later makes the server refuse the close and deliver it first. Its invoice is dunned afresh.
  const stillOpen = outstanding(state);
  if (dunsLateFailure && outcome === 'recovered' && stillOpen.length > 0) {
    await continueAsNew<typeof dunningWorkflow>({
      ...input,
      tenantName: state.tenantName,
      invoice: stillOpen[0]!,
      moreInvoices: stillOpen.slice(1),
    });
  }
  return {
    tenantId: state.tenantId,
    phase: state.phase,
    paidInvoices: state.invoices.filter((i) => i.paid).map((i) => i.invoiceId),
  };

  /** The billing contact as it stands now, so a corrected address gets the next notice. */
  async function currentContact(): Promise<NoticeContact> {
    return readsContactPerNotice ? notices.getTenantContact(input.tenantId) : contact;
  }

  // ---- The runbook's steps ----
  /** One step, its notice built from the deadlines as they stood when the step began; returns what it did. */
  async function perform(step: LifecycleStep): Promise<string | undefined> {
    const context: NoticeContext = { deadlines: deadlines(state), billingPortalUrl: input.billingPortalUrl };
    const occurrence = resendsMovedSteps ? stepOccurrence(step) : step.id;
    const notify = async () => send(occurrence, stepNotice(step, state, await currentContact(), context));
    switch (step.kind) {
      case 'paymentRetry':
        return retryPayments(step, context);
      case 'pastDueContact':
        await notify();
        return `${step.daysPastDue ?? 0} days past due`;
      case 'warning': {
        const notice = stepNotice(step, state, await currentContact(), context)!;
        await send(occurrence, notice);
        await notices.addDashboardNotification({
          idempotencyKey: key(occurrence),
          tenantId: state.tenantId,
          kind: 'downgradeWarning',
          message: renderTemplate(notice.template, notice.vars).subject,
        });
        return `grace ends ${context.deadlines.graceEndsAt}`;
      }
      case 'softLimit': {
        const percent = input.policy.downgrade.softLimitRatePercent;
        await serviceControls.applyServiceControls({ ...controlsBy(step), rateLimitPercent: percent });
        await notify();
        return `rate limited to ${percent}% of normal capacity`;
      }
      case 'hardLimit':
        await serviceControls.applyServiceControls({ ...controlsBy(step), apiBlocked: true });
        await notify();
        return 'new API requests blocked';
      case 'suspension':
        await serviceControls.applyServiceControls({ ...controlsBy(step), suspended: true });
        await notify();
        return 'account suspended';
      case 'deletion':
        return deleteTenant({
          state,
          workflowId: info.workflowId,
          key,
          guarded: checksPolicy,
          attention,
          tenantData,
          decisions,
        });
    }
  }

  /** An operator's retry between the scheduled ones: the schedule stays as it was; keyed by its own occurrence. */
  async function retryOnDemand(action: OperatorAction): Promise<void> {
    retriesRequested++;
    const step: LifecycleStep = {
      id: `retry-now-${retriesRequested}`,
      kind: 'paymentRetry',
      at: Date.now(),
      attempt: retriesRequested,
    };
    const context: NoticeContext = { deadlines: deadlines(state), billingPortalUrl: input.billingPortalUrl };
    const performed = await attend(step.id, () => retryPayments(step, context));
    state.timeline.push({
      at: new Date().toISOString(),
      event: step.id,
      detail: performed.done ? performed.value : performed.why,
      operator: action.operator,
      reason: action.reason ?? 'retry requested',
    });
    publish(state);
  }

  /** Every open invoice retried; while one stays unpaid, the first retry also sends the Payment Failure Notice. */
  async function retryPayments(step: LifecycleStep, context: NoticeContext): Promise<string> {
    const results: string[] = [];
    for (const invoice of outstanding(state)) {
      const result = await payments.retryInvoicePayment({
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
      const invoice = firstOpen(state);
      const link = await payments.createPaymentLink({
        tenantId: state.tenantId,
        invoiceId: invoice.invoiceId,
        idempotencyKey: key(`payment-link/${invoice.invoiceId}`),
      });
      const paymentLink = { invoiceId: invoice.invoiceId, url: link.url, sentAt: Date.now() };
      const to = await currentContact();
      await send('payment-failure-notice', stepNotice(step, state, to, { ...context, paymentLink }));
      state.failureNoticeSent = true;
    }
    return results.join('; ');
  }

  /** Rendered and emailed once under its occurrence key; a step without a notice sends nothing. */
  async function send(occurrence: string, notice: DunningNotice | null): Promise<void> {
    if (!notice) return;
    const message = renderTemplate(notice.template, notice.vars);
    await email.sendEmail({
      idempotencyKey: key(occurrence),
      tenantId: state.tenantId,
      to: notice.to,
      template: notice.template,
      ...message,
    });
  }

  /** Lifts the dunning's service controls (recovery, or a grace extended past a limit), on the timeline too. */
  async function restoreService(reason: string): Promise<void> {
    await attend('restore service', () =>
      serviceControls.restoreService({
        tenantId: state.tenantId,
        workflowId: info.workflowId,
        operator: SYSTEM_OPERATOR,
        reason,
        source: 'dunning',
      }),
    );
    state.timeline.push({ at: new Date().toISOString(), event: 'service restored', detail: reason });
  }

  function controlsBy(step: LifecycleStep) {
    return {
      tenantId: state.tenantId,
      workflowId: info.workflowId,
      operator: SYSTEM_OPERATOR,
      reason: `dunning ${step.id}: payment not collected`,
      source: 'dunning' as const,
    };
  }
}
