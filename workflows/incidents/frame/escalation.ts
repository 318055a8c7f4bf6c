// The escalation clock of an open incident (seed 004's matrix): level 0 paged at once, each next level when its time
// passes unacknowledged, and a step waiting for approval paging the next level each time its response time passes.
import { ActivityFailure, ApplicationFailure, condition } from '@temporalio/workflow';
import type { PageAction, PageResult, PagingActivities } from '../../../activities/paging';
import type { EscalationLevel } from '../../../domain/escalation';
import {
  escalate,
  nextLevelDue,
  note,
  type Approval,
  type IncidentInput,
  type IncidentState,
} from '../../../domain/incident';
import { MINUTE_MS } from '../../../domain/vocabulary';

/** Pages one level's contacts about this incident; the workflow id is the pager's dedup key. */
export type Page = (
  level: EscalationLevel['level'],
  contacts: string[],
  action: PageAction,
) => Promise<PageResult | null>;

/** What the incident does when the pager refuses a page for good (a 4xx) and when it takes one again. */
export interface PagerWatch {
  refused(level: number, reason: string, errorType: string): Promise<void>;
  answered(): Promise<void>;
}

/** A page; null when the pager refused it for good and `watch` was told (without a watch, the refusal is thrown). */
export function pagerOf(
  input: IncidentInput<unknown>,
  state: IncidentState,
  paging: PagingActivities,
  watch?: PagerWatch,
): Page {
  return async (level, contacts, action) => {
    try {
      const result = await paging.page({
        dedupKey: state.workflowId,
        incidentKind: input.kind,
        severity: state.severity,
        level,
        summary: `[${state.severity}] ${input.summary}`,
        contacts,
        workflowId: state.workflowId,
        action,
      });
      await watch?.answered();
      return result;
    } catch (err) {
      if (!watch || !(err instanceof ActivityFailure)) throw err;
      const cause = err.cause;
      await watch.refused(
        level,
        cause?.message ?? err.message,
        cause instanceof ApplicationFailure && cause.type ? cause.type : 'PagerRejected',
      );
      return null;
    }
  };
}

/** Level 0, the first responders, hear about it now. */
export async function pageFirstLevel(state: IncidentState, page: Page): Promise<void> {
  const firstLevel = state.plan[0]!;
  const firstPage = await page(0, firstLevel.contacts, 'trigger');
  note(state, Date.now(), 'paged', `${firstLevel.contacts.join(', ')} (${pagedVia(firstPage)})`);
}

/**
 * Each next level is paged when its time passes with nobody acknowledging; a pause stops the clock. Runs beside the
 * workflow body until no level is left or the incident closed; `done` tells the close when it has stopped.
 */
export function startEscalationClock(
  state: IncidentState,
  page: Page,
  publish: () => Promise<void>,
): { readonly done: boolean } {
  const clock = { done: false };
  void (async () => {
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
    clock.done = true;
  })();
  return clock;
}

/** A person decides: waits for `approveStep`; each response time that passes unanswered escalates a level. */
export async function awaitApproval(
  state: IncidentState,
  page: Page,
  publish: () => Promise<void>,
  step: string,
  question: string,
): Promise<Approval> {
  await condition(() => state.paused === null);
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
}

function pagedVia(result: PageResult | null): string {
  if (!result) return 'the pager refused the page: see the attention note';
  const via = [
    result.pagerDuty === 'accepted' ? 'PagerDuty' : null,
    result.slack === 'posted' ? 'Slack' : null,
  ].filter(Boolean);
  return via.length > 0 ? `via ${via.join(' and ')}` : 'no pager configured';
}
