// The webhook-failure incident's activities (seed 004 "Webhook Failures"): rejected signatures counted from
// webhook_events, failed events replayed from their stored raw bodies, and missed events found at the provider
// (Stripe's event list, Paystack's transaction verify, in paymentEvents/reconcile.ts) applied once.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { ActionContext } from '../../paymentEvents/act';
import type { WebhookProvider } from '../../domain/paymentEvents';
import {
  emptyReconcileResult,
  paymentIn,
  reconcilePaystackTransactions,
  reconcileStripeEvents,
  type HandledEvent,
  type ReconcileResult,
} from '../../paymentEvents/reconcile';
import { isOk, retryFailedWebhooks } from '../../paymentEvents/replay';
import type { Policy } from '../../domain/policy';
import type { PaymentGateways } from '../payments';

export {
  paymentIn,
  STRIPE_EVENT_TYPES,
  type ConfirmedPayment,
  type HandledEvent,
  type ReconcileResult,
} from '../../paymentEvents/reconcile';
import { TEMPORAL_TIMEOUT_MS } from '../../paymentEvents/process';

export interface WebhookRecoveryDependencies extends PaymentGateways {
  pool: Pool;
  /** Acting on an event signals or starts dunning; without a client those steps are refused (TemporalClientMissing). */
  temporalClient?: Client;
  billingPortalUrl: string;
}

export interface SignatureFailures {
  /** The window's start on the database's clock (which received_at is written with): every later step looks from here. */
  since: string;
  /** Rejected deliveries, a re-sent identical body counted again. */
  total: number;
  byProvider: Record<WebhookProvider, number>;
  firstAt: string | null;
  lastAt: string | null;
  /** What the rejected bodies claimed to be (never trusted): to look them up on the provider's dashboard. */
  claimedEvents: string[];
}

export interface ReplayRound {
  ok: number;
  failing: number;
  expired: number;
  skipped: number;
  /** Events finished in this round (processed, ignored or stored for their incident). */
  applied: HandledEvent[];
  /** Still failing: the next round takes them again. */
  failingEvents: HandledEvent[];
  /** Beyond the retry window: left for a person. */
  expiredEvents: HandledEvent[];
}

/** Results carry at most this many events: the counts stay exact, the history stays small. */
const LISTED = 50;

