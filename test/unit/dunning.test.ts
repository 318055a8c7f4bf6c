// The dunning schedule read against the runbook: grace per tier, retries, contacts, downgrade steps, pauses, extensions.
import {
  DunningRefusedError,
  addFailedInvoice,
  completeStep,
  describeLifecycle,
  extendGrace,
  graceExtensionProblem,
  isRecovered,
  lifecycleSteps,
  markInvoicePaid,
  newDunningState,
  nextStep,
  pause,
  resume,
  statusOf,
  stepOccurrence,
  type DunningInput,
} from '../../domain/dunning';
import { defaultPolicy, parsePolicy } from '../../domain/policy';

const T0 = Date.parse('2026-11-02T09:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function input(overrides: Partial<DunningInput> = {}): DunningInput {
  return {
    tenantId: 'acme',
    tier: 'pro',
    processor: 'stripe',
    invoice: { invoiceId: 'in_1', amountMinor: 4900, currency: 'USD' },
    policy: defaultPolicy,
    billingPortalUrl: 'https://billing.test/portal',
    ...overrides,
  };
}

/** The schedule as "<step> @ <hours after the first failure>". */
function scheduleInHours(tier: DunningInput['tier']): string[] {
  const state = newDunningState(input({ tier }), 'wf', T0);
  return lifecycleSteps(state).map((s) => `${s.id} @ ${(s.at - T0) / HOUR}h`);
}

describe('the lifecycle schedule per tier', () => {
  it('Pro: 7 days grace, retries at 0/6/24/48 h, reminders at 7/14/21 days, then the downgrade process', () => {
    expect(scheduleInHours('pro')).toEqual([
      'retry-1 @ 0h',
      'warning @ 0h', // 7 days before a 7-day grace ends
      'retry-2 @ 6h',
      'retry-3 @ 24h',
      'retry-4 @ 48h',
      'past-due-7d @ 168h',
      'soft-limit @ 168h', // grace expires
      'hard-limit @ 240h', // grace + 3 days
      'past-due-14d @ 336h',
      'suspension @ 336h', // grace + 7 days
      'past-due-21d @ 504h',
      'deletion @ 2496h', // 90 days after suspension
    ]);
  });

  it('Enterprise: 14 days grace and account-manager contact at 14 and 30 days', () => {
    expect(scheduleInHours('enterprise')).toEqual([
      'retry-1 @ 0h',
      'retry-2 @ 6h',
      'retry-3 @ 24h',
      'retry-4 @ 48h',
      'warning @ 168h',
      'past-due-14d @ 336h',
      'soft-limit @ 336h',
      'hard-limit @ 408h',
      'suspension @ 504h',
      'past-due-30d @ 720h',
      'deletion @ 2664h',
    ]);
  });

  it('Free: refused, since the tier has no payment processing', () => {
    expect(() => newDunningState(input({ tier: 'free', processor: 'none' }), 'wf', T0)).toThrow(
      DunningRefusedError,
    );
    expect(() => newDunningState(input({ tier: 'free', processor: 'none' }), 'wf', T0)).toThrow(
      /upgrade required/,
    );
  });

  it('follows an overridden policy snapshot (runbook 004 style: 7-day extensions, 10-day Pro grace)', () => {
    const policy = parsePolicy({ version: 'custom-1', tiers: { pro: { graceDays: 10 } } });
    const state = newDunningState(input({ policy }), 'wf', T0);
    expect(statusOf(state).deadlines.softLimitAt).toBe(new Date(T0 + 10 * DAY).toISOString());
    expect(statusOf(state).policyVersion).toBe('custom-1');
  });
});

describe('phases', () => {
  it('moves retrying → grace after the last retry, then through the downgrade steps', () => {
    const state = newDunningState(input({ tier: 'enterprise' }), 'wf', T0);
    const phases: string[] = [];
    for (let step = nextStep(state); step; step = nextStep(state)) {
      completeStep(state, step, step.at);
      phases.push(`${step.id}:${state.phase}`);
    }
    expect(phases).toEqual([
      'retry-1:retrying',
      'retry-2:retrying',
      'retry-3:retrying',
      'retry-4:grace',
      'warning:warning',
      'past-due-14d:warning',
      'soft-limit:soft_limited',
      'hard-limit:hard_limited',
      'suspension:suspended',
      'past-due-30d:suspended',
      'deletion:deleted',
    ]);
  });

  it('recovers only when every outstanding invoice is paid', () => {
    const state = newDunningState(input(), 'wf', T0);
    addFailedInvoice(state, { invoiceId: 'in_2', amountMinor: 1000, currency: 'USD' }, T0 + HOUR);
    expect(markInvoicePaid(state, 'in_1', T0 + 2 * HOUR, 'card')).toBe(true);
    expect(isRecovered(state)).toBe(false);
    expect(markInvoicePaid(state, 'in_unknown', T0 + 2 * HOUR, 'card')).toBe(false);
    expect(markInvoicePaid(state, 'in_2', T0 + 3 * HOUR, 'card')).toBe(true);
    expect(isRecovered(state)).toBe(true);
  });

  it('ignores the same failed invoice reported twice (a retried webhook)', () => {
    const state = newDunningState(input(), 'wf', T0);
    addFailedInvoice(state, { invoiceId: 'in_1', amountMinor: 4900, currency: 'USD' }, T0 + HOUR);
    expect(state.invoices).toHaveLength(1);
    expect(state.timeline).toHaveLength(1);
  });
});

