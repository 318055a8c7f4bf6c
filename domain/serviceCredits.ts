// Service credits for measured impact (seed 000 "service credits for impact"): a share of the period's fee per outage hour.
import type { Policy } from './policy';

/**
 * The credit in minor units: `percentOfPeriodFeePerOutageHour` of the fee for every started hour of outage, capped at
 * `maxPercent` of the fee, rounded down to a whole minor unit (a credit never exceeds what the rule allows).
 */
export function serviceCreditMinor(
  rule: Policy['serviceCredit'],
  periodFeeMinor: number,
  outageMinutes: number,
): number {
  if (!Number.isSafeInteger(periodFeeMinor) || periodFeeMinor < 0) {
    throw new RangeError(`the period fee must be a whole number of minor units, got ${periodFeeMinor}`);
  }
  if (!Number.isFinite(outageMinutes) || outageMinutes < 0) {
    throw new RangeError(`the outage must last zero or more minutes, got ${outageMinutes}`);
  }
  const hours = Math.ceil(outageMinutes / 60);
  const percent = Math.min(rule.maxPercent, hours * rule.percentOfPeriodFeePerOutageHour);
  // Integer arithmetic in hundredths of a percent keeps 0.5 % of 1999 exact.
  const basisPoints = Math.round(percent * 100);
  return Math.floor((periodFeeMinor * basisPoints) / 10_000);
}
