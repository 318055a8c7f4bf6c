// Service control holds: each source that restricts a tenant holds its own restriction; what is enforced is the most
// restrictive active hold, field by field, so lifting one source's hold never lifts another's.

export const SERVICE_CONTROL_SOURCES = ['dunning', 'overage', 'incident', 'operator', 'maintenance'] as const;
export type ServiceControlSource = (typeof SERVICE_CONTROL_SOURCES)[number];

/** What a hold (or the enforced state) restricts; 100 % is normal capacity. */
export interface Restriction {
  rateLimitPercent: number;
  apiBlocked: boolean;
  suspended: boolean;
  readOnly: boolean;
}

/** Runbook "Restore Service": full capacity, nothing blocked, suspended or read-only. */
export const UNRESTRICTED: Readonly<Restriction> = {
  rateLimitPercent: 100,
  apiBlocked: false,
  suspended: false,
  readOnly: false,
};

/** A hold's summary, least to most restrictive. */
export const HOLD_LEVELS = ['throttled', 'read_only', 'blocked', 'suspended'] as const;
export type HoldLevel = (typeof HOLD_LEVELS)[number];

export interface ServiceControlHold extends Restriction {
  source: ServiceControlSource;
  reason: string;
  workflowId: string | null;
  /** ISO-8601 UTC. */
  since: string;
  /** ISO-8601 UTC; the hold stops counting from then. */
  until: string | null;
}

export function isRestricted(r: Restriction): boolean {
  return r.rateLimitPercent < 100 || r.apiBlocked || r.suspended || r.readOnly;
}

/** The most restrictive thing a restriction does; null when it restricts nothing. */
export function holdLevel(r: Restriction): HoldLevel | null {
  if (r.suspended) return 'suspended';
  if (r.apiBlocked) return 'blocked';
  if (r.readOnly) return 'read_only';
  if (r.rateLimitPercent < 100) return 'throttled';
  return null;
}

export function isActive(hold: Pick<ServiceControlHold, 'until'>, now: number): boolean {
  return hold.until === null || Date.parse(hold.until) > now;
}

/** A source's next restriction: the fields given replace its current ones, the others keep their value. */
export function nextRestriction(current: Restriction | undefined, fields: Partial<Restriction>): Restriction {
  const base = current ?? UNRESTRICTED;
  return {
    rateLimitPercent: fields.rateLimitPercent ?? base.rateLimitPercent,
    apiBlocked: fields.apiBlocked ?? base.apiBlocked,
    suspended: fields.suspended ?? base.suspended,
    readOnly: fields.readOnly ?? base.readOnly,
  };
}

/**
 * The enforced state: the lowest rate limit and every block, suspension and read-only mode of the active holds, so
 * nothing any active hold restricts is allowed; with no active hold, full service.
 */
export function enforcedRestriction(holds: readonly ServiceControlHold[], now: number): Restriction {
  return holds
    .filter((h) => isActive(h, now))
    .reduce<Restriction>(
      (acc, h) => ({
        rateLimitPercent: Math.min(acc.rateLimitPercent, h.rateLimitPercent),
        apiBlocked: acc.apiBlocked || h.apiBlocked,
        suspended: acc.suspended || h.suspended,
        readOnly: acc.readOnly || h.readOnly,
      }),
      { ...UNRESTRICTED },
    );
}

export function sameRestriction(a: Restriction, b: Restriction): boolean {
  return (
    a.rateLimitPercent === b.rateLimitPercent &&
    a.apiBlocked === b.apiBlocked &&
    a.suspended === b.suspended &&
    a.readOnly === b.readOnly
  );
}

/**
 * The source a change comes from. Callers name it; a request recorded before sources existed (a replayed history, a
 * queued operation) is read as the caller that wrote it meant, from its idempotency key or workflow id prefix.
 */
export function sourceOf(change: {
  source?: ServiceControlSource;
  idempotencyKey?: string;
  workflowId?: string | null;
}): ServiceControlSource {
  if (change.source) return change.source;
  for (const id of [change.idempotencyKey, change.workflowId]) {
    if (id?.startsWith('dunning-')) return 'dunning';
    if (id?.startsWith('overage-')) return 'overage';
    if (id?.startsWith('incident-')) return 'incident';
  }
  return 'operator';
}

export function isServiceControlSource(value: unknown): value is ServiceControlSource {
  return typeof value === 'string' && (SERVICE_CONTROL_SOURCES as readonly string[]).includes(value);
}
