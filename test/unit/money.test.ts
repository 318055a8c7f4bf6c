// Minor units to display text and back: cents, kobo, yen and three-decimal dinars, with integer math only.
import { currencyDecimals, formatMinorUnits, MoneyError, parseMinorUnits } from '../../domain/money';

describe('formatMinorUnits', () => {
  it.each([
    [1250, 'USD', 'USD 12.50'],
    [5, 'usd', 'USD 0.05'],
    [0, 'EUR', 'EUR 0.00'],
    [-1999, 'USD', 'USD -19.99'],
    [15000000, 'NGN', 'NGN 150000.00'],
    [1500, 'JPY', 'JPY 1500'],
    [1234, 'KWD', 'KWD 1.234'],
    [12345678901234567890n, 'USD', 'USD 123456789012345678.90'],
  ] as const)('%p %s → %s', (amount, currency, expected) => {
    expect(formatMinorUnits(amount, currency)).toBe(expected);
  });

  it('refuses fractions of a minor unit and unknown code shapes', () => {
    expect(() => formatMinorUnits(12.5, 'USD')).toThrow(MoneyError);
    expect(() => formatMinorUnits(100, 'US')).toThrow('3-letter ISO 4217');
  });
});

describe('parseMinorUnits', () => {
  it('reads back what formatMinorUnits writes', () => {
    expect(parseMinorUnits('USD 12.50')).toEqual({ amountMinor: 1250, currency: 'USD' });
    expect(parseMinorUnits('NGN 150000.00')).toEqual({ amountMinor: 15000000, currency: 'NGN' });
    expect(parseMinorUnits('JPY 1500')).toEqual({ amountMinor: 1500, currency: 'JPY' });
    expect(parseMinorUnits('USD -0.05')).toEqual({ amountMinor: -5, currency: 'USD' });
  });

  it('rejects the wrong number of decimals for the currency', () => {
    expect(() => parseMinorUnits('USD 12.5')).toThrow('exactly 2 decimals');
    expect(() => parseMinorUnits('JPY 15.00')).toThrow('exactly 0 decimals');
    expect(() => parseMinorUnits('12.50')).toThrow(MoneyError);
  });

  it('knows the minor unit of the currencies billops meets', () => {
    expect([
      currencyDecimals('USD'),
      currencyDecimals('ngn'),
      currencyDecimals('JPY'),
      currencyDecimals('BHD'),
    ]).toEqual([2, 2, 0, 3]);
  });
});
