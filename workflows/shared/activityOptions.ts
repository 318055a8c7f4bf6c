// The activity option profiles every workflow proxies its activity groups with: timeouts, and retries from the policy.
// A recorded history holds these values: change one only with a replay test on a new history.
import type { ActivityOptions, RetryPolicy } from '@temporalio/workflow';
import type { Policy } from '../../domain/policy';

type Timeout = ActivityOptions['startToCloseTimeout'];

/** The policy's API retry (seed 000: 1 s backoff doubling to a 60 s cap), until the attempt's timeout. */
export function retryFromPolicy(
  policy: Pick<Policy, 'apiRetry'>,
  nonRetryable?: readonly string[],
): RetryPolicy {
  const retry = policy.apiRetry;
  return {
    initialInterval: retry.initialIntervalMs,
    maximumInterval: retry.maximumIntervalMs,
    backoffCoefficient: retry.backoffCoefficient,
    ...(nonRetryable ? { nonRetryableErrorTypes: [...nonRetryable] } : {}),
  };
}

/** A row written or read, an email handed over: seconds when healthy, so a lost worker is noticed in 30 s. */
export function quick(policy: Pick<Policy, 'apiRetry'>, nonRetryable?: readonly string[]): ActivityOptions {
  return { startToCloseTimeout: '30 seconds', retry: retryFromPolicy(policy, nonRetryable) };
}

/** A runbook step that calls one outside system (a provider, the pager, the status page): a minute per attempt. */
export function step(policy: Pick<Policy, 'apiRetry'>, nonRetryable?: readonly string[]): ActivityOptions {
  return { startToCloseTimeout: '1 minute', retry: retryFromPolicy(policy, nonRetryable) };
}

/** Errors an incident's retry cannot fix: the step fails at once, and the workflow says why. */
export const INCIDENT_REFUSALS: readonly string[] = [
  'TenantUnknown',
  'InvalidDecision',
  'PagingRejected',
  'StatusPageRefused',
];

/** Every activity an incident calls, unless its workflow names a longer profile. */
export function incidentStep(policy: Pick<Policy, 'apiRetry'>): ActivityOptions {
  return step(policy, INCIDENT_REFUSALS);
}

/** Work over a whole window of invoices or usage: thirty minutes per attempt. */
export function long(policy: Pick<Policy, 'apiRetry'>): ActivityOptions {
  return { startToCloseTimeout: '30 minutes', retry: retryFromPolicy(policy) };
}

/** A backfill call of many chunks: a lost worker is noticed within the heartbeat, and the retry resumes from it. */
export function backfill(
  policy: Pick<Policy, 'apiRetry'>,
  nonRetryable?: readonly string[],
): ActivityOptions {
  return {
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: '10 seconds',
    retry: retryFromPolicy(policy, nonRetryable),
  };
}

/**
 * One attempt, never retried underneath: a failure is the runbook's failed job, rerun on the policy's own schedule.
 * The hourly rollup gets five minutes; an incident's rebuild the rerun interval, heartbeating every minute.
 */
export function attemptOnce(startToCloseTimeout: Timeout, heartbeatTimeout?: Timeout): ActivityOptions {
  return {
    startToCloseTimeout,
    ...(heartbeatTimeout ? { heartbeatTimeout } : {}),
    retry: { maximumAttempts: 1 },
  };
}

/** An outage hook runs a command or calls a webhook that may take minutes; a failover is never repeated blindly. */
export function outageHook(policy: Pick<Policy, 'apiRetry' | 'billingSystemOutage'>): ActivityOptions {
  const rules = policy.billingSystemOutage;
  return {
    startToCloseTimeout: `${rules.hookTimeoutSeconds * 2} seconds`,
    retry: {
      ...retryFromPolicy(policy),
      maximumAttempts: rules.hookAttempts,
      nonRetryableErrorTypes: ['HookNotConfigured'],
    },
  };
}

/** The read-only queue's replay charges and writes one operation after another: the policy's replay timeout. */
export function queueReplay(policy: Pick<Policy, 'apiRetry' | 'billingSystemOutage'>): ActivityOptions {
  return {
    startToCloseTimeout: `${policy.billingSystemOutage.replayTimeoutMinutes} minutes`,
    retry: retryFromPolicy(policy),
  };
}

/** Where a workflow carries no policy (the customer notice): the runbook's default retry, written out. */
export const RUNBOOK_RETRY: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '60s',
};

/** A customer notice's steps: a minute each, retried as the runbook's default. */
export const noticeStep: ActivityOptions = { startToCloseTimeout: '1 minute', retry: RUNBOOK_RETRY };
