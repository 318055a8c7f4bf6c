// Usage pricing: exact per-unit and graduated amounts, one half-up rounding per line, rate versions by date.
import {
  effectiveRate,
  formatDecimal,
  graduatedTiersSchema,
  parseDecimal,
  parsePricing,
  PricingError,
  priceUsage,
  roundHalfUp,
  type Pricing,
  type Rate,
} from '../../domain/pricing';

const perUnit = (unitPriceMinor: string): { pricing: Pricing } => ({
  pricing: { model: 'per_unit', unitPriceMinor },
});
const graduated = (tiers: unknown): { pricing: Pricing } => ({
  pricing: parsePricing('graduated', null, tiers),
});

/** The runbook-shaped example in the rates migration: the first million units at 0.05, the rest at 0.02. */
const STANDARD_TIERS = [
  { up_to: 1000000, unit_price_minor: 0.05 },
  { up_to: null, unit_price_minor: 0.02 },
];

describe('exact decimals', () => {
  it.each([
    ['1.50', '1.5'],
    ['007', '7'],
    ['0.05', '0.05'],
    ['1e-7', '0.0000001'],
    ['1.5E+3', '1500'],
    ['-0.50', '-0.5'],
    ['123456789012345678901234567890.000000000001', '123456789012345678901234567890.000000000001'],
  ])('reads %s as %s', (text, canonical) => {
    expect(formatDecimal(parseDecimal(text))).toBe(canonical);
  });

  it.each(['', '1.', '.5', '1,000', 'NaN', 'Infinity', '0x10', '1e99999'])('refuses %p', (text) => {
    expect(() => parseDecimal(text)).toThrow(PricingError);
  });

  it('rounds half up, half away from zero for negatives', () => {
    const round = (text: string) => roundHalfUp(parseDecimal(text));
    expect([round('2.5'), round('3.5'), round('2.4999999999'), round('2.5000000001'), round('0')]).toEqual([
      3n,
      4n,
      2n,
      3n,
      0n,
    ]);
    expect([round('-2.5'), round('-2.4')]).toEqual([-3n, -2n]);
  });
});

describe('per-unit pricing', () => {
  it('prices 1,234,567 units at 0.05 minor units exactly: 61728.35, rounded once to 61728', () => {
    const priced = priceUsage('1234567', perUnit('0.05'));
    expect(priced.exactAmountMinor).toBe('61728.35');
    expect(priced.amountMinor).toBe(61728n);
    expect(priced.lines).toEqual([
      {
        fromUnits: '0',
        toUnits: null,
        quantity: '1234567',
        unitPriceMinor: '0.05',
        exactAmountMinor: '61728.35',
      },
    ]);
  });

  it('carries fractions of a minor unit and fractional quantities until the line is rounded', () => {
    expect(priceUsage('3', perUnit('0.333')).amountMinor).toBe(1n); // 0.999
    expect(priceUsage('2.5', perUnit('0.0004')).exactAmountMinor).toBe('0.001');
    expect(priceUsage('0', perUnit('0.05')).amountMinor).toBe(0n);
  });

  it.each([
    ['50', '0.05', '2.5', 3n], // banker's rounding would give 2
    ['30', '0.05', '1.5', 2n],
    ['70', '0.05', '3.5', 4n],
    ['49', '0.05', '2.45', 2n],
    ['50', '0.29', '14.5', 15n], // a double computes 14.499999999999998 and would round to 14
  ])('rounds the line half up: %s × %s = %s → %d', (quantity, price, exact, rounded) => {
    const priced = priceUsage(quantity, perUnit(price));
    expect(priced.exactAmountMinor).toBe(exact);
    expect(priced.amountMinor).toBe(rounded);
  });

  it('rounds once per line, not per event: ten events of 1 unit at 0.15 bill 2, not 10 × round(0.15) = 0', () => {
    const perEvent = Array.from({ length: 10 }, () => priceUsage('1', perUnit('0.15')).amountMinor);
    expect(perEvent.reduce((a, b) => a + b, 0n)).toBe(0n);
    expect(priceUsage('10', perUnit('0.15')).amountMinor).toBe(2n);
  });

  it('refuses a negative quantity', () => {
    expect(() => priceUsage('-1', perUnit('0.05'))).toThrow('must not be negative');
  });
});

