// The words every layer shares, defined once: processors, tiers, the tenant id and meter formats, time units and how
// a validation failure is told.
import type { z } from 'zod';

export { BILLING_TIERS, type BillingTier } from './policy/schema';

/** The payment processors billops charges through and hears from. */
export const PROCESSORS = ['stripe', 'paystack'] as const;
export type Processor = (typeof PROCESSORS)[number];
/** A tenant's or invoice's processor: `none` for tenants billed outside any processor (Free). */
export type ProcessorOrNone = Processor | 'none';

/** The CHECK constraints of tenants.id and usage_events.meter, so a valid value never fails an insert. */
export const TENANT_ID_FORMAT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const METER_FORMAT = /^[a-z][a-z0-9_.]{0,63}$/;

/** The operator name billops records for what it did by itself (timelines, DECISIONS.log). */
export const SYSTEM_OPERATOR = 'billops';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** zod's issues as one line: `path: message; path: message` (a whole-value issue is its message alone). */
export function describeZodIssues(issues: readonly z.ZodIssue[]): string {
  return issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}
