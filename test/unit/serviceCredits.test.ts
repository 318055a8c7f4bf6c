// Service credits read like the policy rule: a percentage of the period's fee per hour of outage, capped.
import { serviceCreditMinor } from '../../domain/serviceCredits';
import { defaultPolicy } from '../../domain/policy';

const rule = defaultPolicy.serviceCredit;

describe('service credit for an outage (default: 1 % of the period fee per started hour, at most 100 %)', () => {
  it('a 3-hour outage on a USD 49.00 plan credits 3 %: 147 cents', () => {
    expect(serviceCreditMinor(rule, 4900, 180)).toBe(147);
  });

  it('counts a started hour as an hour: 61 minutes is 2 hours', () => {
    expect(serviceCreditMinor(rule, 10_000, 61)).toBe(200);
  });

  it('no outage, no credit', () => {
    expect(serviceCreditMinor(rule, 10_000, 0)).toBe(0);
  });

  it('never more than the cap', () => {
    expect(serviceCreditMinor({ percentOfPeriodFeePerOutageHour: 5, maxPercent: 25 }, 10_000, 24 * 60)).toBe(
      2500,
    );
  });

  it('rounds down to a whole minor unit', () => {
    expect(serviceCreditMinor({ percentOfPeriodFeePerOutageHour: 0.5, maxPercent: 100 }, 1999, 60)).toBe(9);
  });

  it('refuses fractional fees and negative outages', () => {
    expect(() => serviceCreditMinor(rule, 10.5, 60)).toThrow(RangeError);
    expect(() => serviceCreditMinor(rule, 100, -1)).toThrow(RangeError);
  });
});