export function createWebhookRecoveryActivities(deps: WebhookRecoveryDependencies) {
  const { pool } = deps;

  /** What the ingress needs to act on an event, in this activity's task queue (the worker's own). */
  function actionContext(policy: Policy): ActionContext {
    if (!deps.temporalClient) {
      throw ApplicationFailure.nonRetryable(
        'this worker has no Temporal client, so it cannot signal or start dunning for an event',
        'TemporalClientMissing',
      );
    }
    return {
      pool,
      client: deps.temporalClient,
      taskQueue: Context.current().info.taskQueue,
      policy,
      billingPortalUrl: deps.billingPortalUrl,
      temporalTimeoutMs: TEMPORAL_TIMEOUT_MS,
    };
  }

  /** The payments replayed events confirmed, read from their stored payloads. */
  async function withPayments(events: HandledEvent[]): Promise<void> {
    const processed = events.filter((e) => e.outcome === 'processed');
    for (const provider of ['stripe', 'paystack'] as const) {
      const keys = processed.filter((e) => e.provider === provider).map((e) => e.eventKey);
      if (keys.length === 0) continue;
      const { rows } = await pool.query<{ event_key: string; event_type: string; payload: unknown }>(
        'SELECT event_key, event_type, payload FROM webhook_events WHERE provider = $1 AND event_key = ANY($2::text[])',
        [provider, keys],
      );
      for (const row of rows) {
        const payment = paymentIn(provider, row.event_type, row.payload);
        const event = processed.find((e) => e.provider === provider && e.eventKey === row.event_key);
        if (payment && event) event.payment = payment;
      }
    }
  }

  return {
    /** Deliveries whose signature did not verify in the last `lookbackHours` (the ingress keeps a digest, never the body). */
    async countSignatureFailures(req: { lookbackHours: number }): Promise<SignatureFailures> {
      const window = await pool.query<{ since: Date }>('SELECT now() - make_interval(hours => $1) AS since', [
        req.lookbackHours,
      ]);
      const since = window.rows[0]!.since;
      const { rows } = await pool.query<{
        provider: WebhookProvider;
        attempts: number;
        received_at: Date;
        claimed: string | null;
      }>(
        `SELECT provider, attempts, received_at, payload->>'claimed_event' AS claimed
           FROM webhook_events
          WHERE NOT signature_valid AND status = 'rejected' AND received_at >= $1
          ORDER BY received_at`,
        [since],
      );
      const byProvider: Record<WebhookProvider, number> = { stripe: 0, paystack: 0 };
      for (const row of rows) byProvider[row.provider] += Number(row.attempts);
      return {
        since: since.toISOString(),
        total: byProvider.stripe + byProvider.paystack,
        byProvider,
        firstAt: rows[0]?.received_at.toISOString() ?? null,
        lastAt: rows.at(-1)?.received_at.toISOString() ?? null,
        claimedEvents: [...new Set(rows.flatMap((r) => (r.claimed ? [r.claimed] : [])))].slice(0, LISTED),
      };
    },

    /** Seed 004 "For processing errors": every stored event received since `since` that failed, acted on again once. */
    async replayFailedWebhooks(req: { since: string; policy: Policy }): Promise<ReplayRound> {
      const ctx = actionContext(req.policy);
      // The runbook's `--hours N`, counted on the database's clock back to the incident's window.
      const elapsed = await pool.query<{ hours: number }>(
        'SELECT ceil(extract(epoch FROM now() - $1::timestamptz) / 3600)::int AS hours',
        [req.since],
      );
      const hours = Math.max(1, elapsed.rows[0]?.hours ?? 1);
      const report = await retryFailedWebhooks(ctx, { hours });
      const handled = report.events.map(
        (e): HandledEvent => ({
          provider: e.provider,
          eventKey: e.eventKey,
          eventType: e.eventType,
          outcome: e.outcome,
          ...(e.tenantId ? { tenantId: e.tenantId } : {}),
          ...(e.workflowId ? { workflowId: e.workflowId } : {}),
          ...(e.reason ? { reason: e.reason } : {}),
          ...(e.attempts ? { attempts: e.attempts } : {}),
        }),
      );
      const applied = handled.filter((e) => e.outcome !== 'duplicate' && isOk(e.outcome));
      await withPayments(applied);
      return {
        ...report.totals,
        applied: applied.slice(0, LISTED),
        failingEvents: handled.filter((e) => e.outcome === 'failed').slice(0, LISTED),
        expiredEvents: handled.filter((e) => e.outcome === 'expired').slice(0, LISTED),
      };
    },

    /** Seed 004 "For missed webhooks", Stripe: events since `since` our endpoint never stored, applied once now. */
    async reconcileStripeEvents(req: { since: string; policy: Policy }): Promise<ReconcileResult> {
      if (!deps.stripe) return emptyReconcileResult('stripe', false);
      return reconcileStripeEvents(actionContext(req.policy), deps.stripe, req.since);
    },

    /**
     * Seed 004 "For missed webhooks", Paystack: our pending transactions since `since` verified one by one, and the
     * successes Paystack lists for the window, each missed success applied once under its delivery's key.
     */
    async reconcilePaystackTransactions(req: { since: string; policy: Policy }): Promise<ReconcileResult> {
      if (!deps.paystack) return emptyReconcileResult('paystack', false);
      return reconcilePaystackTransactions(actionContext(req.policy), deps.paystack, req.since);
    },
  };
}

export type WebhookRecoveryActivities = ReturnType<typeof createWebhookRecoveryActivities>;
