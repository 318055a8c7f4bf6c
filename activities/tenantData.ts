// Tenant data activities: the runbook's permanent deletion after the 90-day data retention, guarded by what the
// database says now, complete (provider charges stopped, personal data scrubbed), keeping what accounting must.
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import { releaseCommand } from '../db/legalHolds';
import { inTransaction } from '../db/pool';
import {
  lockDeletionFacts,
  scrubInvoiceLinks,
  scrubTenantRow,
  scrubWebhookEvents,
  tenantProcessorIds,
  type DeletionFacts,
} from '../db/tenantDeletion';
import { deactivatePaystackAuthorization, type PaystackGateway } from '../drivers/paystack';
import { stopStripeCustomerCharges, type StoppedStripeCharges, type StripeGateway } from '../drivers/stripe';
import { KEPT_AFTER_DELETION, type DeletedTenantData } from '../domain/tenantDeletion';
import { writeServiceControls } from './serviceControls';

// Workflows import these from domain/tenantDeletion (this file is not in the workflow bundle).
export { describeDeletion, KEPT_AFTER_DELETION, type DeletedTenantData } from '../domain/tenantDeletion';

export interface DeleteTenantDataRequest {
  tenantId: string;
  workflowId: string;
  operator: string;
  reason: string;
  /** The policy's deletionDaysAfterSuspension: the tenant must have been suspended this long, by the database clock. */
  requiredSuspendedDays: number;
  /** The operator who approved the deletion, when the policy asks for an approval; recorded in the reason. */
  approvedBy?: string;
}

export interface StopProviderChargesRequest {
  tenantId: string;
  workflowId: string;
  /** Workflow id + run + step: every provider call's idempotency key derives from it. */
  idempotencyKey: string;
  /** When given, the tenant must also have been suspended this long (the deletion guard's day count). */
  requiredSuspendedDays?: number;
}

export interface StoppedProviderCharges {
  stripe?: StoppedStripeCharges;
  paystack?: { authorizationDeactivated: boolean };
  /** One line for the timeline: what was stopped, or why there was nothing to do. */
  summary: string;
}

/** Usage and personal data deleted with the tenant. */
const DELETED_TABLES = [
  'usage_events',
  'usage_rollups',
  'usage_caps',
  'dashboard_notifications',
  // Addresses and message bodies sent to the tenant.
  'email_outbox',
] as const;

/** Refused with a reason a person can act on; the workflow waits for attention on this type. */
function refused(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'DeletionRefused');
}

function tenantUnknown(tenantId: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`tenant ${tenantId} is not in the tenants table`, 'TenantUnknown');
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The deletion guard, on what the database says now: suspended by dunning for the policy's days, still owing, no
 * legal hold. Throws DeletionRefused naming what is wrong and what to do.
 */
function checkDeletionAllowed(
  tenantId: string,
  facts: DeletionFacts,
  requiredSuspendedDays: number | undefined,
): void {
  if (facts.suspendedSince === null) {
    throw refused(
      `tenant ${tenantId} is not suspended now (no active dunning suspension hold), so its data is not deleted: ` +
        `check the lifecycle (billops status dunning-${tenantId}) and the tenant's service controls`,
    );
  }
  if (requiredSuspendedDays !== undefined) {
    const since = facts.suspendedSince.getTime();
    const now = lifecycleClock(facts.now);
    const suspendedDays = Math.floor((now - since) / DAY_MS);
    if (now - since < requiredSuspendedDays * DAY_MS) {
      throw refused(
        `tenant ${tenantId} has been suspended since ${facts.suspendedSince.toISOString()} (${suspendedDays} days); ` +
          `its data may be deleted only after ${requiredSuspendedDays} days, from ` +
          `${new Date(since + requiredSuspendedDays * DAY_MS).toISOString()}`,
      );
    }
  }
  if (facts.owedInvoices === 0) {
    throw refused(
      `tenant ${tenantId} has no open or uncollectible invoice with an amount due: nothing is owed: the lifecycle ` +
        'should recover, not delete',
    );
  }
  if (facts.legalHold) {
    const hold = facts.legalHold;
    throw refused(
      `tenant ${tenantId} is under a legal hold placed by ${hold.operator} at ${hold.placedAt.toISOString()} ` +
        `("${hold.reason}"): its data must be kept; once the hold may end, ${releaseCommand(tenantId)}`,
    );
  }
}

/**
 * Now, on the clock the lifecycle's timers run on: the Temporal server's time this attempt was scheduled, when run as an
 * activity (in production it agrees with the database's; on the time-skipping test server it is the skipped-to time),
 * else the database's. Never earlier than the database's clock.
 */
function lifecycleClock(databaseNow: Date): number {
  let scheduled = 0;
  try {
    scheduled = Context.current().info.currentAttemptScheduledTimestampMs;
  } catch {
    // Called outside an activity (a script, a test): the database's clock alone.
  }
  return Math.max(scheduled, databaseNow.getTime());
}

