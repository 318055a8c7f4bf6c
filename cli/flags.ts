// The flags several commands parse the same way (instants and ranges, tenants, meters, severities), and how a refused
// request from the invoicing and integrity functions becomes the operator's exit code.
import { ApplicationFailure } from '@temporalio/common';
import { SEVERITIES, type Severity } from '../domain/policy';
import { METER_FORMAT, TENANT_ID_FORMAT } from '../domain/usageEvents';
import { RefusedError, required, UsageError } from './common';

const ISO_INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;

/** An ISO-8601 instant with its zone (Z or ±hh:mm), or a bare date meaning its UTC midnight; as ISO-8601 UTC. */
export function instantFlag(value: string | undefined, flag: string): string {
  const text = required(value, `${flag} ISO`).trim();
  const bad = () =>
    new UsageError(
      `${flag} must be an ISO-8601 time with its zone, e.g. 2026-01-05T00:00:00Z, or a date (got ${JSON.stringify(value)})`,
    );
  const match = ISO_INSTANT.exec(text);
  if (!match) throw bad();
  const [, y, mo, d, h = '0', mi = '0', s = '0'] = match;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  const calendarDay =
    day.getUTCFullYear() === Number(y) &&
    day.getUTCMonth() === Number(mo) - 1 &&
    day.getUTCDate() === Number(d);
  if (!calendarDay || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) throw bad();
  const ms = Date.parse(match[4] === undefined ? `${text}T00:00:00Z` : text);
  if (!Number.isFinite(ms)) throw bad();
  return new Date(ms).toISOString();
}

/** --from and --to, the second strictly later. */
export function timeRange(values: { from?: string; to?: string }): { from: string; to: string } {
  const from = instantFlag(values.from, '--from');
  const to = instantFlag(values.to, '--to');
  if (Date.parse(to) <= Date.parse(from))
    throw new UsageError(`--to must be after --from (${from} .. ${to})`);
  return { from, to };
}

export function tenantFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !TENANT_ID_FORMAT.test(value)) {
    throw new UsageError(`--tenant must be a tenant id (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Repeated --tenant flags, deduplicated; undefined when none (every tenant). */
export function tenantFlags(values: string[] | undefined): string[] | undefined {
  if (!values || values.length === 0) return undefined;
  return [...new Set(values.map((v) => tenantFlag(v)!))];
}

export function meterFlag(value: string | undefined): string | undefined {
  if (value !== undefined && !METER_FORMAT.test(value)) {
    throw new UsageError(`--meter must be a meter name like api_calls (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** P1..P4 in any case. */
export function severityFlag(value: string | undefined): Severity | undefined {
  if (value === undefined) return undefined;
  const match = SEVERITIES.find((s) => s === value.trim().toUpperCase());
  if (!match)
    throw new UsageError(`--severity must be one of ${SEVERITIES.join(', ')} (got ${JSON.stringify(value)})`);
  return match;
}

/**
 * The integrity and invoicing functions refuse a malformed request with a non-retryable ApplicationFailure (they
 * are activities too): a bad request is the operator's arguments (exit 2), anything else is refused (exit 1).
 */
export function edgeError(err: unknown, badRequestTypes: string[]): unknown {
  if (!(err instanceof ApplicationFailure)) return err;
  if (err.type && badRequestTypes.includes(err.type)) return new UsageError(err.message);
  return new RefusedError(err.message);
}