describe('graduated pricing', () => {
  it.each([
    ['999999', '49999.95', 50000n],
    ['1000000', '50000', 50000n],
    ['1000001', '50000.02', 50000n],
    ['1234567', '54691.34', 54691n], // 1,000,000 × 0.05 + 234,567 × 0.02
    ['0', '0', 0n],
  ])('prices %s units across the 1,000,000-unit boundary: %s → %d', (quantity, exact, rounded) => {
    const priced = priceUsage(quantity, graduated(STANDARD_TIERS));
    expect(priced.exactAmountMinor).toBe(exact);
    expect(priced.amountMinor).toBe(rounded);
  });

  it('prices each tier’s units at that tier’s price, up_to being cumulative', () => {
    const tiers = [
      { up_to: '1000', unit_price_minor: '1' },
      { up_to: '10000', unit_price_minor: '0.5' },
      { up_to: null, unit_price_minor: '0.1' },
    ];
    const priced = priceUsage('25000', graduated(tiers));
    expect(priced.lines).toEqual([
      { fromUnits: '0', toUnits: '1000', quantity: '1000', unitPriceMinor: '1', exactAmountMinor: '1000' },
      {
        fromUnits: '1000',
        toUnits: '10000',
        quantity: '9000',
        unitPriceMinor: '0.5',
        exactAmountMinor: '4500',
      },
      {
        fromUnits: '10000',
        toUnits: null,
        quantity: '15000',
        unitPriceMinor: '0.1',
        exactAmountMinor: '1500',
      },
    ]);
    expect(priced.amountMinor).toBe(7000n);
    expect(priceUsage('500', graduated(tiers)).lines).toHaveLength(1);
  });

  it('splits a fractional quantity at the boundary and rounds only the sum', () => {
    const tiers = [
      { up_to: 1000, unit_price_minor: 1 },
      { up_to: null, unit_price_minor: 0.5 },
    ];
    const priced = priceUsage('1000.5', graduated(tiers));
    expect(priced.lines.map((l) => l.exactAmountMinor)).toEqual(['1000', '0.25']);
    expect(priced.amountMinor).toBe(1000n);
  });
});

describe('graduatedTiersSchema', () => {
  it('accepts the tiers jsonb as numbers or as text, giving canonical decimal text', () => {
    const expected = [
      { upTo: '1000000', unitPriceMinor: '0.05' },
      { upTo: null, unitPriceMinor: '0.02' },
    ];
    expect(graduatedTiersSchema.parse(STANDARD_TIERS)).toEqual(expected);
    expect(
      graduatedTiersSchema.parse([
        { up_to: '1000000.000', unit_price_minor: '0.050' },
        { up_to: null, unit_price_minor: '0.02' },
      ]),
    ).toEqual(expected);
  });

  it.each([
    ['no tiers', [], 'at least one tier'],
    ['a closed last tier', [{ up_to: 100, unit_price_minor: 1 }], 'the last tier must be up_to null'],
    [
      'an open tier before the last',
      [
        { up_to: null, unit_price_minor: 1 },
        { up_to: null, unit_price_minor: 2 },
      ],
      'only the last tier may be open',
    ],
    [
      'descending up_to',
      [
        { up_to: 1000, unit_price_minor: 1 },
        { up_to: 500, unit_price_minor: 2 },
        { up_to: null, unit_price_minor: 3 },
      ],
      'up_to must ascend: 500 follows 1000',
    ],
    [
      'a repeated up_to',
      [
        { up_to: 1000, unit_price_minor: 1 },
        { up_to: '1000.0', unit_price_minor: 2 },
        { up_to: null, unit_price_minor: 3 },
      ],
      'up_to must ascend',
    ],
    ['a negative price', [{ up_to: null, unit_price_minor: -0.01 }], 'must not be negative'],
    [
      'a zero up_to',
      [
        { up_to: 0, unit_price_minor: 1 },
        { up_to: null, unit_price_minor: 1 },
      ],
      'greater than zero',
    ],
    ['a price that is not a number', [{ up_to: null, unit_price_minor: 'five' }], 'not a decimal number'],
    ['a missing price', [{ up_to: null }], 'unit_price_minor'],
    ['an infinite price', [{ up_to: null, unit_price_minor: Infinity }], 'unit_price_minor'],
    ['an unknown key', [{ up_to: null, unit_price_minor: 1, flat_fee: 5 }], 'flat_fee'],
  ])('refuses %s', (_name, tiers, message) => {
    expect(() => parsePricing('graduated', null, tiers)).toThrow(PricingError);
    expect(() => parsePricing('graduated', null, tiers)).toThrow(message);
  });

  it('refuses a per-unit rate without a valid price and an unknown model', () => {
    expect(() => parsePricing('per_unit', null, null)).toThrow(PricingError);
    expect(() => parsePricing('per_unit', '-1', null)).toThrow('must not be negative');
    expect(() => parsePricing('flat', '1', null)).toThrow('unknown pricing model');
  });
});

