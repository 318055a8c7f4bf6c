// The dunning workflow's pieces that need no activity: the policy snapshot checked, the first state, waiting for a
// step to fall due, and what the Web UI shows.
import {
  ApplicationFailure,
  condition,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import {
  DunningRefusedError,
  describeLifecycle,
  isRecovered,
  newDunningState,
  pause,
  type GraceExtension,
  type DunningInput,
  type DunningState,
  type LifecycleStep,
} from '../../domain/dunning';
import type { DunningRecordActivities } from '../../activities/dunningRecords';
import { parsePolicy, PolicyError } from '../../domain/policy';
import { SYSTEM_OPERATOR } from '../../domain/vocabulary';
import { DunningPhase as DunningPhaseKey, NeedsAttention } from '../../domain/searchAttributes';
import { createAttention, operatorNotifier, type Attention } from '../shared/attention';

/**
 * The policy snapshot checked against the schema and its safety floors before anything happens: a direct start with
 * a crafted policy (deletion the day after suspension) is refused with the reason. Settings a snapshot from an older
 * billops lacks take their defaults.
 */
export function withCheckedPolicy(input: DunningInput): DunningInput {
  try {
    return { ...input, policy: parsePolicy(input.policy) };
  } catch (err) {
    if (err instanceof PolicyError)
      throw ApplicationFailure.nonRetryable(
        `the lifecycle's policy snapshot is refused: ${err.message}`,
        'PolicyRefused',
      );
    throw err;
  }
}

/** The lifecycle's first state; a tier with nothing to dun refuses to start, and the failure says why. */
export function startingState(input: DunningInput, workflowKey: string): DunningState {
  try {
    return newDunningState(input, workflowKey, Date.now());
  } catch (err) {
    if (err instanceof DunningRefusedError)
      throw ApplicationFailure.nonRetryable(err.message, 'DunningRefused');
    throw err;
  }
}

/**
 * Sleeps until the step is due. False when something moved the schedule first, or `woken` (an operator's request)
 * holds; recovery is checked by the caller.
 */
export async function waitUntilDue(
  state: DunningState,
  step: LifecycleStep,
  woken: () => boolean = () => false,
): Promise<boolean> {
  if (state.paused) {
    await condition(() => !state.paused || isRecovered(state) || woken());
    return false;
  }
  const revision = state.revision;
  const remaining = step.at - Date.now();
  if (remaining <= 0) return true;
  const interrupted = await condition(
    () => state.paused || isRecovered(state) || state.revision !== revision || woken(),
    remaining,
  );
  return !interrupted;
}

/** Search attributes and the Web UI's current-details line follow the phase. */
export function publish(state: DunningState): void {
  upsertSearchAttributes([{ key: DunningPhaseKey, value: state.phase }]);
  setCurrentDetails(describeLifecycle(state));
}

/** The lifecycle's wait for attention: in its status, its timeline, the NeedsAttention search attribute and the Web UI. */
export function dunningAttention(
  state: DunningState,
  key: (step: string) => string,
  workflowId: string,
): Attention {
  const noted = (event: string, detail: string) =>
    state.timeline.push({ at: new Date().toISOString(), event, detail });
  return createAttention({
    policy: state.policy,
    actions:
      `fix the cause, then \`billops dunning retry ${state.tenantId}\`; or \`billops dunning skip ` +
      `${state.tenantId} --reason "..."\` to go on without this step`,
    changed(wait, detail) {
      state.attention = wait;
      upsertSearchAttributes([{ key: NeedsAttention, value: wait ? wait.errorType : null }]);
      noted(wait ? 'waiting for attention' : 'attention cleared', wait ? `${wait.step}: ${detail}` : detail);
      publish(state);
    },
    notify: operatorNotifier(state.policy, workflowId, key, (told) => noted('operators told', told)),
    held: () => state.paused,
    moot: () => isRecovered(state),
  });
}

/** Started while its processor's outage is open: the same grace and pause the outage gave the lifecycles before it. */
export function joinOutage(
  state: DunningState,
  hold: NonNullable<Awaited<ReturnType<DunningRecordActivities['activeOutageHold']>>>,
  extend: (extension: GraceExtension) => unknown,
): void {
  const reason = `${state.processor} outage ${hold.workflowId} open: ${hold.reason}`;
  if (hold.graceHours > 0) extend({ hours: hold.graceHours, reason, operator: SYSTEM_OPERATOR });
  if (hold.suspensionsStopped) pause(state, Date.now(), SYSTEM_OPERATOR, reason);
}