/** requiredSuspendedDays as the policy gives it: a whole, non-negative number of days. */
function validDays(days: unknown, tenantId: string): number {
  if (typeof days !== 'number' || !Number.isFinite(days) || days < 0) {
    throw refused(
      `the deletion of tenant ${tenantId} names no valid requiredSuspendedDays (got ${JSON.stringify(days)}): ` +
        "pass the policy's deletionDaysAfterSuspension; nothing was deleted",
    );
  }
  return days;
}

export function createTenantDataActivities(deps: {
  pool: Pool;
  stripe?: StripeGateway;
  paystack?: PaystackGateway;
}) {
  async function deleteIn(client: PoolClient, req: DeleteTenantDataRequest): Promise<DeletedTenantData> {
    // The row lock makes concurrent usage inserts (their foreign key check) and legal holds wait until this is done.
    const facts = await lockDeletionFacts(client, req.tenantId);
    if (!facts) throw tenantUnknown(req.tenantId);
    // Already deleted: the guard held then; running the statements again finds nothing (or what arrived since).
    if (facts.deletedAt === null) {
      checkDeletionAllowed(req.tenantId, facts, validDays(req.requiredSuspendedDays, req.tenantId));
    }
    const deleted: Record<string, number> = {};
    for (const table of DELETED_TABLES) {
      const result = await client.query(`DELETE FROM ${table} WHERE tenant_id = $1`, [req.tenantId]);
      deleted[table] = result.rowCount ?? 0;
    }
    const scrubbed: Record<string, number> = {
      webhook_events: await scrubWebhookEvents(client, req.tenantId),
      invoices: await scrubInvoiceLinks(client, req.tenantId),
      tenants: await scrubTenantRow(client, req.tenantId),
    };
    await writeServiceControls(client, {
      tenantId: req.tenantId,
      workflowId: req.workflowId,
      operator: req.operator,
      reason: req.approvedBy ? `${req.reason} (approved by ${req.approvedBy})` : req.reason,
      suspended: true,
    });
    return { deleted, scrubbed, kept: [...KEPT_AFTER_DELETION] };
  }

  return {
    /**
     * Re-checks the guard, then deletes usage and personal data, scrubs what is kept and keeps the account suspended,
     * in one transaction. Refused (DeletionRefused) before anything is deleted when the tenant is not suspended, not
     * for long enough, owes nothing or is on legal hold.
     */
    async deleteTenantData(req: DeleteTenantDataRequest): Promise<DeletedTenantData> {
      return inTransaction(deps.pool, (client) => deleteIn(client, req));
    },

    /**
     * Before the deletion: nothing at the processors may charge the tenant again. Stripe: its subscriptions cancelled
     * and payment methods detached; Paystack: its saved card deactivated. Refused like the deletion when the guard
     * does not hold (nothing is touched at the processors then). Idempotent: a second run finds nothing left.
     */
    async stopProviderCharges(req: StopProviderChargesRequest): Promise<StoppedProviderCharges> {
      const ids = await inTransaction(deps.pool, async (client) => {
        const facts = await lockDeletionFacts(client, req.tenantId);
        if (!facts) throw tenantUnknown(req.tenantId);
        if (facts.deletedAt === null) {
          const days =
            req.requiredSuspendedDays === undefined
              ? undefined
              : validDays(req.requiredSuspendedDays, req.tenantId);
          checkDeletionAllowed(req.tenantId, facts, days);
        }
        return tenantProcessorIds(client, req.tenantId);
      });
      if (!ids) throw tenantUnknown(req.tenantId);

      const result: StoppedProviderCharges = { summary: '' };
      const said: string[] = [];
      if (ids.stripeCustomerId) {
        if (!deps.stripe) throw notConfigured('Stripe', 'STRIPE_SECRET_KEY', req.tenantId);
        result.stripe = await stopStripeCustomerCharges(
          deps.stripe,
          ids.stripeCustomerId,
          req.idempotencyKey,
        );
        said.push(
          `Stripe: ${result.stripe.subscriptionsCancelled.length} subscription(s) cancelled, ` +
            `${result.stripe.paymentMethodsDetached.length} payment method(s) detached`,
        );
      }
      if (ids.paystackAuthorizationCode) {
        if (!deps.paystack) throw notConfigured('Paystack', 'PAYSTACK_SECRET_KEY', req.tenantId);
        const outcome = await deactivatePaystackAuthorization(deps.paystack, ids.paystackAuthorizationCode);
        result.paystack = { authorizationDeactivated: true };
        said.push(
          outcome === 'deactivated'
            ? 'Paystack: saved card deactivated'
            : 'Paystack: saved card already inactive',
        );
      }
      result.summary = said.length
        ? said.join('; ')
        : `tenant ${req.tenantId} has no Stripe customer and no saved Paystack card: nothing to stop`;
      return result;
    },
  };
}

function notConfigured(processor: string, variable: string, tenantId: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `tenant ${tenantId} is billed through ${processor}, but this worker has no ${processor} credentials: set ` +
      `${variable} so its charges can be stopped before the deletion`,
    'ProcessorNotConfigured',
  );
}

export type TenantDataActivities = ReturnType<typeof createTenantDataActivities>;
