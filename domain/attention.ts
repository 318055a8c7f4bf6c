// A step only a person can fix (a refused key, a voided invoice, a pager answering 4xx): what the workflow says while
// it waits, and when it tries again by itself.
import { defaultPolicy, type Policy } from './policy';
import { MINUTE_MS } from './vocabulary';

export interface AttentionWait {
  /** The runbook step that cannot go on, e.g. "retry-6h" or "status page: investigating". */
  step: string;
  /** What the failing system answered, as the activity worded it (secrets are redacted there). */
  reason: string;
  /** The failure's type, e.g. ProcessorAuthFailed; also the NeedsAttention search attribute's value. */
  errorType: string;
  since: string;
  /** Attempts made so far, the first included. */
  attempts: number;
  /** When the step is tried again by itself (null: only a person moves it on); `retryNow` tries it at once. */
  nextRetryAt: string | null;
  /** What an operator can do about it. */
  actions: string;
}

export interface SkipRequest {
  operator: string;
  reason: string;
}

/** The delay before the attempt after `attempts` failed ones: the policy's first delay, doubling up to its cap. */
export function attentionRetryDelayMs(policy: Partial<Pick<Policy, 'attention'>>, attempts: number): number {
  // A snapshot written before the setting existed waits as the defaults do.
  const rules = policy.attention ?? defaultPolicy.attention;
  const minutes = rules.retryAfterMinutes * 2 ** Math.max(0, attempts - 1);
  return Math.min(minutes, rules.maxRetryIntervalMinutes) * MINUTE_MS;
}

/** Why a skip is refused, or null. The reason is kept in the timeline, so it must say something. */
export function skipProblem(waiting: AttentionWait | null, request: SkipRequest): string | null {
  if (!waiting) return 'no step is waiting for attention: there is nothing to skip';
  if (!request.operator?.trim()) return 'operator is required';
  if (!request.reason?.trim()) return 'a reason is required: it is kept in the timeline';
  return null;
}

/** The one line an operator reads: which step, what was answered, since when, what to do. */
export function describeAttention(wait: AttentionWait): string {
  return `${wait.step} needs attention since ${wait.since} (${wait.errorType}: ${wait.reason}); ${wait.actions}`;
}
