// The billing policy as callers use it: parsing an override over the runbooks' defaults, and reading it.
import { z } from 'zod';
import { defaultPolicy } from './defaults';
import { policyObjectSchema, type IncidentKind, type Policy } from './schema';

export { defaultPolicy } from './defaults';
export {
  BILLING_TIERS,
  INCIDENT_KINDS,
  SEVERITIES,
  type BillingTier,
  type EscalationChain,
  type IncidentKind,
  type IncidentPolicy,
  type Policy,
  type Severity,
  type TierPolicy,
} from './schema';

/** An override as read from BILLOPS_POLICY_FILE: any subset of the policy. */
export type PolicyOverride = DeepPartial<Policy>;
type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** Validates a whole policy after laying the input over the defaults; `policySchema.parse({})` is the defaults. */
export const policySchema = z.preprocess(
  (input) => mergeOverDefaults(defaultPolicy, input),
  policyObjectSchema,
);

export interface PolicyIssue {
  path: string;
  message: string;
}

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(readonly issues: PolicyIssue[]) {
    super(`policy is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

/** Deep-merges a partial override over the defaults (arrays and null replace), then validates the result. */
export function parsePolicy(input: unknown): Policy {
  const result = policySchema.safeParse(input);
  if (result.success) return result.data;
  throw new PolicyError(result.error.issues.flatMap(toPolicyIssues));
}

/** The incident kind's own response time, else its severity level's. */
export function incidentResponseMinutes(policy: Policy, kind: IncidentKind): number {
  const incident = policy.incidents[kind];
  return incident.responseMinutes ?? policy.severityLevels[incident.severity].responseMinutes;
}

function toPolicyIssues(issue: z.ZodIssue): PolicyIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: 'is not a policy setting',
    }));
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

function formatPath(path: PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeOverDefaults(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const merged: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(base), ...Object.keys(override)])) {
    const value = mergeOverDefaults(
      Object.hasOwn(base, key) ? base[key] : undefined,
      Object.hasOwn(override, key) ? override[key] : undefined,
    );
    // defineProperty keeps a "__proto__" key as data, so the strict schema reports it instead of it rewriting the prototype.
    Object.defineProperty(merged, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return merged;
}
