// What a dunning lifecycle tells whoever asks: its status query, outstanding invoices, and the Web UI's one-line story.
import type { AttentionWait } from '../attention';
import type { BillingTier } from '../policy';
import { deadlines, nextStep, type DunningDeadlines, type StepKind } from './schedule';
import {
  iso,
  type DunningPhase,
  type DunningState,
  type FailedInvoice,
  type PaymentProcessorName,
  type TimelineEntry,
} from './state';

export interface DunningStatus {
  tenantId: string;
  tier: BillingTier;
  processor: PaymentProcessorName;
  phase: DunningPhase;
  paused: boolean;
  policyVersion: string;
  outstandingInvoices: FailedInvoice[];
  deadlines: DunningDeadlines;
  nextAction: { step: string; kind: StepKind; at: string } | null;
  /** A step waiting for a person: which, why, since when, what to do. */
  attention: AttentionWait | null;
  timeline: TimelineEntry[];
}

export function outstanding(state: DunningState): FailedInvoice[] {
  return state.invoices.filter((i) => !i.paid).map(({ paid: _paid, ...invoice }) => invoice);
}

export function isRecovered(state: DunningState): boolean {
  return state.invoices.every((i) => i.paid);
}

export function statusOf(state: DunningState): DunningStatus {
  const next = nextStep(state);
  return {
    tenantId: state.tenantId,
    tier: state.tier,
    processor: state.processor,
    phase: state.phase,
    paused: state.paused,
    policyVersion: state.policy.version,
    outstandingInvoices: outstanding(state),
    deadlines: deadlines(state),
    nextAction: next && !state.paused ? { step: next.id, kind: next.kind, at: iso(next.at) } : null,
    attention: state.attention,
    timeline: state.timeline,
  };
}

const TIER_NAMES: Record<BillingTier, string> = { free: 'Free', pro: 'Pro', enterprise: 'Enterprise' };

/** The one-line story of the lifecycle shown in the Web UI, e.g. "Dunning · acme (Pro) · soft limited until 2026-12-03". */
export function describeLifecycle(state: DunningState): string {
  const head = `Dunning · ${state.tenantName} (${TIER_NAMES[state.tier]})`;
  const day = (ms: number) => iso(ms).slice(0, 10);
  const next = nextStep(state);
  const phase = state.phase.replace('_', ' ');
  if (state.paused) return `${head} · ${phase}, paused`;
  if (state.attention) return `${head} · ${phase}, waiting for attention at ${state.attention.step}`;
  if (!next) return `${head} · ${phase}`;
  return `${head} · ${phase} until ${day(next.at)}`;
}