describe('effectiveRate', () => {
  let nextId = 1;
  const rate = (overrides: Partial<Rate> & Pick<Rate, 'effectiveFrom'>): Rate => ({
    id: nextId++,
    meter: 'api_calls',
    tier: 'pro',
    tenantId: null,
    currency: 'USD',
    pricing: { model: 'per_unit', unitPriceMinor: '0.05' },
    ...overrides,
  });
  const at = (iso: string) => new Date(iso);
  const listJan = rate({ effectiveFrom: at('2026-01-01T00:00:00Z') });
  const listMar = rate({ effectiveFrom: at('2026-03-01T00:00:00Z') });
  const listApr = rate({ effectiveFrom: at('2026-04-01T00:00:00Z') });
  const listFuture = rate({ effectiveFrom: at('2027-01-01T00:00:00Z') });
  const enterprise = rate({ tier: 'enterprise', effectiveFrom: at('2026-01-01T00:00:00Z') });
  const euro = rate({ currency: 'EUR', effectiveFrom: at('2026-02-01T00:00:00Z') });
  const acmeContract = rate({ tier: null, tenantId: 'acme', effectiveFrom: at('2026-02-01T00:00:00Z') });
  const otherMeter = rate({ meter: 'storage_gb', effectiveFrom: at('2026-01-01T00:00:00Z') });
  const rates = [listFuture, listApr, acmeContract, listJan, euro, enterprise, listMar, otherMeter];
  const pro = { tenantId: 'globex', tier: 'pro' as const, currency: 'USD' };
  const acme = { tenantId: 'acme', tier: 'pro' as const, currency: 'USD' };

  it('picks the latest version effective at or before the instant', () => {
    expect(effectiveRate(rates, 'api_calls', at('2026-02-15T00:00:00Z'), pro)).toBe(listJan);
    expect(effectiveRate(rates, 'api_calls', at('2026-02-28T23:59:59Z'), pro)).toBe(listJan);
    expect(effectiveRate(rates, 'api_calls', at('2026-03-01T00:00:00Z'), pro)).toBe(listMar);
    expect(effectiveRate(rates, 'api_calls', at('2026-06-01T00:00:00Z'), pro)).toBe(listApr);
  });

  it('has no rate before the first version, for another meter without a version, or in another currency', () => {
    expect(effectiveRate(rates, 'api_calls', at('2025-12-31T23:00:00Z'), pro)).toBeUndefined();
    expect(effectiveRate(rates, 'egress_gb', at('2026-06-01T00:00:00Z'), pro)).toBeUndefined();
    expect(
      effectiveRate(rates, 'api_calls', at('2026-06-01T00:00:00Z'), { ...pro, currency: 'NGN' }),
    ).toBeUndefined();
    expect(effectiveRate(rates, 'api_calls', at('2026-06-01T00:00:00Z'), { ...pro, currency: 'EUR' })).toBe(
      euro,
    );
  });

  it('uses the tenant’s tier list', () => {
    const globexEnterprise = { ...pro, tier: 'enterprise' as const };
    expect(effectiveRate(rates, 'api_calls', at('2026-06-01T00:00:00Z'), globexEnterprise)).toBe(enterprise);
  });

  it('lets a tenant’s own rate beat the tier rate once effective, even after a newer list price', () => {
    expect(effectiveRate(rates, 'api_calls', at('2026-01-15T00:00:00Z'), acme)).toBe(listJan);
    expect(effectiveRate(rates, 'api_calls', at('2026-02-01T00:00:00Z'), acme)).toBe(acmeContract);
    expect(effectiveRate(rates, 'api_calls', at('2026-06-01T00:00:00Z'), acme)).toBe(acmeContract);
    // Another tenant on the same tier never sees acme's contract.
    expect(effectiveRate(rates, 'api_calls', at('2026-02-15T00:00:00Z'), pro)).toBe(listJan);
  });
});

