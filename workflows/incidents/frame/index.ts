// What every incident workflow shares: its handlers, the escalation clock, steps, approvals, waiting for recovery,
// and the ending (DECISIONS.log line, report, pager resolve, 48-hour root-cause reminder). Not a workflow itself.
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
import type { BillopsActivities } from '../../../activities';
import {
  acknowledge,
  acknowledgeProblem,
  approvalProblem,
  decisionEntry,
  describeIncident,
  escalate,
  newIncidentState,
  nextLevelDue,
  note,
  operatorProblem,
  pause,
  pauseProblem,
  resolve,
  resolveProblem,
  resume,
  resumeProblem,
  statusOf,
  type Approval,
  type ClosingFacts,
  type IncidentInput,
  type IncidentState,
  type IncidentStatus,
} from '../../../domain/incident';
import { incidentReport } from '../../../domain/incidentReport';
import {
  IncidentKind as IncidentKindKey,
  Severity as SeverityKey,
  TenantId,
} from '../../../domain/searchAttributes';
import {
  acknowledgeSignal,
  acknowledgeUpdate,
  alertFiredSignal,
  alertResolvedSignal,
  approveStepUpdate,
  incidentStatusQuery,
  pauseSignal,
  recordRootCauseUpdate,
  resolveSignal,
  resolveUpdate,
  resumeSignal,
} from '../../definitions';

export const BILLOPS = 'billops';
const MINUTE_MS = 60_000;

export type RecoveredBy = 'alert_resolved' | 'operator_resolved' | 'probe_healthy' | 'timed_out';

export interface IncidentOutcome {
  workflowId: string;
  status: IncidentStatus;
  decisionLine: string;
  reportPath: string;
}

export type IncidentActivities = BillopsActivities;

/** One open incident: its state, its activities, and the runbook verbs a workflow body is written in. */
export interface Incident {
  readonly state: IncidentState;
  readonly act: IncidentActivities;
  readonly input: IncidentInput<unknown>;
  /** Workflow id + step: the idempotency key of an activity with an outside effect. */
  key(step: string): string;
  /** One runbook step: waits while paused, runs, and records it as done with what it found. */
  step<T>(name: string, run: () => Promise<T>, detail?: (result: T) => string | undefined): Promise<T>;
  /** Records a step the workflow decided not to take, with why. */
  skip(name: string, why: string): void;
  /** A person decides: waits for `approveStep`; each response time that passes unanswered escalates a level. */
  approval(step: string, question: string): Promise<Approval>;
  /** Until `alertResolved`, an operator's `resolve`, a healthy probe (backing off), or `maxMinutes`. */
  waitForRecovery(opts?: {
    probe?: () => Promise<boolean>;
    firstProbeAfterMinutes?: number;
    maxProbeIntervalMinutes?: number;
    maxMinutes?: number;
  }): Promise<RecoveredBy>;
  /** Until an operator resolves it. */
  waitForResolution(): Promise<void>;
  /** billops resolves it itself (automated kinds), unless an operator already has. */
  resolveAsBillops(summary: string): void;
  affects(tenantIds: Iterable<string>): void;
  /** Writes the incidents row and the Web UI's line now. */
  publish(): Promise<void>;
  /** The ending: DECISIONS.log line, report, pager resolve, then the root-cause reminder unless an RCA arrives. */
  close(facts: ClosingFacts): Promise<IncidentOutcome>;
}

