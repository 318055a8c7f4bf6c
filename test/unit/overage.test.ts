// Overage levels read against the runbook's grace policy table.
import { assessOverage, controlsFor, percentOfCap } from '../../domain/overage';
import { defaultPolicy } from '../../domain/policy';

const usage = (quantity: string, capUnits: number | null = 1000) => [
  { meter: 'api.calls', quantity, capUnits },
];

describe('overage per tier', () => {
  it.each([
    ['pro', '1199', 'within_cap'],
    ['pro', '1200', 'throttled'],
    ['pro', '1499.999', 'throttled'],
    ['pro', '1500', 'blocked'],
    ['free', '999', 'within_cap'],
    ['free', '1000', 'blocked'],
    ['enterprise', '999', 'within_cap'],
    ['enterprise', '5000', 'manual_review'],
  ] as const)('%s at %s of 1000 units: %s', (tier, quantity, level) => {
    expect(assessOverage(defaultPolicy, tier, usage(quantity)).level).toBe(level);
  });

  it('reports the worst meter and ignores meters without a cap', () => {
    const assessment = assessOverage(defaultPolicy, 'pro', [
      { meter: 'api.calls', quantity: '1300', capUnits: 1000 },
      { meter: 'storage.gb', quantity: '900', capUnits: 500 },
      { meter: 'seats', quantity: '99999', capUnits: null },
    ]);
    expect(assessment).toEqual({ level: 'blocked', worstMeter: { meter: 'storage.gb', percentOfCap: 180 } });
  });

  it('computes percent of cap exactly for huge quantities', () => {
    expect(percentOfCap('123456789012345678', 1_000_000_000)).toBe(12345678901.2);
    expect(percentOfCap('1200', 1000)).toBe(120);
  });

  it('throttles to the soft-limit rate and blocks new requests', () => {
    expect(controlsFor(defaultPolicy, 'throttled')).toEqual({ rateLimitPercent: 10, apiBlocked: false });
    expect(controlsFor(defaultPolicy, 'blocked')).toEqual({ rateLimitPercent: 10, apiBlocked: true });
    expect(controlsFor(defaultPolicy, 'within_cap')).toEqual({ rateLimitPercent: 100, apiBlocked: false });
  });
});