describe('no floating point anywhere', () => {
  it('keeps 10^15 units and beyond exact', () => {
    expect(priceUsage('1000000000000000', perUnit('0.05')).amountMinor).toBe(50000000000000n);
    const justOver = priceUsage('1000000000000001', perUnit('0.07'));
    expect(justOver.exactAmountMinor).toBe('70000000000000.07'); // a double gives 70000000000000.08
    expect(justOver.amountMinor).toBe(70000000000000n);
    // Past 2^53 a double cannot even hold the quantity: Number('100000000000000001') is 1e17.
    expect(priceUsage('100000000000000001', perUnit('1')).amountMinor).toBe(100000000000000001n);
    // 1,000,000 × 0.05 + 999,999,000,000,000.5 × 0.02 = 50,000 + 19,999,999,980,000.01
    expect(priceUsage('1000000000000000.5', graduated(STANDARD_TIERS)).exactAmountMinor).toBe(
      '20000000030000.01',
    );
  });

  /** Deterministic pseudo-random numbers (mulberry32), so a failure reproduces. */
  function random(seed: number): () => number {
    let state = seed >>> 0;
    return () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const digits = (next: () => number, count: number) =>
    Array.from({ length: count }, () => Math.floor(next() * 10)).join('');
  /** A decimal with up to `whole` integer digits and up to `fraction` decimals, as text. */
  const decimalText = (next: () => number, whole: number, fraction: number) => {
    const integer = digits(next, 1 + Math.floor(next() * whole)).replace(/^0+(?=\d)/, '');
    const decimals = digits(next, Math.floor(next() * (fraction + 1)));
    return decimals ? `${integer}.${decimals}` : integer;
  };
  /** Independent reference: scaled BigInts and half up as floor((2x + 1) / 2). */
  const reference = (quantity: string, price: string): bigint => {
    const [qi = '', qf = ''] = quantity.split('.');
    const [pi = '', pf = ''] = price.split('.');
    const scale = 10n ** BigInt(qf.length + pf.length);
    return (2n * BigInt(qi + qf) * BigInt(pi + pf) + scale) / (2n * scale);
  };

  it('matches scaled-BigInt arithmetic for 2,000 random quantities up to 10^16 and prices with 6 decimals', () => {
    const next = random(20261122);
    for (let i = 0; i < 2000; i++) {
      const quantity = decimalText(next, 16, 4);
      const price = decimalText(next, 3, 6);
      expect([quantity, price, priceUsage(quantity, perUnit(price)).amountMinor]).toEqual([
        quantity,
        price,
        reference(quantity, price),
      ]);
    }
  });

  it('agrees with per-unit pricing when every tier has the same price, and never falls as quantity grows', () => {
    const next = random(7);
    for (let i = 0; i < 500; i++) {
      const price = decimalText(next, 2, 5);
      const bounds = [decimalText(next, 6, 2), decimalText(next, 6, 2), decimalText(next, 6, 2)]
        .map(parseDecimal)
        .filter((d) => d.units > 0n)
        .sort((a, b) => (a.units * 10n ** BigInt(b.scale) < b.units * 10n ** BigInt(a.scale) ? -1 : 1))
        .map(formatDecimal)
        .filter((b, j, all) => all.indexOf(b) === j);
      const flat = [
        ...bounds.map((b) => ({ up_to: b, unit_price_minor: price })),
        { up_to: null, unit_price_minor: price },
      ];
      const quantity = decimalText(next, 7, 3);
      expect(priceUsage(quantity, graduated(flat)).amountMinor).toBe(
        priceUsage(quantity, perUnit(price)).amountMinor,
      );

      const stepped = graduated([
        ...bounds.map((b, j) => ({ up_to: b, unit_price_minor: `${3 - j}` })),
        { up_to: null, unit_price_minor: '0.5' },
      ]);
      const more = formatDecimal({
        units: parseDecimal(quantity).units + 1n,
        scale: parseDecimal(quantity).scale,
      });
      expect(priceUsage(more, stepped).amountMinor).toBeGreaterThanOrEqual(
        priceUsage(quantity, stepped).amountMinor,
      );
    }
  });
});
