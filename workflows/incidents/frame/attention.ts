// An incident's steps that only a person can fix: a status page answering 4xx waits for attention (retried on the
// policy's backoff or on retryNow, or skipped with a reason); a pager refusing a page is shown and told, and the
// incident goes on: its containment never waits for the pager.
import { setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { note, type IncidentState } from '../../../domain/incident';
import { NeedsAttention } from '../../../domain/searchAttributes';
import { retryNowSignal, skipStepUpdate } from '../../definitions';
import { createAttention, operatorNotifier, type Attention } from '../../shared/attention';
import type { IncidentInput } from '../../../domain/incident';

export function incidentAttention(
  input: IncidentInput<unknown>,
  state: IncidentState,
  key: (step: string) => string,
  changed: () => void,
): Attention {
  const attention = createAttention({
    policy: input.policy,
    actions:
      `fix the cause, then \`billops retry ${state.workflowId}\`; or \`billops skip ${state.workflowId} ` +
      '--reason "..."` to go on without this step',
    changed(wait, detail) {
      state.attention = wait;
      note(state, Date.now(), wait ? 'waiting_for_attention' : 'attention_cleared', detail);
      upsertSearchAttributes([{ key: NeedsAttention, value: wait ? wait.errorType : null }]);
      changed();
    },
    notify: operatorNotifier(input.policy, state.workflowId, key, (told) => {
      note(state, Date.now(), 'operators_told', told);
      changed();
    }),
    held: () => state.paused !== null,
    moot: () => state.resolution !== null,
  });
  setHandler(retryNowSignal, () => attention.retryNow());
  setHandler(skipStepUpdate, (request) => (attention.skip(request), state.attention), {
    validator: (request) => {
      const problem = attention.skipProblem(request);
      if (problem) throw new Error(problem);
    },
  });
  return attention;
}
