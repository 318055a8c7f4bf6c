// Usage pricing with exact decimal arithmetic: rates in force by date, per-unit and graduated prices, one rounding per line.
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { BillingTier } from './policy';
import { describeZodIssues } from './vocabulary';

export class PricingError extends Error {
  override name = 'PricingError';
}

// ---------------------------------------------------------------------------------------------------------------
// Exact decimals: value = units / 10^scale. PostgreSQL numeric arrives as text and stays exact here; no JS float
// ever holds a quantity, a price or an amount.
// ---------------------------------------------------------------------------------------------------------------

export interface Decimal {
  readonly units: bigint;
  readonly scale: number;
}

/** Digits beyond this many decimals or this exponent are refused rather than carried into huge BigInts. */
const MAX_SCALE = 1000;
const DECIMAL_TEXT = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

export const ZERO: Decimal = { units: 0n, scale: 0 };

/** Reads "1234.5", "0.05", "-3" or "1e-7" (a JS number's own text) exactly. */
export function parseDecimal(text: string): Decimal {
  const match = DECIMAL_TEXT.exec(text.trim());
  if (!match) throw new PricingError(`not a decimal number: "${text}"`);
  const [, sign = '', whole = '', fraction = '', exponentText = '0'] = match;
  const exponent = Number(exponentText);
  if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_SCALE) {
    throw new PricingError(`exponent out of range in "${text}"`);
  }
  let units = BigInt(whole + fraction);
  let scale = fraction.length - exponent;
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  if (scale > MAX_SCALE) throw new PricingError(`more than ${MAX_SCALE} decimals in "${text}"`);
  return normalize({ units: sign === '-' ? -units : units, scale });
}

/** Canonical text: no exponent, no trailing fractional zeros ("1.50" → "1.5", "2.000" → "2"). */
export function formatDecimal(d: Decimal): string {
  const { units, scale } = normalize(d);
  const sign = units < 0n ? '-' : '';
  const digits = (units < 0n ? -units : units).toString();
  if (scale === 0) return sign + digits;
  const padded = digits.padStart(scale + 1, '0');
  return `${sign}${padded.slice(0, -scale)}.${padded.slice(-scale)}`;
}

function normalize(d: Decimal): Decimal {
  let { units, scale } = d;
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  return { units, scale };
}

function rescale(d: Decimal, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

export function addDecimal(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale);
  return normalize({ units: rescale(a, scale) + rescale(b, scale), scale });
}

export function subtractDecimal(a: Decimal, b: Decimal): Decimal {
  return addDecimal(a, { units: -b.units, scale: b.scale });
}

export function multiplyDecimal(a: Decimal, b: Decimal): Decimal {
  return normalize({ units: a.units * b.units, scale: a.scale + b.scale });
}

