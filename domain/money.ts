// Amounts in minor units (cents, kobo, yen) rendered as "USD 12.50" and read back, with integer math only.

/** ISO 4217 currencies whose minor unit is not 1/100; every other currency has 2 decimals (NGN kobo, USD cents). */
const DECIMALS_OTHER_THAN_TWO: Readonly<Record<string, number>> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
};

export class MoneyError extends Error {
  override name = 'MoneyError';
}

export interface Money {
  amountMinor: number;
  currency: string;
}

/** Upper-cased ISO 4217 code; Stripe sends lower case ('usd'), the log and emails show 'USD'. */
export function normalizeCurrency(currency: string): string {
  const code = currency.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(code))
    throw new MoneyError(`currency must be a 3-letter ISO 4217 code, got "${currency}"`);
  return code;
}

export function currencyDecimals(currency: string): number {
  return DECIMALS_OTHER_THAN_TWO[normalizeCurrency(currency)] ?? 2;
}

function toBigInt(amountMinor: number | bigint): bigint {
  if (typeof amountMinor === 'bigint') return amountMinor;
  if (!Number.isSafeInteger(amountMinor)) {
    throw new MoneyError(`amount in minor units must be a safe integer, got ${amountMinor}`);
  }
  return BigInt(amountMinor);
}

/** `formatMinorUnits(1250, 'usd')` → `USD 12.50`; `(1500, 'JPY')` → `JPY 1500`; no grouping, so it parses back. */
export function formatMinorUnits(amountMinor: number | bigint, currency: string): string {
  const code = normalizeCurrency(currency);
  const decimals = currencyDecimals(code);
  const amount = toBigInt(amountMinor);
  const sign = amount < 0n ? '-' : '';
  const magnitude = amount < 0n ? -amount : amount;
  if (decimals === 0) return `${code} ${sign}${magnitude}`;
  const scale = 10n ** BigInt(decimals);
  const fraction = (magnitude % scale).toString().padStart(decimals, '0');
  return `${code} ${sign}${magnitude / scale}.${fraction}`;
}

/** The inverse of formatMinorUnits: `USD 12.50` → `{ amountMinor: 1250, currency: 'USD' }`. */
export function parseMinorUnits(text: string): Money {
  const match = /^([A-Za-z]{3}) (-?)(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) throw new MoneyError(`not an amount like "USD 12.50": "${text}"`);
  const [, rawCode = '', sign, whole = '', fraction = ''] = match;
  const code = normalizeCurrency(rawCode);
  const decimals = currencyDecimals(code);
  if (fraction.length !== decimals) {
    throw new MoneyError(`${code} takes exactly ${decimals} decimals, got "${text}"`);
  }
  const magnitude = BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction || '0');
  const amount = sign === '-' ? -magnitude : magnitude;
  if (amount > BigInt(Number.MAX_SAFE_INTEGER) || amount < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new MoneyError(`amount is too large for a safe integer: "${text}"`);
  }
  return { amountMinor: Number(amount), currency: code };
}