describe('operator control', () => {
  it('a pause moves every later deadline by the time spent paused', () => {
    const state = newDunningState(input(), 'wf', T0);
    const before = statusOf(state).deadlines;
    pause(state, T0 + DAY, 'ops@example.com', 'processor outage');
    expect(statusOf(state).nextAction).toBeNull();
    resume(state, T0 + 4 * DAY, 'ops@example.com');
    const after = statusOf(state).deadlines;
    expect(Date.parse(after.softLimitAt) - Date.parse(before.softLimitAt)).toBe(3 * DAY);
    expect(Date.parse(after.deletionAt) - Date.parse(before.deletionAt)).toBe(3 * DAY);
    expect(state.timeline.map((t) => t.event)).toEqual(['payment failed', 'paused', 'resumed']);
    expect(state.timeline[1]).toMatchObject({ operator: 'ops@example.com', reason: 'processor outage' });
    expect(state.timeline[2]?.detail).toBe('deadlines moved by 3 days');
  });

  it('refuses extensions of 0 or fewer days, more than 90 days, or for a deleted tenant', () => {
    const state = newDunningState(input(), 'wf', T0);
    const ext = (days: number) => ({ days, reason: 'customer asked', operator: 'ops' });
    expect(graceExtensionProblem(state, ext(0))).toMatch(/positive/);
    expect(graceExtensionProblem(state, ext(-3))).toMatch(/positive/);
    expect(graceExtensionProblem(state, ext(91))).toMatch(/at most 90 days/);
    expect(graceExtensionProblem(state, ext(90))).toBeUndefined();
    state.phase = 'deleted';
    expect(graceExtensionProblem(state, ext(5))).toMatch(/already deleted/);
  });

  it('an extension moves grace and the downgrade steps, and lifts limits that no longer apply', () => {
    const state = newDunningState(input(), 'wf', T0);
    for (let step = nextStep(state); step && step.id !== 'hard-limit'; step = nextStep(state))
      completeStep(state, step, step.at);
    expect(state.phase).toBe('soft_limited');
    const { restoreService } = extendGrace(
      state,
      { days: 5, reason: 'bank transfer on the way', operator: 'cs@example.com' },
      T0 + 8 * DAY,
    );
    expect(restoreService).toBe(true);
    expect(state.phase).toBe('warning');
    expect(statusOf(state).deadlines.graceEndsAt).toBe(new Date(T0 + 12 * DAY).toISOString());
    expect(nextStep(state)?.id).toBe('soft-limit');
    expect(state.timeline.at(-1)).toMatchObject({
      event: 'grace extended',
      operator: 'cs@example.com',
      reason: 'bank transfer on the way',
    });
  });

  it('a warning due again after an extension is a new occurrence, keyed by its new time', () => {
    const state = newDunningState(input(), 'wf', T0);
    const first = nextStep(state)!;
    completeStep(state, first, T0); // retry-1
    const warning = nextStep(state)!;
    expect(warning.id).toBe('warning');
    completeStep(state, warning, T0);
    extendGrace(state, { days: 5, reason: 'bank transfer', operator: 'cs@example.com' }, T0 + HOUR);
    const again = lifecycleSteps(state).find((s) => s.id === 'warning')!;
    expect(state.done).not.toContain('warning');
    expect(again.at).toBe(T0 + 5 * DAY);
    expect(stepOccurrence(warning)).toBe('warning@2026-11-02T09:00:00.000Z');
    expect(stepOccurrence(again)).toBe('warning@2026-11-07T09:00:00.000Z');
  });

  it('a lifecycle continued after a recovery starts with every invoice still open', () => {
    const more = [
      { invoiceId: 'in_2', amountMinor: 1500, currency: 'USD' },
      { invoiceId: 'in_1', amountMinor: 4900, currency: 'USD' },
    ];
    const state = newDunningState(input({ moreInvoices: more }), 'wf', T0);
    expect(statusOf(state).outstandingInvoices.map((i) => i.invoiceId)).toEqual(['in_1', 'in_2']);
    expect(state.timeline.map((e) => e.event)).toEqual(['payment failed', 'payment failed']);
  });

  it('describes itself in one line for the Web UI', () => {
    const state = newDunningState(input({ tenantName: 'acme' }), 'wf', T0);
    for (let step = nextStep(state); step && step.id !== 'hard-limit'; step = nextStep(state))
      completeStep(state, step, step.at);
    expect(describeLifecycle(state)).toBe('Dunning · acme (Pro) · soft limited until 2026-11-12');
  });
});