export function compareDecimal(a: Decimal, b: Decimal): -1 | 0 | 1 {
  const scale = Math.max(a.scale, b.scale);
  const [x, y] = [rescale(a, scale), rescale(b, scale)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Rounds to a whole number of minor units, half up (half away from zero: 2.5 → 3, -2.5 → -3).
 * Half up rather than banker's rounding: it is applied once per invoice line, so there is no long sum of
 * rounded values whose bias half-even would cancel, and it is the commercial rule a customer or auditor
 * reproduces by hand from the quantity and price printed on the line.
 */
export function roundHalfUp(d: Decimal): bigint {
  const divisor = 10n ** BigInt(d.scale);
  const magnitude = d.units < 0n ? -d.units : d.units;
  const whole = magnitude / divisor;
  const rounded = (magnitude % divisor) * 2n >= divisor ? whole + 1n : whole;
  return d.units < 0n ? -rounded : rounded;
}

// ---------------------------------------------------------------------------------------------------------------
// Rates: what the rates table holds, validated at the edge.
// ---------------------------------------------------------------------------------------------------------------

/** A decimal as text (PostgreSQL numeric) or a JSON number (read through its shortest round-trip text). */
const decimalSchema = z.union([z.string(), z.number().finite()]).transform((value, ctx) => {
  try {
    return parseDecimal(typeof value === 'number' ? String(value) : value);
  } catch (err) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
    return z.NEVER;
  }
});

const notNegativeDecimalSchema = decimalSchema.refine((d) => d.units >= 0n, 'must not be negative');

/** A unit price in minor units; fractions of a minor unit are allowed (0.05 = a twentieth of a cent). */
export const unitPriceMinorSchema = notNegativeDecimalSchema.transform(formatDecimal);

/**
 * The `tiers` jsonb of a graduated rate: `up_to` is cumulative (units 0..1000000 at the first price, the rest at
 * the next), strictly ascending, and only the last tier is open-ended (`up_to: null`).
 */
export const graduatedTiersSchema = z
  .array(
    z
      .object({
        up_to: decimalSchema.refine((d) => d.units > 0n, 'must be greater than zero').nullable(),
        unit_price_minor: notNegativeDecimalSchema,
      })
      .strict(),
  )
  .min(1, 'a graduated rate needs at least one tier')
  .superRefine((tiers, ctx) => {
    tiers.forEach((tier, i) => {
      const last = i === tiers.length - 1;
      if (last && tier.up_to !== null) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: [i, 'up_to'],
          message: 'the last tier must be up_to null',
        });
      }
      if (!last && tier.up_to === null) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: [i, 'up_to'],
          message: 'only the last tier may be open',
        });
      }
      const previous = tiers[i - 1]?.up_to;
      if (previous && tier.up_to && compareDecimal(tier.up_to, previous) <= 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: [i, 'up_to'],
          message: `up_to must ascend: ${formatDecimal(tier.up_to)} follows ${formatDecimal(previous)}`,
        });
      }
    });
  })
  .transform((tiers) =>
    tiers.map((t) => ({
      upTo: t.up_to === null ? null : formatDecimal(t.up_to),
      unitPriceMinor: formatDecimal(t.unit_price_minor),
    })),
  );

export type GraduatedTier = z.output<typeof graduatedTiersSchema>[number];

export type Pricing =
  | { model: 'per_unit'; unitPriceMinor: string }
  | { model: 'graduated'; tiers: GraduatedTier[] };

/** One version of a price for a meter: a tier's list price or one tenant's negotiated price. */
export interface Rate {
  id: number;
  meter: string;
  tier: BillingTier | null;
  tenantId: string | null;
  currency: string;
  effectiveFrom: Date;
  pricing: Pricing;
}

/** Whose usage is being priced. */
export interface RateSubject {
  tenantId: string;
  tier: BillingTier;
  currency: string;
}

const describeIssues = (error: z.ZodError): string => describeZodIssues(error.issues);

/** The pricing of a rates row (pricing_model, unit_price_minor, tiers); throws PricingError when it is not valid. */
export function parsePricing(model: string, unitPriceMinor: unknown, tiers: unknown): Pricing {
  if (model === 'per_unit') {
    const parsed = unitPriceMinorSchema.safeParse(unitPriceMinor);
    if (!parsed.success) throw new PricingError(`per_unit price: ${describeIssues(parsed.error)}`);
    return { model, unitPriceMinor: parsed.data };
  }
  if (model === 'graduated') {
    const parsed = graduatedTiersSchema.safeParse(tiers);
    if (!parsed.success) throw new PricingError(`graduated tiers: ${describeIssues(parsed.error)}`);
    return { model, tiers: parsed.data };
  }
  throw new PricingError(`unknown pricing model "${model}"`);
}

/**
 * The rate in force for a tenant's meter at `at` (the start of the billing period): the latest version with
 * effective_from ≤ at in the tenant's currency. A tenant's own (negotiated) rate beats its tier's list rate even
 * when the list rate changed later, since a contract is not overridden by a price-list change.
 */
