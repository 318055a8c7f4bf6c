// How every incident ends: the DECISIONS.log line, the pager told, the report, then the root cause within 48 hours or
// the reminder (seed 000 "Post-incident").
import { ApplicationFailure, allHandlersFinished, condition } from '@temporalio/workflow';
import type { DecisionActivities } from '../../../activities/decisions';
import type { IncidentActivities } from '../../../activities/incidents/common';
import {
  decisionEntry,
  nextLevelDue,
  note,
  statusOf,
  type ClosingFacts,
  type IncidentInput,
  type IncidentState,
  type IncidentStatus,
} from '../../../domain/incident';
import { incidentReport } from '../../../domain/incidentReport';
import type { Page } from './escalation';
import { MINUTE_MS } from '../../../domain/vocabulary';

export interface IncidentOutcome {
  workflowId: string;
  status: IncidentStatus;
  decisionLine: string;
  reportPath: string;
}

/** What the close works with: the open incident, its activities, and its escalation clock. */
export interface Closing {
  state: IncidentState;
  input: IncidentInput<unknown>;
  key(step: string): string;
  page: Page;
  publish(): Promise<void>;
  escalation: { readonly done: boolean };
  decisions: DecisionActivities;
  incidents: IncidentActivities;
}

export async function closeIncident(closing: Closing, facts: ClosingFacts): Promise<IncidentOutcome> {
  const { state, input, key, page, publish, decisions, incidents } = closing;
  const workflowId = state.workflowId;
  if (!state.resolution) {
    throw ApplicationFailure.nonRetryable('close() before the incident was resolved', 'IncidentNotResolved');
  }
  // 1. The DECISIONS.log line (seed 000), stored and appended once.
  const recorded = await decisions.recordDecision({
    idempotencyKey: key('decision'),
    workflowId,
    entry: decisionEntry(state, facts, Date.now()),
  });
  note(state, Date.now(), 'decision_recorded', recorded.line);
  // 2. The pager hears it is over.
  await page(state.escalationLevel, [], 'resolve');
  // 3. The report from the timeline (seed 004's template).
  const reportPath = await incidents.storeIncidentReport({
    workflowId,
    markdown: incidentReport(state, Date.now()),
  });
  await publish();
  // 4. Root cause within 48 hours, or a reminder.
  const hours = input.policy.postIncident.rootCauseReminderHours;
  state.currentStep = 'waiting for the root-cause analysis';
  await publish();
  if (!(await condition(() => state.rca !== null, hours * 60 * MINUTE_MS))) {
    await incidents.sendRootCauseReminder({
      idempotencyKey: key('rca-reminder'),
      workflowId,
      incidentType: input.kind,
      resolvedAt: state.resolution.at,
      hours,
    });
    note(state, Date.now(), 'rca_reminder_sent', `no root cause recorded ${hours} hours after resolution`);
  } else {
    await incidents.recordRootCause({
      workflowId,
      summary: state.rca!.summary,
      operator: state.rca!.by,
      at: state.rca!.at,
    });
    await incidents.storeIncidentReport({
      workflowId,
      markdown: incidentReport(state, Date.now()),
    });
  }
  state.currentStep = null;
  state.closedAt = new Date(Date.now()).toISOString();
  note(state, Date.now(), 'closed');
  await publish();
  // The clock stops once the incident is closed; every handler finishes before the workflow returns.
  await condition(() => closing.escalation.done || nextLevelDue(state) === null);
  await condition(allHandlersFinished);
  return {
    workflowId,
    status: statusOf(state),
    decisionLine: recorded.line,
    reportPath,
  };
}