export async function openIncident(input: IncidentInput<unknown>): Promise<Incident> {
  const info = workflowInfo();
  const state = newIncidentState(input, info.workflowId, Date.now());
  const retry = input.policy.apiRetry;
  const act = proxyActivities<IncidentActivities>({
    startToCloseTimeout: '1 minute',
    retry: {
      initialInterval: retry.initialIntervalMs,
      maximumInterval: retry.maximumIntervalMs,
      backoffCoefficient: retry.backoffCoefficient,
      nonRetryableErrorTypes: ['TenantUnknown', 'InvalidDecision', 'PagingRejected', 'StatusPageRefused'],
    },
  });
  const key = (step: string) => `${info.workflowId}/${step}`;
  let dirty = true;
  let handlersReady = false;

  // ---- Message handling ----
  // Signals never throw at the caller: a refused one is written to the timeline with its reason.
  const refused = (what: string, reason: string, operator?: unknown) =>
    note(
      state,
      Date.now(),
      'refused',
      `${what}: ${reason}`,
      typeof operator === 'string' ? operator : undefined,
    );
  const changed = () => {
    dirty = true;
  };
  setHandler(incidentStatusQuery, () => statusOf(state));
  setHandler(acknowledgeSignal, (req) => {
    const problem = acknowledgeProblem(state, req?.operator);
    if (problem) refused('acknowledge', problem, req?.operator);
    else acknowledge(state, req.operator, Date.now());
    changed();
  });
  setHandler(
    acknowledgeUpdate,
    (req) => {
      acknowledge(state, req.operator, Date.now());
      changed();
      return statusOf(state);
    },
    { validator: (req) => throwIf(acknowledgeProblem(state, req?.operator)) },
  );
  setHandler(resolveSignal, (req) => {
    const problem = resolveProblem(state, req?.operator, req?.summary);
    if (problem) refused('resolve', problem, req?.operator);
    else resolve(state, req.operator, req.summary, Date.now());
    changed();
  });
  setHandler(
    resolveUpdate,
    (req) => {
      resolve(state, req.operator, req.summary, Date.now());
      changed();
      return statusOf(state);
    },
    { validator: (req) => throwIf(resolveProblem(state, req?.operator, req?.summary)) },
  );
  setHandler(pauseSignal, (req) => {
    const problem = pauseProblem(state, req?.operator);
    if (problem) refused('pause', problem, req?.operator);
    else pause(state, req.operator, req.reason, Date.now());
    changed();
  });
  setHandler(resumeSignal, (req) => {
    const problem = resumeProblem(state, req?.operator);
    if (problem) refused('resume', problem, req?.operator);
    else resume(state, req.operator, Date.now());
    changed();
  });
  setHandler(alertResolvedSignal, (req) => {
    if (state.alertResolvedAt) return;
    state.alertResolvedAt = new Date(Date.now()).toISOString();
    note(state, Date.now(), 'alert_resolved', req?.endsAt ? `alert ended at ${req.endsAt}` : undefined);
    changed();
  });
  setHandler(alertFiredSignal, (req) => {
    // The signal-with-start that opened the incident delivers one too, while the handlers are being set: not a repeat.
    if (!handlersReady) return;
    note(state, Date.now(), 'alert_fired_again', req?.fingerprint);
    changed();
  });
  setHandler(
    approveStepUpdate,
    (approval) => {
      state.approvals.push({ ...approval, operator: approval.operator.trim() });
      note(
        state,
        Date.now(),
        approval.approved ? 'approved' : 'declined',
        `${approval.step}${approval.reason ? `: ${approval.reason}` : ''}`,
        approval.operator.trim(),
      );
      state.pendingApproval = null;
      changed();
      return statusOf(state);
    },
    { validator: (approval) => throwIf(approvalProblem(state, approval ?? {})) },
  );
  setHandler(
    recordRootCauseUpdate,
    (req) => {
      state.rca = {
        by: req.operator.trim(),
        at: new Date(Date.now()).toISOString(),
        summary: req.summary.trim(),
      };
      note(state, Date.now(), 'root_cause_recorded', req.summary.trim(), req.operator.trim());
      changed();
      return statusOf(state);
    },
    {
      validator: (req) => {
        throwIf(operatorProblem(state, req?.operator));
        if (typeof req.summary !== 'string' || req.summary.trim() === '')
          throw new Error('a root-cause summary is required');
        if (state.rca)
          throw new Error(`a root cause was already recorded by ${state.rca.by} at ${state.rca.at}`);
      },
    },
  );

  handlersReady = true;

  // ---- The Web UI and the incidents row ----
  const attributes = [
    { key: IncidentKindKey, value: input.kind },
    { key: SeverityKey, value: state.severity },
  ];
  const onlyTenant = input.tenantIds?.length === 1 ? input.tenantIds[0] : undefined;
  upsertSearchAttributes(onlyTenant ? [...attributes, { key: TenantId, value: onlyTenant }] : attributes);
  const publish = async () => {
    dirty = false;
    setCurrentDetails(describeIncident(state));
    await act.recordIncident(statusOf(state));
  };

  // ---- Escalation: page level 0 now, then each next level when its time passes unacknowledged ----
  const page = async (level: 0 | 1 | 2, contacts: string[], action: 'trigger' | 'acknowledge' | 'resolve') =>
    act.page({
      dedupKey: info.workflowId,
      incidentKind: input.kind,
      severity: state.severity,
      level,
      summary: `[${state.severity}] ${input.summary}`,
      contacts,
      workflowId: info.workflowId,
      action,
    });
  const firstLevel = state.plan[0]!;
  const firstPage = await page(0, firstLevel.contacts, 'trigger');
  note(state, Date.now(), 'paged', `${firstLevel.contacts.join(', ')} (${pagedVia(firstPage)})`);
  await publish();

  let escalationDone = false;
  const escalation = (async () => {
    for (;;) {
      const due = nextLevelDue(state);
      if (!due || state.closedAt) break;
      if (state.paused) {
        await condition(() => !state.paused || state.closedAt !== null);
        continue;
      }
      const interrupted = await condition(
        () => state.acknowledged !== null || state.resolution !== null || state.paused !== null,
        Math.max(1, due.at - Date.now()),
      );
      if (interrupted) continue;
      const result = await page(due.level.level, due.level.contacts, 'trigger');
      escalate(state, due.level, Date.now());
      note(state, Date.now(), 'paged', `${due.level.contacts.join(', ')} (${pagedVia(result)})`);
      await publish();
    }
    escalationDone = true;
  })();

  const whileNotPaused = () => condition(() => state.paused === null);

  const incident: Incident = {
    state,
    act,
    input,
    key,
    async step(name, run, detail) {
      await whileNotPaused();
      state.currentStep = name;
      if (dirty) await publish();
      else setCurrentDetails(describeIncident(state));
      const result = await run();
      const found = detail?.(result);
      state.stepsDone.push({
        name,
        at: new Date(Date.now()).toISOString(),
        ...(found ? { detail: found } : {}),
      });
      note(state, Date.now(), 'step', found ? `${name}: ${found}` : name);
      state.currentStep = null;
      await publish();
      return result;
    },
    skip(name, why) {
      note(state, Date.now(), 'skipped', `${name}: ${why}`);
    },
    async approval(step, question) {
      await whileNotPaused();
      state.pendingApproval = { step, question, since: new Date(Date.now()).toISOString() };
      note(state, Date.now(), 'approval_requested', `${step}: ${question}`);
      await publish();
      const answered = () => state.approvals.some((a) => a.step === step) || state.resolution !== null;
      while (!(await condition(answered, state.responseMinutes * MINUTE_MS))) {
        // Nobody answered within the response time: the next level hears about it (the last level again).
        const next = state.plan.find((l) => l.level > state.escalationLevel) ?? state.plan.at(-1)!;
        const result = await page(next.level, next.contacts, 'trigger');
        if (next.level > state.escalationLevel) escalate(state, next, Date.now());
        note(
          state,
          Date.now(),
          'approval_overdue',
          `${step}: paged ${next.contacts.join(', ')} (${pagedVia(result)})`,
        );
        await publish();
      }
      state.pendingApproval = null;
      const approval = [...state.approvals].reverse().find((a) => a.step === step);
      if (approval) return approval;
      // Resolved while waiting: the step is not taken.
      return {
        step,
        approved: false,
        operator: state.resolution!.by,
        reason: 'incident resolved while waiting',
      };
    },
    async waitForRecovery(opts = {}) {
      const recovered = () => state.alertResolvedAt !== null || state.resolution !== null;
      const deadline = opts.maxMinutes === undefined ? Infinity : Date.now() + opts.maxMinutes * MINUTE_MS;
      let interval = (opts.firstProbeAfterMinutes ?? 1) * MINUTE_MS;
      const cap = (opts.maxProbeIntervalMinutes ?? 15) * MINUTE_MS;
      state.currentStep = 'waiting for recovery';
      await publish();
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) return 'timed_out';
        const wait = opts.probe ? Math.min(interval, left) : left === Infinity ? undefined : left;
        const done =
          wait === undefined ? (await condition(recovered), true) : await condition(recovered, wait);
        if (done) {
          state.currentStep = null;
          return state.alertResolvedAt !== null ? 'alert_resolved' : 'operator_resolved';
        }
        if (opts.probe && !state.paused && (await opts.probe())) {
          note(state, Date.now(), 'probe_healthy');
          state.currentStep = null;
          return 'probe_healthy';
        }
        interval = Math.min(cap, interval * 2);
      }
    },
    async waitForResolution() {
      if (!state.resolution) {
        state.currentStep = 'waiting for an operator to resolve';
        await publish();
      }
      await condition(() => state.resolution !== null);
      state.currentStep = null;
    },
    resolveAsBillops(summary) {
      if (!state.resolution) resolve(state, BILLOPS, summary, Date.now());
    },
    affects(tenantIds) {
      for (const id of tenantIds) state.tenantsAffected.add(id);
    },
    publish,
    async close(facts) {
      if (!state.resolution) {
        throw ApplicationFailure.nonRetryable(
          'close() before the incident was resolved',
          'IncidentNotResolved',
        );
      }
      // 1. The DECISIONS.log line (seed 000), stored and appended once.
      const recorded = await act.recordDecision({
        idempotencyKey: key('decision'),
        workflowId: info.workflowId,
        entry: decisionEntry(state, facts, Date.now()),
      });
      note(state, Date.now(), 'decision_recorded', recorded.line);
      // 2. The pager hears it is over.
      await page(state.escalationLevel, [], 'resolve');
      // 3. The report from the timeline (seed 004's template).
      const reportPath = await act.storeIncidentReport({
        workflowId: info.workflowId,
        markdown: incidentReport(state, Date.now()),
      });
      await publish();
      // 4. Root cause within 48 hours, or a reminder.
      const hours = input.policy.postIncident.rootCauseReminderHours;
      state.currentStep = 'waiting for the root-cause analysis';
      await publish();
      if (!(await condition(() => state.rca !== null, hours * 60 * MINUTE_MS))) {
        await act.sendRootCauseReminder({
          idempotencyKey: key('rca-reminder'),
          workflowId: info.workflowId,
          incidentType: input.kind,
          resolvedAt: state.resolution.at,
          hours,
        });
        note(
          state,
          Date.now(),
          'rca_reminder_sent',
          `no root cause recorded ${hours} hours after resolution`,
        );
      } else {
        await act.recordRootCause({
          workflowId: info.workflowId,
          summary: state.rca!.summary,
          operator: state.rca!.by,
          at: state.rca!.at,
        });
        await act.storeIncidentReport({
          workflowId: info.workflowId,
          markdown: incidentReport(state, Date.now()),
        });
      }
      state.currentStep = null;
      state.closedAt = new Date(Date.now()).toISOString();
      note(state, Date.now(), 'closed');
      await publish();
      await condition(() => escalationDone || nextLevelDue(state) === null);
      void escalation;
      await condition(allHandlersFinished);
      return {
        workflowId: info.workflowId,
        status: statusOf(state),
        decisionLine: recorded.line,
        reportPath,
      };
    },
  };
  return incident;
}

function throwIf(problem: string | null): void {
  if (problem) throw new Error(problem);
}

function pagedVia(result: { pagerDuty: string; slack: string }): string {
  const via = [
    result.pagerDuty === 'accepted' ? 'PagerDuty' : null,
    result.slack === 'posted' ? 'Slack' : null,
  ].filter(Boolean);
  return via.length > 0 ? `via ${via.join(' and ')}` : 'no pager configured';
}
