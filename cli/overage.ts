// `billops overage decide`: the Enterprise overage manual review's decision, sent to the running overage workflow.
import { parseArgs } from 'node:util';
import type { OverageDecision } from '../workflows/definitions';
import {
  answeredByWorker,
  onePositional,
  oneOf,
  operatorName,
  printJson,
  RefusedError,
  required,
  runningWorkflow,
  withTemporal,
} from './common';

const OVERAGE_DECISIONS: readonly OverageDecision['decision'][] = ['no_action', 'throttled', 'blocked'];

/** The Enterprise manual review's decision, refused unless the review is open and undecided (the signal is silent). */
export async function overageDecide(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      decision: { type: 'string' },
      reason: { type: 'string' },
      operator: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const workflowId = onePositional(positionals, '<workflowId>');
  const decision = oneOf(required(values.decision, '--decision'), OVERAGE_DECISIONS, '--decision')!;
  const payload: OverageDecision = {
    decision,
    reason: required(values.reason, '--reason TEXT'),
    operator: operatorName(values.operator),
  };
  return withTemporal(async (client) => {
    const { overageDecisionSignal, overageStatusQuery } = await import('../workflows/definitions');
    const { handle, description } = await runningWorkflow(client, workflowId);
    if (description.type !== 'overageWorkflow') {
      throw new RefusedError(`${workflowId} is a ${description.type}, not an overage workflow`);
    }
    const status = await answeredByWorker(client, description, { what: 'the status query' }, () =>
      handle.query(overageStatusQuery),
    );
    if (!status.review) {
      throw new RefusedError(
        `refused: ${workflowId} has no manual review open (tenant ${status.tenantId}, assessed ${status.assessed})`,
      );
    }
    if (status.review.decidedBy) {
      throw new RefusedError(
        `refused: the review of ${workflowId} was already decided (${status.review.decision} by ${status.review.decidedBy})`,
      );
    }
    await handle.signal(overageDecisionSignal, payload);
    if (values.json) printJson({ workflowId, signal: 'overageDecision', ...payload });
    else
      console.log(
        `sent ${decision} to ${workflowId} (tenant ${status.tenantId}) by ${payload.operator} ` +
          `(reason: ${payload.reason}); check with: billops status ${workflowId}`,
      );
    return 0;
  });
}
