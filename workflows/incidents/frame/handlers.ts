// The messages every incident answers: status, acknowledge, resolve, pause, resume, alert fired or resolved, approvals,
// and the root cause. Signals never throw at the caller; updates reject early in their validators.
import { setHandler } from '@temporalio/workflow';
import {
  acknowledge,
  acknowledgeProblem,
  approvalProblem,
  note,
  operatorProblem,
  pause,
  pauseProblem,
  resolve,
  resolveProblem,
  resume,
  resumeProblem,
  statusOf,
  type IncidentInput,
  type IncidentState,
} from '../../../domain/incident';
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

/** A re-fired alert's signal: the incident input it carries opens a new occurrence once this one is resolved. */
export type AlertFired = { fingerprint: string; startsAt?: string; input?: IncidentInput<unknown> };

/**
 * Sets every handler on the incident's state; `changed` is told after each change, so the incidents row follows;
 * `refired` hears an alert that fires again after the incident was resolved (close.ts opens the next occurrence).
 */
export function setIncidentHandlers(
  state: IncidentState,
  changed: () => void,
  refired: (req: AlertFired) => void = () => undefined,
): void {
  let handlersReady = false;
  // A refused signal is written to the timeline with its reason.
  const refused = (what: string, reason: string, operator?: unknown) =>
    note(
      state,
      Date.now(),
      'refused',
      `${what}: ${reason}`,
      typeof operator === 'string' ? operator : undefined,
    );
  setHandler(incidentStatusQuery, () => statusOf(state));
  setHandler(acknowledgeSignal, (req) => {
    const problem = acknowledgeProblem(state, req?.operator);
    if (problem) refused('acknowledge', problem, req?.operator);
    else acknowledge(state, req.operator, Date.now());
    changed();
  });
  // An update where the caller (the CLI, the ingress) needs to hear whether it took.
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
    if (state.resolution !== null && req?.input) refired(req);
    changed();
  });
  // An approval answers the step waiting for it (escalation.ts); the validator refuses one nobody asked for.
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
  // The root cause ends the 48-hour wait of the close (close.ts).
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
}

function throwIf(problem: string | null): void {
  if (problem) throw new Error(problem);
}