export function effectiveRate(
  rates: readonly Rate[],
  meter: string,
  at: Date,
  subject: RateSubject,
): Rate | undefined {
  const inForce = rates.filter(
    (r) => r.meter === meter && r.currency === subject.currency && r.effectiveFrom.getTime() <= at.getTime(),
  );
  const latest = (candidates: Rate[]) =>
    candidates.reduce<Rate | undefined>(
      (best, r) => (!best || r.effectiveFrom.getTime() > best.effectiveFrom.getTime() ? r : best),
      undefined,
    );
  return (
    latest(inForce.filter((r) => r.tenantId === subject.tenantId)) ??
    latest(inForce.filter((r) => r.tenantId === null && r.tier === subject.tier))
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Pricing a quantity
// ---------------------------------------------------------------------------------------------------------------

/** One price band of a line: `quantity` units (from `fromUnits` up to `toUnits`) at `unitPriceMinor`, unrounded. */
export interface PricedBand {
  fromUnits: string;
  toUnits: string | null;
  quantity: string;
  unitPriceMinor: string;
  exactAmountMinor: string;
}

export interface PricedUsage {
  /** The line's amount, rounded once (half up) to whole minor units. */
  amountMinor: bigint;
  /** The sum of the bands before rounding. */
  exactAmountMinor: string;
  /** One band per price tier used (a single band for per_unit). */
  lines: PricedBand[];
}

/** Prices a period's total quantity of one meter; each band is exact and only the line's sum is rounded. */
export function priceUsage(quantity: string, rate: Pick<Rate, 'pricing'>): PricedUsage {
  const total = parseDecimal(quantity);
  if (total.units < 0n) throw new PricingError(`quantity must not be negative, got ${quantity}`);
  const lines: PricedBand[] = [];
  const addBand = (from: Decimal, to: Decimal | null, units: Decimal, price: string) => {
    const amount = multiplyDecimal(units, parseDecimal(price));
    lines.push({
      fromUnits: formatDecimal(from),
      toUnits: to === null ? null : formatDecimal(to),
      quantity: formatDecimal(units),
      unitPriceMinor: price,
      exactAmountMinor: formatDecimal(amount),
    });
    return amount;
  };

  let exact = ZERO;
  const { pricing } = rate;
  if (pricing.model === 'per_unit') {
    exact = addBand(ZERO, null, total, pricing.unitPriceMinor);
  } else {
    let from = ZERO;
    for (const tier of pricing.tiers) {
      if (compareDecimal(total, from) <= 0) break;
      const to = tier.upTo === null ? null : parseDecimal(tier.upTo);
      const end = to === null || compareDecimal(total, to) < 0 ? total : to;
      exact = addDecimal(exact, addBand(from, to, subtractDecimal(end, from), tier.unitPriceMinor));
      if (to === null) break;
      from = to;
    }
  }
  return { amountMinor: roundHalfUp(exact), exactAmountMinor: formatDecimal(exact), lines };
}

/** The text of an invoice line: "api_calls: 1000000 × 0.05 + 234567 × 0.02 = 54691.34 → 54691 (half up)". */
export function describeLine(meter: string, priced: PricedUsage): string {
  const bands = priced.lines.map((b) => `${b.quantity} × ${b.unitPriceMinor}`).join(' + ') || '0';
  return `${meter}: ${bands} = ${priced.exactAmountMinor} → ${priced.amountMinor} minor units (rounded half up)`;
}

// ---------------------------------------------------------------------------------------------------------------
// Invoice lines: a meter's usage priced into a line, and the totals that leave billops as JSON numbers.
// ---------------------------------------------------------------------------------------------------------------

/** An invoice line before it is written: the amount stays a bigint until the total is checked. */
export interface LineDraft {
  meter: string;
  quantity: string;
  rateId: number;
  amountMinor: bigint;
  description: string;
}

export function sumOf(lines: readonly LineDraft[]): bigint {
  return lines.reduce((sum, l) => sum + l.amountMinor, 0n);
}

/** The meter's invoice line priced with the rate in force at `at`, or undefined when no rate is. */
export function priceMeter(
  rates: readonly Rate[],
  subject: RateSubject,
  at: Date,
  meter: string,
  quantity: string,
): LineDraft | undefined {
  const rate = effectiveRate(rates, meter, at, subject);
  if (!rate) return undefined;
  const priced = priceUsage(quantity, rate);
  return {
    meter,
    quantity: formatDecimal(parseDecimal(quantity)),
    rateId: rate.id,
    amountMinor: priced.amountMinor,
    description: describeLine(meter, priced),
  };
}

/**
 * Amounts leave as numbers (activity results are JSON); one a double cannot hold exactly is refused, as a
 * non-retryable failure because no retry makes it fit.
 */
export function toMinorNumber(amount: bigint, what: string): number {
  if (amount > BigInt(Number.MAX_SAFE_INTEGER) || amount < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw ApplicationFailure.nonRetryable(
      `${what} of ${amount} minor units is beyond what billops stores exactly`,
      'AmountOutOfRange',
    );
  }
  return Number(amount);
}
