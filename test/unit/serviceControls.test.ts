// Service control holds read against the design's rule: the most restrictive active hold is enforced, per source.
import {
  enforcedRestriction,
  holdLevel,
  isActive,
  nextRestriction,
  sourceOf,
  UNRESTRICTED,
  type ServiceControlHold,
} from '../../domain/serviceControls';

const NOW = Date.parse('2026-12-07T12:00:00.000Z');

function hold(over: Partial<ServiceControlHold>): ServiceControlHold {
  return {
    source: 'operator',
    ...UNRESTRICTED,
    reason: 'test',
    workflowId: null,
    since: '2026-12-01T00:00:00.000Z',
    until: null,
    ...over,
  };
}

describe('the enforced state', () => {
  it('is full service with no hold', () => {
    expect(enforcedRestriction([], NOW)).toEqual(UNRESTRICTED);
  });

  it('is a dunning hard limit whatever overage lifts: overage holds nothing, dunning still holds its block', () => {
    const dunning = hold({ source: 'dunning', rateLimitPercent: 10, apiBlocked: true });
    expect(enforcedRestriction([dunning], NOW)).toEqual({
      rateLimitPercent: 10,
      apiBlocked: true,
      suspended: false,
      readOnly: false,
    });
  });

  it('takes the lowest rate limit and every block, suspension and read-only mode of the active holds', () => {
    const holds = [
      hold({ source: 'overage', rateLimitPercent: 25 }),
      hold({ source: 'dunning', rateLimitPercent: 50, suspended: true }),
      hold({ source: 'incident', readOnly: true }),
    ];
    expect(enforcedRestriction(holds, NOW)).toEqual({
      rateLimitPercent: 25,
      apiBlocked: false,
      suspended: true,
      readOnly: true,
    });
  });

  it('leaves out a hold past its until', () => {
    const holds = [
      hold({ source: 'maintenance', readOnly: true, until: '2026-12-07T11:59:59.000Z' }),
      hold({ source: 'operator', rateLimitPercent: 50, until: '2026-12-07T13:00:00.000Z' }),
    ];
    expect(isActive(holds[0]!, NOW)).toBe(false);
    expect(isActive(holds[1]!, NOW)).toBe(true);
    expect(enforcedRestriction(holds, NOW)).toEqual({ ...UNRESTRICTED, rateLimitPercent: 50 });
  });
});

describe('a source changing its own hold', () => {
  it('keeps the fields it does not give: a hard limit keeps the soft limit', () => {
    const soft = nextRestriction(undefined, { rateLimitPercent: 10 });
    expect(nextRestriction(soft, { apiBlocked: true })).toEqual({
      rateLimitPercent: 10,
      apiBlocked: true,
      suspended: false,
      readOnly: false,
    });
  });

  it('summarises a hold by its most restrictive effect, and an unrestricted one as no hold', () => {
    expect(holdLevel({ ...UNRESTRICTED, rateLimitPercent: 10 })).toBe('throttled');
    expect(holdLevel({ ...UNRESTRICTED, rateLimitPercent: 10, readOnly: true })).toBe('read_only');
    expect(holdLevel({ ...UNRESTRICTED, rateLimitPercent: 10, apiBlocked: true })).toBe('blocked');
    expect(holdLevel({ ...UNRESTRICTED, apiBlocked: true, suspended: true })).toBe('suspended');
    expect(holdLevel(UNRESTRICTED)).toBeNull();
  });
});

describe('the source of a request', () => {
  it.each([
    [{ source: 'maintenance' as const, workflowId: 'dunning-acme' }, 'maintenance'],
    [{ workflowId: 'dunning-acme' }, 'dunning'],
    [{ workflowId: 'overage-acme-2026-12' }, 'overage'],
    [{ workflowId: 'incident-billing_system_outage-fp1' }, 'incident'],
    [{ idempotencyKey: 'overage-acme-2026-12/run/3', workflowId: 'cli-alice' }, 'overage'],
    [{ workflowId: 'cli-alice' }, 'operator'],
    [{}, 'operator'],
  ])('%j is read as %s', (request, source) => {
    expect(sourceOf(request)).toBe(source);
  });
});
