// How every incident ends: the DECISIONS.log line, the pager told, the report, then the root cause within 48 hours or
// the reminder (seed 000 "Post-incident").
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  uuid4,
} from '@temporalio/workflow';
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
import type { AlertFired } from './handlers';
import { MINUTE_MS } from '../../../domain/vocabulary';

export interface IncidentOutcome {
  workflowId: string;
  status: IncidentStatus;
  decisionLine: string;
  reportPath: string;
}

/** An earlier occurrence's root-cause reminder, handed to the next occurrence to send at its due time. */
export interface PendingReminder {
  idempotencyKey: string;
  workflowId: string;
  occurrence: string;
  incidentType: string;
  resolvedAt: string;
  hours: number;
  dueAt: string;
}

/** The input of a run that is a re-fired alert's new occurrence: its own id and the reminders still owed. */
export type OccurrenceInput = IncidentInput<unknown> & {
  carried?: { occurrence: string; reminders: PendingReminder[] };
};

/** What the close works with: the open incident, its activities, and its escalation clock. */
export interface Closing {
  state: IncidentState;
  input: IncidentInput<unknown>;
  key(step: string): string;
  /** Which occurrence of the incident this run is (the incidents row's second key). */
  occurrence: string;
  /** The alert fired again after the resolution (handlers.ts), or null. */
  refired(): AlertFired | null;
  /** Earlier occurrences' reminders not sent yet. */
  pendingReminders(): PendingReminder[];
  page: Page;
  publish(): Promise<void>;
  escalation: { readonly done: boolean };
  decisions: DecisionActivities;
  incidents: IncidentActivities;
}

export async function closeIncident(closing: Closing, facts: ClosingFacts): Promise<IncidentOutcome> {
  const { state, input, key, occurrence, page, publish, decisions, incidents } = closing;
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
    occurrence,
    markdown: incidentReport(state, Date.now()),
  });
  await publish();
  // 4. Root cause within 48 hours, or a reminder. The alert firing again meanwhile opens a new occurrence.
  const hours = input.policy.postIncident.rootCauseReminderHours;
  state.currentStep = 'waiting for the root-cause analysis';
  await publish();
  const refireOpens = patched('refire-opens-occurrence');
  const dueAt = Date.now() + hours * 60 * MINUTE_MS;
  const answered = await condition(
    () => state.rca !== null || (refireOpens && closing.refired() !== null),
    hours * 60 * MINUTE_MS,
  );
  const refire = closing.refired();
  if (answered && state.rca === null && refire?.input) {
    return openNextOccurrence(closing, refire.input, {
      idempotencyKey: key('rca-reminder'),
      workflowId,
      occurrence,
      incidentType: input.kind,
      resolvedAt: state.resolution.at,
      hours,
      dueAt: new Date(dueAt).toISOString(),
    });
  }
  if (!answered) {
    await incidents.sendRootCauseReminder({
      idempotencyKey: key('rca-reminder'),
      workflowId,
      occurrence,
      incidentType: input.kind,
      resolvedAt: state.resolution.at,
      hours,
    });
    note(state, Date.now(), 'rca_reminder_sent', `no root cause recorded ${hours} hours after resolution`);
  } else {
    await incidents.recordRootCause({
      workflowId,
      occurrence,
      summary: state.rca!.summary,
      operator: state.rca!.by,
      at: state.rca!.at,
    });
    await incidents.storeIncidentReport({
      workflowId,
      occurrence,
      markdown: incidentReport(state, Date.now()),
    });
  }
  state.currentStep = null;
  state.closedAt = new Date(Date.now()).toISOString();
  note(state, Date.now(), 'closed');
  await publish();
  // The clock stops once the incident is closed; every handler finishes before the workflow returns.
  await condition(() => closing.escalation.done || nextLevelDue(state) === null);
  // Earlier occurrences' reminders still owed go out at their time before the workflow ends; the alert firing again
  // meanwhile (or since the wait for the root cause ended) opens the next occurrence, which sends them.
  const refiredSince = () => refireOpens && closing.refired()?.input !== undefined;
  await condition(() => closing.pendingReminders().length === 0 || refiredSince());
  if (refiredSince()) return openNextOccurrence(closing, closing.refired()!.input!, null);
  await condition(allHandlersFinished);
  return {
    workflowId,
    status: statusOf(state),
    decisionLine: recorded.line,
    reportPath,
  };
}

/**
 * The alert fired again while this occurrence waited for its root cause: the workflow continues as a new run with the
 * re-fired alert's input, a new occurrence id (new idempotency keys, so containment acts again), and the reminders
 * still owed, this occurrence's among them, each sent by the next run at its due time.
 */
async function openNextOccurrence(
  closing: Closing,
  next: IncidentInput<unknown>,
  reminder: PendingReminder | null,
): Promise<never> {
  const { state, publish } = closing;
  state.currentStep = null;
  note(
    state,
    Date.now(),
    'reopened',
    'the alert fired again: a new occurrence opens with its own containment',
  );
  await publish();
  await condition(() => closing.escalation.done || nextLevelDue(state) === null);
  await condition(allHandlersFinished);
  const carried: OccurrenceInput = {
    ...next,
    carried: {
      occurrence: uuid4(),
      reminders: [...closing.pendingReminders(), ...(reminder ? [reminder] : [])],
    },
  };
  return continueAsNew<(input: OccurrenceInput) => Promise<unknown>>(carried);
}
