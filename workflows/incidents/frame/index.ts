// What every incident workflow shares, opened once at its start: the handlers, the escalation clock, steps,
// approvals, waiting for recovery, and the close. Not a workflow itself.
import {
  condition,
  patched,
  proxyActivities,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DecisionActivities } from '../../../activities/decisions';
import type { IncidentActivities } from '../../../activities/incidents/common';
import type { PagingActivities } from '../../../activities/paging';
import {
  describeIncident,
  newIncidentState,
  note,
  resolve,
  statusOf,
  type Approval,
  type ClosingFacts,
  type IncidentInput,
  type IncidentState,
} from '../../../domain/incident';
import {
  IncidentKind as IncidentKindKey,
  Severity as SeverityKey,
  TenantId,
} from '../../../domain/searchAttributes';
import { incidentStep } from '../../shared/activityOptions';
import { closeIncident, type IncidentOutcome, type OccurrenceInput, type PendingReminder } from './close';
import { incidentAttention } from './attention';
import { awaitApproval, pageFirstLevel, pagerOf, startEscalationClock } from './escalation';
import { setIncidentHandlers, type AlertFired } from './handlers';
import { MINUTE_MS, SYSTEM_OPERATOR } from '../../../domain/vocabulary';

export type { IncidentOutcome, OccurrenceInput } from './close';

/** The operator name billops writes for what it did by itself. */
export const BILLOPS = SYSTEM_OPERATOR;

export type RecoveredBy = 'alert_resolved' | 'operator_resolved' | 'probe_healthy' | 'timed_out';

/** One open incident: its state and the runbook verbs a workflow body is written in. */
export interface Incident {
  readonly state: IncidentState;
  readonly input: IncidentInput<unknown>;
  /**
   * Workflow id + occurrence + step: the idempotency key of an activity with an outside effect. The occurrence is the
   * first run's id, or the id a re-fired alert's new occurrence carries (close.ts), so each occurrence acts anew.
   */
  key(step: string): string;
  /** One runbook step: waits while paused, runs, and records it as done with what it found. */
  step<T>(
    name: string,
    run: () => Promise<T>,
    detail?: (result: T) => string | undefined,
    /** What the step answers when an operator skips it while it waits for attention; absent: it cannot be skipped. */
    skipped?: T,
  ): Promise<T>;
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
  const incidents = proxyActivities<IncidentActivities>(incidentStep(input.policy));
  const paging = proxyActivities<PagingActivities>(incidentStep(input.policy));
  const decisions = proxyActivities<DecisionActivities>(incidentStep(input.policy));
  const carried = (input as OccurrenceInput).carried;
  const occurrence = carried?.occurrence ?? info.firstExecutionRunId;
  const key = (step: string) => `${info.workflowId}/${occurrence}/${step}`;
  // Issue 15 item 2, for incidents opened from this version on (recorded histories replay without it).
  const attends = patched('incident-waits-for-attention');
  let dirty = true;
  let refire: AlertFired | null = null;

  // ---- Message handling ----
  setIncidentHandlers(
    state,
    () => {
      dirty = true;
    },
    (req) => {
      refire ??= req;
    },
  );

  // ---- Root-cause reminders of earlier occurrences, each sent at its due time ----
  const reminders: (PendingReminder & { sent?: boolean })[] = (carried?.reminders ?? []).map((r) => ({
    ...r,
  }));
  for (const reminder of reminders) {
    void (async () => {
      const wait = Date.parse(reminder.dueAt) - Date.now();
      if (wait > 0) await sleep(wait);
      await incidents.sendRootCauseReminder({
        idempotencyKey: reminder.idempotencyKey,
        workflowId: reminder.workflowId,
        occurrence: reminder.occurrence,
        incidentType: reminder.incidentType,
        resolvedAt: reminder.resolvedAt,
        hours: reminder.hours,
      });
      reminder.sent = true;
      note(
        state,
        Date.now(),
        'rca_reminder_sent',
        `the occurrence resolved at ${reminder.resolvedAt}: no root cause recorded ${reminder.hours} hours after resolution`,
      );
      dirty = true;
    })();
  }

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
    await incidents.recordIncident({ ...statusOf(state), occurrence });
  };

  // ---- A step only a person can fix waits for attention; a refused page is shown and told, never a stop ----
  const attention = incidentAttention(input, state, key, () => {
    dirty = true;
  });
  const pagerRefused = async (level: number, reason: string, errorType: string) => {
    await attention.waitFor({
      step: `page level ${level}`,
      reason,
      errorType,
      since: new Date(Date.now()).toISOString(),
      attempts: 1,
      nextRetryAt: null,
      actions:
        'fix the pager integration (its routing key or webhook URL); the incident goes on, each next escalation ' +
        `pages again; acknowledge with \`billops ack ${info.workflowId}\``,
    });
  };
  const pagerAnswered = async () => {
    if (attention.waiting?.step.startsWith('page level')) await attention.clear('the pager accepted a page');
  };

  // ---- Escalation: page level 0 now, then each next level when its time passes unacknowledged ----
  const page = pagerOf(
    input,
    state,
    paging,
    attends ? { refused: pagerRefused, answered: pagerAnswered } : undefined,
  );
  await pageFirstLevel(state, page);
  await publish();
  const escalation = startEscalationClock(state, page, publish);

  const whileNotPaused = () => condition(() => state.paused === null);

  return {
    state,
    input,
    key,
    async step<T>(
      name: string,
      run: () => Promise<T>,
      detail?: (result: T) => string | undefined,
      skipped?: T,
    ): Promise<T> {
      await whileNotPaused();
      state.currentStep = name;
      if (dirty) await publish();
      else setCurrentDetails(describeIncident(state));
      let result: T;
      if (attends) {
        const attended = await attention.run(name, run, { skippable: skipped !== undefined });
        if (!attended.done) {
          note(state, Date.now(), 'skipped', `${name}: ${attended.why}`);
          state.currentStep = null;
          await publish();
          return skipped as T;
        }
        result = attended.value;
      } else {
        result = await run();
      }
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
    approval: (step, question) => awaitApproval(state, page, publish, step, question),
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
    close: (facts) =>
      closeIncident(
        {
          state,
          input,
          key,
          occurrence,
          page,
          publish,
          escalation,
          decisions,
          incidents,
          refired: () => refire,
          pendingReminders: () => reminders.filter((r) => !r.sent).map(({ sent: _sent, ...r }) => r),
        },
        facts,
      ),
  };
}
