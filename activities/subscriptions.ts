// Subscription activities (seed 004 "Subscription Issues", "Adjust Subscription"): confirm a payment, activate the
// subscription it paid for, and downgrade or cancel one after a refund.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import Stripe from 'stripe';
import { inTransaction } from '../db/pool';
import type { BillingTier } from '../domain/policy';
import type { BillingCycle, SubscriptionChange, TenantSubscription } from '../domain/refunds';
import type { PaymentGateways } from './payments';
import { tenantSubscription } from './incidents/refund';
import { interpretStripeError } from '../drivers/stripe';

export type PaymentConfirmation =
  | {
      confirmed: true;
      /** Where the confirmation came from. */
      via: 'payment_transactions' | 'invoices' | 'paystack' | 'stripe';
      processor: 'stripe' | 'paystack' | 'manual' | 'none';
      amountMinor: number | null;
      currency: string | null;
      detail: string;
      subscription: TenantSubscription | null;
    }
  | { confirmed: false; reason: string; subscription: TenantSubscription | null };

export interface ActivationRequest {
  tenantId: string;
  tier: BillingTier;
  billingCycle: BillingCycle;
  trialConversion: boolean;
  /** The processor that took the payment; a tenant without one (coming from Free) gets it. */
  processor: 'stripe' | 'paystack' | 'manual' | 'none';
}

export interface ActivatedSubscription {
  subscriptionId: string;
  previousStatus: string | null;
  tier: BillingTier;
  billingCycle: BillingCycle;
  periodStart: string;
  periodEnd: string;
}

export interface SubscriptionAdjustment {
  change: Exclude<SubscriptionChange, 'none'>;
  previousTier: BillingTier;
  tier: BillingTier;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: string;
  /** What was done, or is left to do, at the provider. */
  provider: string;
}

const STRIPE_CONFIRMED: Record<string, string> = { in_: 'paid', pi_: 'succeeded', ch_: 'succeeded' };

