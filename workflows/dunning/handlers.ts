// The dunning lifecycle's operator messages: pause and resume, retryNow, skipping a step that waits for attention,
// and approving a deletion the policy holds for a person.
import { setHandler } from '@temporalio/workflow';
import {
  approveDeletion,
  deletionApprovalProblem,
  outstanding,
  pause,
  resume,
  statusOf,
  type DunningState,
} from '../../domain/dunning';
import {
  approveDeletionUpdate,
  pauseSignal,
  resumeSignal,
  retryNowSignal,
  skipStepUpdate,
  type OperatorAction,
} from '../definitions';
import type { Attention } from '../shared/attention';

/**
 * `retryRequests`: where an operator's retryNow with no step waiting is queued for an on-demand payment retry; null
 * for lifecycles started before that existed (their retryNow only moves a waiting step).
 */
export function setOperatorHandlers(
  state: DunningState,
  attention: Attention,
  retryRequests: OperatorAction[] | null,
): void {
  setHandler(pauseSignal, ({ operator, reason }) => pause(state, Date.now(), operator, reason));
  setHandler(resumeSignal, ({ operator }) => resume(state, Date.now(), operator));
  setHandler(retryNowSignal, (action) => {
    if (attention.waiting || !retryRequests) attention.retryNow();
    else if (outstanding(state).length > 0) retryRequests.push(action);
  });
  setHandler(skipStepUpdate, (request) => (attention.skip(request), state.attention), {
    validator: (request) => {
      const problem = attention.skipProblem(request);
      if (problem) throw new Error(problem);
    },
  });
  setHandler(
    approveDeletionUpdate,
    ({ operator, reason }) => (approveDeletion(state, operator, reason), statusOf(state)),
    {
      validator: (request) => {
        const problem = deletionApprovalProblem(state, request);
        if (problem) throw new Error(problem);
      },
    },
  );
}
