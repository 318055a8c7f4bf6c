// Waiting for attention: a step whose activity failed in a way no automatic retry fixes keeps the workflow, its timers
// and its state, says why, tells the operators once, and tries again on the policy's backoff, on retryNow, or never
// (skipped with a reason).
import { ActivityFailure, ApplicationFailure, condition, proxyActivities } from '@temporalio/workflow';
import type { AttentionActivities } from '../../activities/attention';
import {
  attentionRetryDelayMs,
  skipProblem,
  type AttentionWait,
  type SkipRequest,
} from '../../domain/attention';
import type { Policy } from '../../domain/policy';
import { retryFromPolicy } from './activityOptions';

export type Attended<T> = { done: true; value: T } | { done: false; why: string };

export interface AttentionOptions {
  policy: Partial<Pick<Policy, 'attention'>>;
  /** What the operator can do, written into the wait (the CLI commands for this workflow). */
  actions: string;
  /** Called whenever the wait starts, changes or ends (null): status, search attribute, timeline. */
  changed(wait: AttentionWait | null, note: string): Promise<void> | void;
  /** Tells the operators once per wait (email, pager). Must not throw: a refusal here is only noted. */
  notify(wait: AttentionWait): Promise<void>;
  /** While true (the workflow is paused) no attempt is made. */
  held?(): boolean;
  /** True when the step is no longer needed (the invoice was paid, the incident resolved): the wait ends. */
  moot?(): boolean;
}

export interface Attention {
  /** The step waiting for a person, or null. */
  readonly waiting: AttentionWait | null;
  /** Runs one step's activities; a failure no retry fixes waits here instead of failing the workflow. */
  run<T>(step: string, attempt: () => Promise<T>, opts?: { skippable?: boolean }): Promise<Attended<T>>;
  /** A wait that is not a failure (an approval the policy asks for): shown and told like one, ended by `clear`. */
  waitFor(wait: AttentionWait): Promise<void>;
  clear(note: string): Promise<void>;
  retryNow(): void;
  /** Why the skip is refused, or null once it is taken. */
  skip(request: SkipRequest): string | null;
  skipProblem(request: SkipRequest): string | null;
}

export function createAttention(options: AttentionOptions): Attention {
  let waiting: AttentionWait | null = null;
  let skippable = true;
  let retryRequested = false;
  let skipped: SkipRequest | null = null;
  const moot = () => options.moot?.() ?? false;

  const problem = (request: SkipRequest) =>
    skipProblem(waiting, request) ??
    (skippable ? null : `${waiting!.step} cannot be skipped: ${waiting!.actions}`);

  return {
    get waiting() {
      return waiting;
    },
    skipProblem: problem,
    async waitFor(wait) {
      waiting = wait;
      skippable = false;
      await options.changed(wait, wait.reason);
      await options.notify(wait);
    },
    async clear(note) {
      waiting = null;
      await options.changed(null, note);
    },
    retryNow() {
      retryRequested = true;
    },
    skip(request) {
      const refused = problem(request);
      if (!refused) skipped = request;
      return refused;
    },
    async run(step, attempt, opts = {}) {
      // Only this step's own wait is ended by its success, not a notice another part set (a refused page).
      let waitedHere = false;
      for (let attempts = 1; ; attempts++) {
        try {
          const value = await attempt();
          if (waitedHere && waiting) {
            waiting = null;
            await options.changed(null, `${step} went through on attempt ${attempts}`);
          }
          return { done: true, value };
        } catch (err) {
          if (!(err instanceof ActivityFailure)) throw err;
          const delay = attentionRetryDelayMs(options.policy, attempts);
          const cause = err.cause;
          waiting = {
            step,
            reason: cause?.message || err.message,
            errorType:
              cause instanceof ApplicationFailure && cause.type ? cause.type : (cause?.name ?? 'Error'),
            since: waiting?.since ?? new Date(Date.now()).toISOString(),
            attempts,
            nextRetryAt: new Date(Date.now() + delay).toISOString(),
            actions: options.actions,
          };
          skippable = opts.skippable ?? true;
          waitedHere = true;
          retryRequested = false;
          skipped = null;
          await options.changed(waiting, `attempt ${attempts} failed: ${waiting.reason}`);
          if (attempts === 1) await options.notify(waiting);
          await condition(() => retryRequested || skipped !== null || moot(), delay);
          if (options.held) await condition(() => !options.held!() || skipped !== null || moot());
          // Set by a handler while this waited; read through a cast, since the compiler cannot see that.
          const taken = skipped as SkipRequest | null;
          if (taken !== null || moot()) {
            const why = taken ? `skipped by ${taken.operator}: ${taken.reason}` : 'no longer needed';
            waiting = null;
            skipped = null;
            await options.changed(null, `${step} ${why}`);
            return { done: false, why };
          }
        }
      }
    },
  };
}

/**
 * Tells the operators of a wait (email and page, once per wait under its key) and notes on the timeline whom it told.
 * Tried a few times only: the wait it announces goes on either way.
 */
export function operatorNotifier(
  policy: Pick<Policy, 'apiRetry'>,
  workflowId: string,
  key: (step: string) => string,
  noted: (detail: string) => void,
): (wait: AttentionWait) => Promise<void> {
  const operators = proxyActivities<AttentionActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { ...retryFromPolicy(policy), maximumAttempts: 5 },
  });
  return async (wait) => {
    const told = await operators
      .requestAttention({
        idempotencyKey: key(`attention/${wait.step}/${wait.since}`),
        workflowId,
        step: wait.step,
        errorType: wait.errorType,
        reason: wait.reason,
        actions: wait.actions,
      })
      .then(
        (r) => `${r.emailed}; ${r.paged}`,
        (err: unknown) =>
          `could not tell the operators (${err instanceof Error ? err.message : String(err)})`,
      );
    noted(told);
  };
}
