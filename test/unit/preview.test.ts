// `billops preview` read against the runbook: every step's time, phase, notice and service-control change per tier,
// and a running lifecycle's preview rebuilt from its status answer after pauses and extensions.
import {
  DunningRefusedError,
  completeStep,
  extendGrace,
  newDunningState,
  nextStep,
  pause,
  resume,
  statusOf,
  type DunningInput,
  type DunningState,
  type DunningStatus,
} from '../../domain/dunning';
import {
  previewLifecycle,
  previewMismatches,
  previewOfState,
  previewRunningLifecycle,
  stateFromStatus,
  type LifecyclePreview,
} from '../../domain/dunning/preview';
import { defaultPolicy, parsePolicy } from '../../domain/policy';

const T0 = Date.parse('2026-11-02T09:00:00Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Each step as "<id> @ <hours after the first failure> → <phase> | <notice> | <control>". */
function lines(preview: LifecyclePreview): string[] {
  return preview.steps.map((s) => {
    const notice = s.notice ? `${s.notice.template} to ${s.notice.to}` : '-';
    const control = s.control
      ? s.control.kind === 'rateLimit'
        ? `rate limit ${s.control.rateLimitPercent}%`
        : s.control.kind === 'dataDeleted'
          ? `data deleted${s.control.approvalRequired ? ' after approval' : ''}`
          : s.control.kind
      : '-';
    const dashboard = s.dashboardNotification ? ' + dashboard' : '';
    return `${s.id} @ ${s.afterFirstFailureMs / HOUR}h → ${s.phase} | ${notice}${dashboard} | ${control}`;
  });
}

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

/** Performs every step due by `until`, as the workflow's loop does when nobody pays. */
function runUntil(state: DunningState, until: number): void {
  for (let step = nextStep(state); step && step.at <= until; step = nextStep(state)) {
    completeStep(state, step, step.at);
  }
}

/** The status as a query answers it: through JSON. */
function queried(state: DunningState): DunningStatus {
  return JSON.parse(JSON.stringify(statusOf(state))) as DunningStatus;
}

describe('previewLifecycle: a payment failing now', () => {
  it('Pro: retries with the failure notice, the warning, reminders at 7/14/21 days, limits, suspension, deletion', () => {
    const preview = previewLifecycle({ tier: 'pro', policy: defaultPolicy, tenantId: 'acme' }, T0);
    expect(preview.firstFailureAt).toBe('2026-11-02T09:00:00.000Z');
    expect(preview.graceEndsAt).toBe('2026-11-09T09:00:00.000Z');
    expect(lines(preview)).toEqual([
      'retry-1 @ 0h → retrying | paymentFailureNotice to billing contact | -',
      'warning @ 0h → warning | downgradeWarning to billing contact + dashboard | -',
      'retry-2 @ 6h → warning | - | -',
      'retry-3 @ 24h → warning | - | -',
      'retry-4 @ 48h → warning | - | -',
      'past-due-7d @ 168h → warning | paymentReminder to billing contact | -',
      'soft-limit @ 168h → soft_limited | softLimitNotice to billing contact | rate limit 10%',
      'hard-limit @ 240h → hard_limited | hardLimitNotice to billing contact | apiBlocked',
      'past-due-14d @ 336h → hard_limited | paymentReminder to billing contact | -',
      'suspension @ 336h → suspended | suspensionNotice to billing contact | suspended',
      'past-due-21d @ 504h → suspended | paymentReminder to billing contact | -',
      'deletion @ 2496h → deleted | - | data deleted',
    ]);
    expect(preview.steps.map((s) => s.at)).toEqual(
      preview.steps.map((s) => new Date(T0 + s.afterFirstFailureMs).toISOString()),
    );
    expect(preview.done).toEqual([]);
    expect(preview.paused).toBeNull();
  });

  it('Enterprise: 14 days grace, the account manager contacted at 14 and 30 days', () => {
    const preview = previewLifecycle({ tier: 'enterprise', policy: defaultPolicy }, T0);
    expect(preview.graceEndsAt).toBe('2026-11-16T09:00:00.000Z');
    expect(lines(preview)).toEqual([
      'retry-1 @ 0h → retrying | paymentFailureNotice to billing contact | -',
      'retry-2 @ 6h → retrying | - | -',
      'retry-3 @ 24h → retrying | - | -',
      'retry-4 @ 48h → grace | - | -',
      'warning @ 168h → warning | downgradeWarning to billing contact + dashboard | -',
      'past-due-14d @ 336h → warning | accountManagerContact to account manager | -',
      'soft-limit @ 336h → soft_limited | softLimitNotice to billing contact | rate limit 10%',
      'hard-limit @ 408h → hard_limited | hardLimitNotice to billing contact | apiBlocked',
      'suspension @ 504h → suspended | suspensionNotice to billing contact | suspended',
      'past-due-30d @ 720h → suspended | accountManagerContact to account manager | -',
      'deletion @ 2664h → deleted | - | data deleted',
    ]);
  });

  it('Free: refused, since the tier has no payment processing', () => {
    expect(() => previewLifecycle({ tier: 'free', policy: defaultPolicy }, T0)).toThrow(DunningRefusedError);
  });

  it('follows the policy in force: a 25% soft limit, deletion only after approval, 10-day Pro grace', () => {
    const policy = parsePolicy({
      tiers: { pro: { graceDays: 10 } },
      downgrade: { softLimitRatePercent: 25, deletionRequiresApproval: true },
    });
    const steps = lines(previewLifecycle({ tier: 'pro', policy }, T0));
    expect(steps).toContain(
      'soft-limit @ 240h → soft_limited | softLimitNotice to billing contact | rate limit 25%',
    );
    expect(steps[steps.length - 1]).toBe('deletion @ 2568h → deleted | - | data deleted after approval');
  });
});

describe('previewRunningLifecycle: a lifecycle under way, rebuilt from its status answer', () => {
  it('after a day-long pause and a 3-day extension: steps done, the pause, the extension, then what comes next', () => {
    const state = newDunningState(input(), 'wf', T0);
    runUntil(state, T0 + 48 * HOUR); // retry-1, warning, retries 2-4
    pause(state, T0 + 50 * HOUR, 'ops@example.com', 'processor outage');
    resume(state, T0 + 74 * HOUR, 'ops@example.com');
    extendGrace(
      state,
      { days: 3, reason: 'bank transfer on its way', operator: 'cs@example.com' },
      T0 + 80 * HOUR,
    );
    const now = T0 + 90 * HOUR;

    const preview = previewRunningLifecycle(input(), queried(state), now);
    expect(preview.done.map((e) => e.event)).toEqual(['retry-1', 'warning', 'retry-2', 'retry-3', 'retry-4']);
    expect(preview.pauses).toEqual([
      {
        from: '2026-11-04T11:00:00.000Z',
        to: '2026-11-05T11:00:00.000Z',
        operator: 'ops@example.com',
        reason: 'processor outage',
      },
    ]);
    expect(preview.extensions).toEqual([
      expect.objectContaining({ at: '2026-11-05T17:00:00.000Z', operator: 'cs@example.com' }),
    ]);
    // Grace: 7 days + 1 day paused + 3 days extended. The warning falls in the future again, so it is sent again.
    expect(preview.graceEndsAt).toBe('2026-11-13T09:00:00.000Z');
    expect(preview.phase).toBe('grace');
    expect(lines(preview)).toEqual([
      'warning @ 96h → warning | downgradeWarning to billing contact + dashboard | -',
      'past-due-7d @ 192h → warning | paymentReminder to billing contact | -',
      'soft-limit @ 264h → soft_limited | softLimitNotice to billing contact | rate limit 10%',
      'hard-limit @ 336h → hard_limited | hardLimitNotice to billing contact | apiBlocked',
      'past-due-14d @ 360h → hard_limited | paymentReminder to billing contact | -',
      'suspension @ 432h → suspended | suspensionNotice to billing contact | suspended',
      'past-due-21d @ 528h → suspended | paymentReminder to billing contact | -',
      'deletion @ 2592h → deleted | - | data deleted',
    ]);
    // The same as the workflow's own state would give, and in agreement with its answer.
    expect(preview).toEqual(previewOfState(state, now));
    expect(previewMismatches(stateFromStatus(input(), queried(state)), queried(state))).toEqual([]);
  });

  it('an extension that undoes a soft limit already in force: the limit and its notice come again later', () => {
    const state = newDunningState(input(), 'wf', T0);
    runUntil(state, T0 + 8 * DAY); // soft-limited at day 7
    extendGrace(state, { days: 2, reason: 'promised payment', operator: 'cs@example.com' }, T0 + 8 * DAY);
    runUntil(state, T0 + 10 * DAY); // soft-limited again at day 9
    const now = T0 + 10 * DAY;
    const preview = previewRunningLifecycle(input(), queried(state), now);
    expect(preview.done.map((e) => e.event)).toEqual([
      'retry-1',
      'warning',
      'retry-2',
      'retry-3',
      'retry-4',
      'past-due-7d',
      'soft-limit',
      'soft-limit',
    ]);
    expect(preview.phase).toBe('soft_limited');
    expect(lines(preview)[0]).toBe(
      'hard-limit @ 288h → hard_limited | hardLimitNotice to billing contact | apiBlocked',
    );
    expect(preview).toEqual(previewOfState(state, now));
  });

  it('paused now: nothing is due; the dates are those a resume now would give', () => {
    const state = newDunningState(input({ tier: 'enterprise' }), 'wf', T0);
    runUntil(state, T0 + 6 * HOUR);
    pause(state, T0 + 10 * HOUR, 'ops@example.com', 'disputed invoice');
    const now = T0 + 34 * HOUR;
    const status = queried(state);
    expect(status.nextAction).toBeNull();

    const preview = previewRunningLifecycle(input({ tier: 'enterprise' }), status, now);
    expect(preview.paused).toEqual({
      since: '2026-11-02T19:00:00.000Z',
      datesAssumeResumeAt: '2026-11-03T19:00:00.000Z',
    });
    expect(preview.pauses).toEqual([expect.objectContaining({ from: '2026-11-02T19:00:00.000Z', to: null })]);
    expect(preview.graceEndsAt).toBe('2026-11-17T09:00:00.000Z'); // 14 days + the 24 h paused so far
    expect(lines(preview).slice(0, 3)).toEqual([
      'retry-3 @ 48h → retrying | - | -',
      'retry-4 @ 72h → grace | - | -',
      'warning @ 192h → warning | downgradeWarning to billing contact + dashboard | -',
    ]);
    expect(preview).toEqual(previewOfState(state, now));
  });

  it('reports where a rebuilt state and the workflow disagree', () => {
    const state = newDunningState(input(), 'wf', T0);
    const status = queried(state);
    const moved = { ...status, deadlines: { ...status.deadlines, graceEndsAt: '2030-01-01T00:00:00.000Z' } };
    expect(previewMismatches(stateFromStatus(input(), status), moved)).toEqual([
      'graceEndsAt: the workflow says 2030-01-01T00:00:00.000Z, the preview 2026-11-09T09:00:00.000Z',
    ]);
  });
});
