// Usage overage rules per tier: Pro throttled at 120 % of cap and blocked at 150 %, Free blocked at 100 %, Enterprise reviewed by a person.
import type { BillingTier, Policy } from './policy';

export type OverageLevel = 'within_cap' | 'throttled' | 'blocked' | 'manual_review';

export interface MeterUsage {
  meter: string;
  /** Decimal string, exactly as summed by PostgreSQL. */
  quantity: string;
  capUnits: number | null;
}

export interface OverageAssessment {
  level: OverageLevel;
  /** The meter furthest over its cap, when any is. */
  worstMeter?: { meter: string; percentOfCap: number };
}

/** Percent of cap, to one decimal, computed without floating-point drift on the quantity (quantities may be huge). */
export function percentOfCap(quantity: string, capUnits: number): number {
  const [whole = '0', fraction = ''] = quantity.split('.');
  const scaled = BigInt(whole) * 1000n + BigInt((fraction + '000').slice(0, 3));
  return Number(scaled / BigInt(capUnits)) / 10;
}

const LEVEL_ORDER: OverageLevel[] = ['within_cap', 'manual_review', 'throttled', 'blocked'];

export function assessOverage(policy: Policy, tier: BillingTier, usage: MeterUsage[]): OverageAssessment {
  const rules = policy.tiers[tier].overage;
  let worst: OverageAssessment = { level: 'within_cap' };
  for (const meter of usage) {
    if (meter.capUnits === null) continue;
    const percent = percentOfCap(meter.quantity, meter.capUnits);
    let level: OverageLevel = 'within_cap';
    if (rules.blockAtPercent !== null && percent >= rules.blockAtPercent) level = 'blocked';
    else if (rules.throttleAtPercent !== null && percent >= rules.throttleAtPercent) level = 'throttled';
    else if (rules.manualReview && percent >= 100) level = 'manual_review';
    const worse =
      LEVEL_ORDER.indexOf(level) > LEVEL_ORDER.indexOf(worst.level) ||
      (level === worst.level && level !== 'within_cap' && percent > (worst.worstMeter?.percentOfCap ?? 0));
    if (worse) worst = { level, worstMeter: { meter: meter.meter, percentOfCap: percent } };
  }
  return worst;
}

/** The service controls each level asks for; throttling uses the policy's soft-limit rate. */
export function controlsFor(
  policy: Policy,
  level: OverageLevel,
): { rateLimitPercent: number; apiBlocked: boolean } {
  switch (level) {
    case 'throttled':
      return { rateLimitPercent: policy.downgrade.softLimitRatePercent, apiBlocked: false };
    case 'blocked':
      return { rateLimitPercent: policy.downgrade.softLimitRatePercent, apiBlocked: true };
    default:
      return { rateLimitPercent: 100, apiBlocked: false };
  }
}