export function createSubscriptionActivities(deps: { pool: Pool } & PaymentGateways) {
  const { pool } = deps;

  async function askStripe(
    tenantId: string,
    reference: string,
  ): Promise<{ status: string; amountMinor: number; currency: string } | { problem: string }> {
    const stripe = deps.stripe?.sdk;
    if (!stripe) return { problem: 'Stripe is not configured here (STRIPE_SECRET_KEY)' };
    try {
      const object = reference.startsWith('in_')
        ? await stripe.invoices.retrieve(reference)
        : reference.startsWith('ch_')
          ? await stripe.charges.retrieve(reference)
          : await stripe.paymentIntents.retrieve(reference);
      const owner = object.metadata?.tenant_id;
      if (owner && owner !== tenantId) return { problem: `Stripe says ${reference} is tenant ${owner}'s` };
      const amountMinor = 'amount_paid' in object ? object.amount_paid : object.amount;
      return { status: object.status ?? 'unknown', amountMinor, currency: object.currency.toUpperCase() };
    } catch (error) {
      if (!(error instanceof Stripe.errors.StripeError)) throw error;
      const meaning = interpretStripeError(error);
      if (meaning.kind === 'retryable')
        throw ApplicationFailure.retryable(meaning.message, 'ProcessorUnavailable');
      return { problem: meaning.message };
    }
  }

  return {
    /**
     * Seed 004 "For missed webhooks": is the payment confirmed? Our payment row or paid invoice first, else the
     * provider's word (Paystack verify, Stripe retrieve); a pending row the provider confirms is marked paid.
     */
    async verifyActivationPayment(req: {
      tenantId: string;
      reference: string;
      processor?: 'stripe' | 'paystack';
    }): Promise<PaymentConfirmation> {
      const tenants = await pool.query<{ payment_processor: 'stripe' | 'paystack' | 'none' }>(
        'SELECT payment_processor FROM tenants WHERE id = $1',
        [req.tenantId],
      );
      const tenant = tenants.rows[0];
      if (!tenant) {
        return {
          confirmed: false,
          reason: `tenant ${req.tenantId} is not in the tenants table`,
          subscription: null,
        };
      }
      const subscription = await tenantSubscription(pool, req.tenantId);
      const refused = (reason: string): PaymentConfirmation => ({ confirmed: false, reason, subscription });

      const { rows: payments } = await pool.query<{
        id: string;
        tenant_id: string;
        processor: 'stripe' | 'paystack' | 'manual';
        status: string;
        amount_minor: string;
        currency: string;
      }>(
        `SELECT id, tenant_id, processor, status, amount_minor, currency FROM payment_transactions
          WHERE reference = $1 ORDER BY created_at DESC LIMIT 1`,
        [req.reference],
      );
      const payment = payments[0];
      if (payment && payment.tenant_id !== req.tenantId) {
        return refused(`payment ${req.reference} belongs to tenant ${payment.tenant_id}`);
      }
      if (payment?.status === 'success') {
        return {
          confirmed: true,
          via: 'payment_transactions',
          processor: payment.processor,
          amountMinor: Number(payment.amount_minor),
          currency: payment.currency,
          detail: `payment ${req.reference} is recorded as successful`,
          subscription,
        };
      }
      if (payment && payment.status !== 'pending') {
        return refused(
          `payment ${req.reference} is ${payment.status.replace('_', ' ')}, not a confirmed payment`,
        );
      }

      const { rows: invoices } = await pool.query<{
        processor: 'stripe' | 'paystack' | 'none';
        status: string;
        total_minor: string;
        currency: string;
      }>(
        `SELECT processor, status, total_minor, currency FROM invoices
          WHERE tenant_id = $1 AND (processor_invoice_id = $2 OR id = $2) ORDER BY created_at DESC LIMIT 1`,
        [req.tenantId, req.reference],
      );
      const invoice = invoices[0];
      if (invoice?.status === 'paid') {
        return {
          confirmed: true,
          via: 'invoices',
          processor: invoice.processor,
          amountMinor: Number(invoice.total_minor),
          currency: invoice.currency,
          detail: `invoice ${req.reference} is paid`,
          subscription,
        };
      }

      const processor = payment?.processor ?? req.processor ?? tenant.payment_processor;
      if (processor === 'paystack') {
        if (!deps.paystack)
          return refused('Paystack is not configured here, and billops has no record of the payment');
        const found = await deps.paystack.verifyTransaction(req.reference);
        if (!found) return refused(`Paystack has no transaction ${req.reference}`);
        if (found.status !== 'success')
          return refused(`Paystack reports payment ${req.reference} ${found.status}`);
        if (payment) {
          // Seed 004 "Update transaction status in database if confirmed".
          await pool.query(
            `UPDATE payment_transactions SET status = 'success', paid_at = $2, gateway_response = $3
              WHERE id = $1 AND status = 'pending'`,
            [payment.id, found.paidAt ?? new Date(), found.gatewayResponse || 'success'],
          );
        }
        return {
          confirmed: true,
          via: 'paystack',
          processor: 'paystack',
          amountMinor: found.amountMinor,
          currency: found.currency,
          detail: `Paystack verified ${req.reference} as successful`,
          subscription,
        };
      }
      if (processor === 'stripe') {
        const answer = await askStripe(req.tenantId, req.reference);
        if ('problem' in answer) return refused(answer.problem);
        const wanted = STRIPE_CONFIRMED[req.reference.slice(0, 3)] ?? 'succeeded';
        if (answer.status !== wanted)
          return refused(`Stripe reports ${req.reference} ${answer.status.replaceAll('_', ' ')}`);
        return {
          confirmed: true,
          via: 'stripe',
          processor: 'stripe',
          amountMinor: answer.amountMinor,
          currency: answer.currency,
          detail: `Stripe reports ${req.reference} ${answer.status}`,
          subscription,
        };
      }
      return refused(
        `billops has no record of payment ${req.reference} and the tenant has no payment processor to ask`,
      );
    },

    /**
     * Seed 004 "For activation failures" / "For trial conversion": the subscription active on the paid tier and cycle
     * from today (UTC) for one month or one year, the trial cleared, and the tenant's tier to match.
     */
    async activateSubscription(req: ActivationRequest): Promise<ActivatedSubscription> {
      return inTransaction(pool, async (client) => {
        const period = await client.query<{ start: Date; end: Date }>(
          `SELECT d AT TIME ZONE 'UTC' AS start,
                  (d + CASE WHEN $1 = 'annual' THEN interval '1 year' ELSE interval '1 month' END) AT TIME ZONE 'UTC' AS end
             FROM (SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AS d) today`,
          [req.billingCycle],
        );
        const { start, end } = period.rows[0]!;
        const live = await client.query<{ id: string; status: string }>(
          `SELECT id, status FROM subscriptions WHERE tenant_id = $1 AND status <> 'canceled' FOR UPDATE`,
          [req.tenantId],
        );
        const current = live.rows[0];
        const processor = req.processor === 'manual' ? 'none' : req.processor;
        let subscriptionId: string;
        if (current) {
          await client.query(
            `UPDATE subscriptions
                SET status = 'active', tier = $2, billing_cycle = $3, current_period_start = $4, current_period_end = $5,
                    trial_ends_at = CASE WHEN $6 OR status = 'trialing' THEN NULL ELSE trial_ends_at END,
                    processor = CASE WHEN processor = 'none' THEN $7 ELSE processor END
              WHERE id = $1`,
            [current.id, req.tier, req.billingCycle, start, end, req.trialConversion, processor],
          );
          subscriptionId = current.id;
        } else {
          const created = await client.query<{ id: string }>(
            `INSERT INTO subscriptions (tenant_id, tier, status, billing_cycle, current_period_start, current_period_end,
                                        processor)
             VALUES ($1, $2, 'active', $3, $4, $5, $6) RETURNING id`,
            [req.tenantId, req.tier, req.billingCycle, start, end, processor],
          );
          subscriptionId = created.rows[0]!.id;
        }
        await client.query(
          `UPDATE tenants SET tier = $2,
                  payment_processor = CASE WHEN payment_processor = 'none' THEN $3 ELSE payment_processor END
            WHERE id = $1`,
          [req.tenantId, req.tier, processor],
        );
        return {
          subscriptionId,
          previousStatus: current?.status ?? null,
          tier: req.tier,
          billingCycle: req.billingCycle,
          periodStart: start.toISOString(),
          periodEnd: end.toISOString(),
        };
      });
    },

    /** Seed 004 "Adjust Subscription" after a refund: a lower tier now, or cancel at the end of the period. */
    async adjustSubscriptionAfterRefund(req: {
      idempotencyKey: string;
      workflowId: string;
      tenantId: string;
      change: Exclude<SubscriptionChange, 'none'>;
      downgradeTo?: BillingTier;
      reason: string;
    }): Promise<SubscriptionAdjustment> {
      const { row, tier } = await inTransaction(pool, async (client) => {
        const { rows } = await client.query<{
          id: string;
          tier: BillingTier;
          processor: string;
          stripe_subscription_id: string | null;
          paystack_subscription_code: string | null;
          current_period_end: Date;
        }>(
          `SELECT id, tier, processor, stripe_subscription_id, paystack_subscription_code, current_period_end
             FROM subscriptions WHERE tenant_id = $1 AND status <> 'canceled' FOR UPDATE`,
          [req.tenantId],
        );
        if (!rows[0]) {
          throw ApplicationFailure.nonRetryable(
            `tenant ${req.tenantId} has no live subscription`,
            'SubscriptionUnknown',
          );
        }
        const row = rows[0];
        const tier = req.change === 'downgrade' && req.downgradeTo ? req.downgradeTo : row.tier;
        if (req.change === 'downgrade') {
          await client.query('UPDATE subscriptions SET tier = $2 WHERE id = $1', [row.id, tier]);
          // The Free tier has no payment processing (tenants_free_tier_has_no_processor).
          await client.query(
            `UPDATE tenants SET tier = $2,
                    payment_processor = CASE WHEN $2 = 'free' THEN 'none' ELSE payment_processor END
              WHERE id = $1`,
            [req.tenantId, tier],
          );
        } else {
          await client.query(
            'UPDATE subscriptions SET cancel_at_period_end = true, cancellation_reason = $2 WHERE id = $1',
            [row.id, req.reason],
          );
        }
        return { row, tier };
      });

      let provider = 'no provider subscription';
      if (row.stripe_subscription_id && req.change === 'cancel_at_period_end') {
        if (!deps.stripe) {
          provider = `Stripe is not configured here: set ${row.stripe_subscription_id} to cancel at period end by hand`;
        } else {
          try {
            await deps.stripe.sdk.subscriptions.update(
              row.stripe_subscription_id,
              { cancel_at_period_end: true, metadata: { billops_workflow_id: req.workflowId } },
              { idempotencyKey: req.idempotencyKey },
            );
            provider = `Stripe subscription ${row.stripe_subscription_id} set to cancel at period end`;
          } catch (error) {
            if (!(error instanceof Stripe.errors.StripeError)) throw error;
            const meaning = interpretStripeError(error);
            if (meaning.kind === 'retryable') {
              throw ApplicationFailure.retryable(meaning.message, 'ProcessorUnavailable');
            }
            provider = `Stripe refused to cancel ${row.stripe_subscription_id} at period end: ${meaning.message}`;
          }
        }
      } else if (row.stripe_subscription_id) {
        provider = `change the plan of Stripe subscription ${row.stripe_subscription_id} to ${tier} by hand`;
      } else if (row.paystack_subscription_code) {
        // Paystack disables a subscription only with the customer's email token, which billops does not hold.
        provider = `${req.change === 'downgrade' ? `move` : 'disable'} Paystack subscription ${row.paystack_subscription_code} in the dashboard`;
      }
      return {
        change: req.change,
        previousTier: row.tier,
        tier,
        cancelAtPeriodEnd: req.change === 'cancel_at_period_end',
        currentPeriodEnd: row.current_period_end.toISOString(),
        provider,
      };
    },
  };
}
export type SubscriptionActivities = ReturnType<typeof createSubscriptionActivities>;
