// Usage events at the edge: the wire schema, batch limits and the per-item verdicts of a pure validation pass.
import { z } from 'zod';

/** Events per batch; items past it are refused one by one so the caller resends only those. */
export const MAX_BATCH_EVENTS = 1000;
/** Bytes per request body; a larger body is answered 413 before it is parsed. */
export const MAX_BATCH_BODY_BYTES = 1024 * 1024;
/** How far ahead of our clock an event may be stamped (client clock skew), unless configured otherwise. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60 * 1000;

import { METER_FORMAT, TENANT_ID_FORMAT } from './vocabulary';

/** The CHECK constraints of tenants.id and usage_events.meter (domain/vocabulary.ts), so a valid item never fails the insert. */
export { METER_FORMAT, TENANT_ID_FORMAT };
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** Usage events before this are a sender's unset clock (epoch 0 and earlier), not usage. */
const EARLIEST_OCCURRED_AT_MS = Date.UTC(1970, 0, 1);
/** Real zones lie within UTC−12 and UTC+14; PostgreSQL refuses displacements much past that. */
const MAX_ZONE_OFFSET_MINUTES = 14 * 60;
/** Every decimal of at most 15 significant digits survives a trip through a double unchanged. */
const EXACT_DOUBLE_DIGITS = 15;
const MAX_QUANTITY_LENGTH = 100;

export type UsageItemStatus = 'accepted' | 'duplicate' | 'rejected';

/** The verdict on one item of a batch; index is its position in the batch as sent. */
export interface UsageItemResult {
  index: number;
  status: UsageItemStatus;
  reason?: string;
}

/** A usage event that passed validation: quantity as an exact decimal string, timestamp as sent (ISO-8601 with zone). */
export interface UsageEvent {
  tenantId: string;
  meter: string;
  quantity: string;
  occurredAt: string;
  idempotencyKey: string;
}

export interface ValidatedUsageEvent extends UsageEvent {
  index: number;
}

export interface UsageBatchLimits {
  /** Our clock at validation time. */
  now: Date;
  maxFutureSkewMs: number;
  maxBatchEvents: number;
}

export interface UsageBatchValidation {
  valid: ValidatedUsageEvent[];
  rejected: UsageItemResult[];
}

/**
 * A quantity as an exact decimal string for a numeric column, or the reason it cannot be one.
 * JSON numbers are taken only while their digits are certainly the ones sent; longer ones must come as strings.
 */
export function parseQuantity(
  value: unknown,
): { ok: true; quantity: string } | { ok: false; reason: string } {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return { ok: false, reason: 'must be a finite number' };
    if (value < 0) return { ok: false, reason: `must not be negative (got ${value})` };
    const text = String(value);
    const exact = Number.isInteger(value)
      ? Number.isSafeInteger(value)
      : !/e/i.test(text) && significantDigits(text) <= EXACT_DOUBLE_DIGITS;
    if (!exact) {
      return {
        ok: false,
        reason: `has more digits than a JSON number keeps exactly (read as ${text}): send it as a decimal string`,
      };
    }
    return { ok: true, quantity: text };
  }
  if (typeof value !== 'string') {
    return {
      ok: false,
      reason:
        value === undefined ? 'is required' : `must be a number or a decimal string (got ${typeName(value)})`,
    };
  }
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) {
    if (text.length > MAX_QUANTITY_LENGTH)
      return { ok: false, reason: `must be at most ${MAX_QUANTITY_LENGTH} characters` };
    return { ok: true, quantity: text };
  }
  if (/^-\s*\d*\.?\d+$/.test(text))
    return { ok: false, reason: `must not be negative (got ${JSON.stringify(value)})` };
  if (/^[+-]?(\d+\.?\d*|\.\d+)e[+-]?\d+$/i.test(text)) {
    return { ok: false, reason: `must be written without an exponent (got ${JSON.stringify(value)})` };
  }
  return {
    ok: false,
    reason: `must be a non-negative decimal number such as 12 or 0.25 (got ${JSON.stringify(value)})`,
  };
}

