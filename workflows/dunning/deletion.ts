// The dunning lifecycle's last step, the runbook's permanent deletion 90 days after suspension: approved first when
// the policy asks for it, the processors told to stop charging, the data deleted and scrubbed by activities that
// re-check the database, and the decision written to DECISIONS.log.
import { condition } from '@temporalio/workflow';
import type { DecisionActivities } from '../../activities/decisions';
import type { TenantDataActivities } from '../../activities/tenantData';
import { isRecovered, type DunningState } from '../../domain/dunning';
import { amountDue } from '../../domain/dunningNotices';
import { describeDeletion } from '../../domain/tenantDeletion';
import { SYSTEM_OPERATOR } from '../../domain/vocabulary';
import type { Attention } from '../shared/attention';

export interface DeletionContext {
  state: DunningState;
  workflowId: string;
  key(step: string): string;
  /** False for lifecycles started before the guard existed: their recorded histories replay the old deletion. */
  guarded: boolean;
  attention: Attention;
  tenantData: TenantDataActivities;
  decisions: DecisionActivities;
}

/**
 * The tenant's data deleted after suspension (with an operator's approval first when the policy asks for one), the
 * provider told to stop charging, and the decision written to DECISIONS.log. The activities re-check the database:
 * a refusal (a legal hold, nothing owed) waits for attention like any step a person must fix.
 */
export async function deleteTenant(ctx: DeletionContext): Promise<string> {
  const { state, workflowId, key, attention, tenantData, decisions } = ctx;
  const days = state.policy.downgrade.deletionDaysAfterSuspension;
  if (!ctx.guarded) return deleteAsBefore(ctx, days);
  if (state.policy.downgrade.deletionRequiresApproval && !state.deletionApproval) {
    const since = new Date().toISOString();
    await attention.waitFor({
      step: 'deletion',
      reason: "the policy requires an operator's approval before the tenant's data is deleted",
      errorType: 'ApprovalRequired',
      since,
      attempts: 0,
      nextRetryAt: null,
      actions: `\`billops dunning approve-deletion ${state.tenantId} --reason "..."\`, or a legal hold to keep the data`,
    });
    await condition(() => state.deletionApproval !== null || isRecovered(state));
    await attention.clear(
      isRecovered(state) ? 'paid while the deletion waited for approval' : 'deletion approved',
    );
    if (isRecovered(state)) return 'not deleted: paid while waiting for approval';
  }
  const stopped = await tenantData.stopProviderCharges({
    tenantId: state.tenantId,
    workflowId,
    idempotencyKey: key('deletion/stop-charges'),
    requiredSuspendedDays: days,
  });
  const approval = state.deletionApproval;
  const deleted = await tenantData.deleteTenantData({
    tenantId: state.tenantId,
    workflowId,
    operator: approval?.operator ?? SYSTEM_OPERATOR,
    reason: `${days} days after suspension${approval ? `, approved by ${approval.operator}: ${approval.reason}` : ''}`,
    requiredSuspendedDays: days,
    ...(approval ? { approvedBy: approval.operator } : {}),
  });
  await decisions.recordDecision({
    idempotencyKey: key('deletion-decision'),
    workflowId,
    entry: {
      timestamp: new Date().toISOString(),
      operator: approval?.operator ?? SYSTEM_OPERATOR,
      incidentType: 'dunning_data_deletion',
      tenants: 1,
      impact: `service; ${amountDue(state)} uncollected`,
      resolution: `tenant ${state.tenantId} data permanently deleted ${days} days after suspension: ${describeDeletion(deleted)}; ${stopped.summary}`,
      credits: null,
      executor: SYSTEM_OPERATOR,
    },
  });
  return `${stopped.summary}; ${describeDeletion(deleted)}`;
}

/** The deletion as lifecycles started before the guard ran it: their recorded histories replay through this. */
async function deleteAsBefore(ctx: DeletionContext, days: number): Promise<string> {
  const { state, workflowId, key, tenantData, decisions } = ctx;
  const deleted = await tenantData.deleteTenantData({
    tenantId: state.tenantId,
    workflowId,
    operator: SYSTEM_OPERATOR,
    reason: `${days} days after suspension`,
    requiredSuspendedDays: 0,
  });
  await decisions.recordDecision({
    idempotencyKey: key('deletion-decision'),
    workflowId,
    entry: {
      timestamp: new Date().toISOString(),
      operator: SYSTEM_OPERATOR,
      incidentType: 'dunning_data_deletion',
      tenants: 1,
      impact: `service; ${amountDue(state)} uncollected`,
      resolution: `tenant ${state.tenantId} data permanently deleted ${days} days after suspension`,
      credits: null,
      executor: SYSTEM_OPERATOR,
    },
  });
  return `deleted ${Object.entries(deleted.deleted)
    .map(([table, n]) => `${n} ${table}`)
    .join(', ')}`;
}
