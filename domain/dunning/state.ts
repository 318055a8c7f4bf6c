// The dunning lifecycle's state: phases, the invoices it holds, its timeline, and how a lifecycle begins.
import type { AttentionWait } from '../attention';
import type { BillingTier, Policy } from '../policy';
import { DAY_MS, HOUR_MS, type ProcessorOrNone } from '../vocabulary';

export const DUNNING_PHASES = [
  'retrying',
  'grace',
  'warning',
  'soft_limited',
  'hard_limited',
  'suspended',
  'deleted',
  'recovered',
] as const;
export type DunningPhase = (typeof DUNNING_PHASES)[number];

export type PaymentProcessorName = ProcessorOrNone;

export interface FailedInvoice {
  invoiceId: string;
  amountMinor: number;
  currency: string;
}

export interface OutstandingInvoice extends FailedInvoice {
  paid: boolean;
}

export interface DunningInput {
  tenantId: string;
  tenantName?: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  invoice: FailedInvoice;
  /**
   * Further unpaid invoices the lifecycle starts with: a payment that failed while the previous lifecycle was
   * finishing its recovery continues as a new lifecycle holding every invoice still open.
   */
  moreInvoices?: FailedInvoice[];
  /** The policy in force when the lifecycle started; later policy changes never reach a running lifecycle. */
  policy: Policy;
  /** Where customers update their payment method, linked from every notice. */
  billingPortalUrl: string;
}

export interface TimelineEntry {
  at: string;
  /** For a scheduled step: when it was due (it is performed at `at`, moments later). */
  dueAt?: string;
  event: string;
  detail?: string;
  operator?: string;
  reason?: string;
}

export interface DunningState {
  workflowKey: string;
  tenantId: string;
  tenantName: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  policy: Policy;
  startedAt: number;
  invoices: OutstandingInvoice[];
  phase: DunningPhase;
  paused: boolean;
  pausedSince: number | null;
  pausedTotalMs: number;
  graceExtensionMs: number;
  done: string[];
  hardDeclined: boolean;
  failureNoticeSent: boolean;
  /** Bumped on every change that can move a deadline, so a waiting timer knows to recompute. */
  revision: number;
  timeline: TimelineEntry[];
  /** The step waiting for a person, and why; null while everything runs by itself. */
  attention: AttentionWait | null;
  /** Who approved the deletion, when the policy requires it. */
  deletionApproval: { operator: string; reason: string; at: string } | null;
}

/** A request the lifecycle refuses: retrying cannot fix it, so callers treat it as non-retryable. */
export class DunningRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DunningRefusedError';
  }
}

export { DAY_MS, HOUR_MS };

export const iso = (ms: number) => new Date(ms).toISOString();

export function newDunningState(input: DunningInput, workflowKey: string, now: number): DunningState {
  const graceDays = input.policy.tiers[input.tier].graceDays;
  if (graceDays === null) {
    throw new DunningRefusedError(
      `tenant ${input.tenantId} is on the ${input.tier} tier, which has no payment processing: there is nothing to dun (upgrade required)`,
    );
  }
  const invoices = [input.invoice, ...(input.moreInvoices ?? [])].filter(
    (invoice, index, all) => all.findIndex((i) => i.invoiceId === invoice.invoiceId) === index,
  );
  return {
    workflowKey,
    tenantId: input.tenantId,
    tenantName: input.tenantName ?? input.tenantId,
    tier: input.tier,
    processor: input.processor,
    policy: input.policy,
    startedAt: now,
    invoices: invoices.map((invoice) => ({ ...invoice, paid: false })),
    phase: 'retrying',
    paused: false,
    pausedSince: null,
    pausedTotalMs: 0,
    graceExtensionMs: 0,
    done: [],
    hardDeclined: false,
    failureNoticeSent: false,
    revision: 0,
    attention: null,
    deletionApproval: null,
    timeline: invoices.map((invoice) => ({
      at: iso(now),
      event: 'payment failed',
      detail: describeInvoice(invoice),
    })),
  };
}

export function describeInvoice(invoice: FailedInvoice): string {
  return `invoice ${invoice.invoiceId} (${invoice.amountMinor} ${invoice.currency} minor units)`;
}

/** How the timeline and the CLI say a length of time: whole days, else hours, else minutes. */
export function formatDuration(ms: number): string {
  const hours = Math.round(ms / HOUR_MS);
  if (hours >= 24 && hours % 24 === 0) return `${hours / 24} days`;
  if (hours >= 1) return `${hours} hours`;
  return `${Math.round(ms / 60_000)} minutes`;
}
