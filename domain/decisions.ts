// The DECISIONS.log line of seed 000, written when an incident ends, and its parser (they round-trip).
import { formatMinorUnits, parseMinorUnits, type Money } from './money';

export interface DecisionEntry {
  /** When the incident ended; written as ISO-8601 UTC (`2026-11-21T23:02:00.000Z`). */
  timestamp: Date | string;
  /** OPERATOR: the responder who resolved it. */
  operator: string;
  /** TYPE: the incident kind, e.g. payment_processor_outage. */
  incidentType: string;
  /** TENANTS: how many tenants were affected. */
  tenants: number;
  /** IMPACT: the revenue/service impact, in words. */
  impact: string;
  /** RESOLUTION: the summary given when it was resolved. */
  resolution: string;
  /** CREDITS: service credits issued, in minor units; null is written as `none`. */
  credits: Money | null;
  /** EXECUTOR: the team that carried out the resolution. */
  executor: string;
}

/** What parseDecisionLine returns: the timestamp as the ISO string that was written. */
export type ParsedDecisionEntry = DecisionEntry & { timestamp: string };

export class DecisionLineError extends Error {
  override name = 'DecisionLineError';
}

const ACTION = 'billing_incident';
const KEYS = [
  'OPERATOR',
  'ACTION',
  'TYPE',
  'TENANTS',
  'IMPACT',
  'RESOLUTION',
  'CREDITS',
  'EXECUTOR',
] as const;
const NO_CREDITS = 'none';
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z$/;

/**
 * One line, no trailing newline:
 * `<TIMESTAMP> | OPERATOR=<responder> | ACTION=billing_incident | TYPE=<incident_type> | TENANTS=<count> |
 *  IMPACT=<revenue/service> | RESOLUTION=<summary> | CREDITS=<amount> | EXECUTOR=<team>`.
 * Credits read `USD 12.50` (currency code, a space, major units with the currency's decimals) or `none`.
 */
export function formatDecisionLine(entry: DecisionEntry): string {
  if (!Number.isSafeInteger(entry.tenants) || entry.tenants < 0) {
    throw new DecisionLineError(`TENANTS must be a whole number of tenants, got ${entry.tenants}`);
  }
  const fields: Record<(typeof KEYS)[number], string> = {
    OPERATOR: required('OPERATOR', entry.operator),
    ACTION,
    TYPE: required('TYPE', entry.incidentType),
    TENANTS: String(entry.tenants),
    IMPACT: required('IMPACT', entry.impact),
    RESOLUTION: required('RESOLUTION', entry.resolution),
    CREDITS:
      entry.credits === null
        ? NO_CREDITS
        : formatMinorUnits(entry.credits.amountMinor, entry.credits.currency),
    EXECUTOR: required('EXECUTOR', entry.executor),
  };
  return [isoTimestamp(entry.timestamp), ...KEYS.map((key) => `${key}=${fields[key]}`)].join(' | ');
}

/** Reads a line formatDecisionLine wrote; throws a DecisionLineError saying what does not match. */
export function parseDecisionLine(line: string): ParsedDecisionEntry {
  const [timestamp = '', ...parts] = line.replace(/\r?\n$/, '').split(' | ');
  if (parts.length !== KEYS.length) {
    throw new DecisionLineError(
      `expected a timestamp and ${KEYS.length} fields separated by " | ", got ${parts.length}`,
    );
  }
  const fields = {} as Record<(typeof KEYS)[number], string>;
  KEYS.forEach((key, i) => {
    const part = parts[i] ?? '';
    if (!part.startsWith(`${key}=`))
      throw new DecisionLineError(`field ${i + 1} should be ${key}=..., got "${part}"`);
    fields[key] = part.slice(key.length + 1);
  });
  if (fields.ACTION !== ACTION)
    throw new DecisionLineError(`ACTION must be ${ACTION}, got "${fields.ACTION}"`);
  if (!/^\d+$/.test(fields.TENANTS))
    throw new DecisionLineError(`TENANTS must be a count, got "${fields.TENANTS}"`);
  if (!ISO_UTC.test(timestamp))
    throw new DecisionLineError(`timestamp must be ISO-8601 UTC, got "${timestamp}"`);
  return {
    timestamp: isoTimestamp(timestamp),
    operator: fields.OPERATOR,
    incidentType: fields.TYPE,
    tenants: Number(fields.TENANTS),
    impact: fields.IMPACT,
    resolution: fields.RESOLUTION,
    credits: fields.CREDITS === NO_CREDITS ? null : parseMinorUnits(fields.CREDITS),
    executor: fields.EXECUTOR,
  };
}

/** Keeps a value on its line and inside its field: no '|', no line breaks or control characters, single spaces. */
export function sanitizeDecisionValue(value: string): string {
  return value
    .replace(/\|/g, '/')
    .replace(/[\p{Cc}\u2028\u2029]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function required(key: string, value: string): string {
  const clean = sanitizeDecisionValue(value);
  if (clean === '') throw new DecisionLineError(`${key} must not be empty`);
  return clean;
}

function isoTimestamp(value: Date | string): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new DecisionLineError(`not a timestamp: "${String(value)}"`);
  return date.toISOString();
}

/** DECISIONS.log as a file: the lines in the order given, each ending in a newline; empty for no decisions. */
export function decisionsLogText(lines: readonly string[]): string {
  return lines.map((line) => `${line}\n`).join('');
}

/** The first instant of a UTC calendar day written YYYY-MM-DD (`decisions export --since`); undefined otherwise. */
export function decisionDayStart(day: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!match) return undefined;
  const [year, month, date] = match.slice(1).map(Number) as [number, number, number];
  const start = new Date(Date.UTC(year, month - 1, date));
  const sameDay =
    start.getUTCFullYear() === year && start.getUTCMonth() === month - 1 && start.getUTCDate() === date;
  return sameDay ? start : undefined;
}