function significantDigits(decimal: string): number {
  return decimal.replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/** Zone offset of an ISO-8601 timestamp in minutes; 0 for Z. */
function zoneOffsetMinutes(timestamp: string): number {
  const match = /([+-])(\d{2}):?(\d{2})?$/.exec(timestamp);
  if (!match) return 0;
  return Number(match[2]) * 60 + Number(match[3] ?? 0);
}

/** 'is required' when the field is missing, 'must be a string' when it is anything else. */
const requiredString = {
  error: (issue: z.core.$ZodRawIssue) => (issue.input === undefined ? 'is required' : 'must be a string'),
};

function text(field: string, rule: { format?: RegExp; formatMessage?: string; max: number }) {
  let schema = z
    .string(requiredString)
    .min(1, 'must not be empty')
    .max(rule.max, `must be at most ${rule.max} characters`);
  if (rule.format) schema = schema.regex(rule.format, rule.formatMessage ?? `is not a valid ${field}`);
  return schema;
}

/** One usage event as sent (snake_case); the timestamp's range against our clock is checked by validateUsageBatch. */
export const usageEventSchema = z.object({
  tenant_id: text('tenant id', {
    format: TENANT_ID_FORMAT,
    formatMessage: 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    max: 64,
  }),
  meter: text('meter', {
    format: METER_FORMAT,
    formatMessage: 'must be lower case: a letter, then up to 63 letters, digits, "_" or "."',
    max: 64,
  }),
  quantity: z.unknown().transform((value, ctx) => {
    const parsed = parseQuantity(value);
    if (parsed.ok) return parsed.quantity;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: parsed.reason });
    return z.NEVER;
  }),
  timestamp: z
    .string(requiredString)
    .datetime({
      offset: true,
      message: 'must be an ISO-8601 date-time with a zone, such as 2026-01-31T12:00:00Z',
    })
    .refine((t) => zoneOffsetMinutes(t) <= MAX_ZONE_OFFSET_MINUTES, 'has a zone offset beyond ±14:00')
    .refine((t) => !Number.isNaN(Date.parse(t)), 'is not a real date-time'),
  idempotency_key: text('idempotency key', { max: MAX_IDEMPOTENCY_KEY_LENGTH }),
});

export type UsageEventInput = z.input<typeof usageEventSchema>;

function describeIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'event'} ${issue.message}`).join('; ');
}

/** The event, or why it cannot be recorded, judged alone: whether tenant and meter exist is the database's to say. */
function validateOne(item: unknown, limits: UsageBatchLimits): { event: UsageEvent } | { reason: string } {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    return { reason: `event must be an object (got ${typeName(item)})` };
  }
  const parsed = usageEventSchema.safeParse(item);
  if (!parsed.success) return { reason: describeIssues(parsed.error) };
  const e = parsed.data;
  const occurredMs = Date.parse(e.timestamp);
  const aheadMs = occurredMs - limits.now.getTime();
  if (aheadMs > limits.maxFutureSkewMs) {
    return {
      reason:
        `timestamp is ${Math.round(aheadMs / 1000)} s in the future; ` +
        `at most ${Math.round(limits.maxFutureSkewMs / 1000)} s ahead is accepted`,
    };
  }
  if (occurredMs < EARLIEST_OCCURRED_AT_MS)
    return { reason: 'timestamp must not be before 1970-01-01T00:00:00Z' };
  return {
    event: {
      tenantId: e.tenant_id,
      meter: e.meter,
      quantity: e.quantity,
      occurredAt: e.timestamp,
      idempotencyKey: e.idempotency_key,
    },
  };
}

/** Splits a batch into events worth offering to the database and items refused with their reasons. */
export function validateUsageBatch(
  items: readonly unknown[],
  limits: UsageBatchLimits,
): UsageBatchValidation {
  const valid: ValidatedUsageEvent[] = [];
  const rejected: UsageItemResult[] = [];
  items.forEach((item, index) => {
    if (index >= limits.maxBatchEvents) {
      rejected.push({
        index,
        status: 'rejected',
        reason: `beyond the batch limit of ${limits.maxBatchEvents} events: send it in a later batch`,
      });
      return;
    }
    const verdict = validateOne(item, limits);
    if ('reason' in verdict) rejected.push({ index, status: 'rejected', reason: verdict.reason });
    else valid.push({ index, ...verdict.event });
  });
  return { valid, rejected };
}

export interface UsageBatchSummary {
  accepted: number;
  duplicates: number;
  rejected: number;
  /** One per item, in the order sent. */
  results: UsageItemResult[];
}

export function summarizeUsageResults(results: UsageItemResult[]): UsageBatchSummary {
  const sorted = [...results].sort((a, b) => a.index - b.index);
  const count = (status: UsageItemStatus) => sorted.filter((r) => r.status === status).length;
  return {
    accepted: count('accepted'),
    duplicates: count('duplicate'),
    rejected: count('rejected'),
    results: sorted,
  };
}
