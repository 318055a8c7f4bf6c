// Acting on a stored payment event: signal-with-start the tenant's dunning, signal a payment, or keep it for an incident.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { IncidentInput } from '../domain/incident';
import { formatMinorUnits } from '../domain/money';
import type { BillingTier, Policy } from '../domain/policy';
import { refundInEvent, type RefundParams } from '../domain/refunds';
import { activationInEvent, type ActivationParams } from '../domain/subscriptionActivation';
import { dunningWorkflowId, signalPaymentSucceeded, startOrJoinDunning } from '../temporal/dunning';
import { startIncident } from '../temporal/incidents';
import {
  findOrRecordFailedInvoice,
  ownedBy,
  recordInvoicePaid,
  type InvoiceRow,
  type WebhookTenant,
} from '../db/billingRecords';
import { describeApplication } from '../db/payments';
import { WAITING_FOR_TENANT, type FinalStatus } from '../db/webhookEvents';
import type { TenantReference, VerifiedEvent, WebhookIntent, WebhookProvider } from '../domain/paymentEvents';

export interface ActionContext {
  pool: Pool;
  client: Client;
  taskQueue: string;
  policy: Policy;
  billingPortalUrl: string;
  /** A Temporal call that takes longer fails the delivery (500) so the provider retries, instead of timing it out. */
  temporalTimeoutMs: number;
}

export interface ActionOutcome {
  status: FinalStatus;
  tenantId?: string;
  /** Why nothing was done, for an ignored event. */
  note?: string;
  workflowId?: string;
  tenantUnknown?: boolean;
}

/**
 * `tenant` is the tenant the event names, as claimEvent resolved it; undefined when none of ours matches. `invoice`,
 * for a failed payment, is our invoice for it when the claim already found or recorded it.
 */
export async function actOn(
  ctx: ActionContext,
  event: VerifiedEvent,
  tenant: WebhookTenant | undefined,
  invoice?: InvoiceRow,
): Promise<ActionOutcome> {
  const intent: WebhookIntent = event.intent;
  switch (intent.kind) {
    case 'ignore':
      return { status: 'ignored', note: intent.reason };
    case 'storeForIncident': {
      // Kept for the incident workflows; a refund or an activation billops has not recorded yet opens its incident.
      const stored: ActionOutcome = { status: 'stored_for_incident', tenantId: tenant?.id };
      if (!tenant || intent.category === 'dispute') return stored;
      const { rows } = await ctx.pool.query<{ payload: unknown }>(
        'SELECT payload FROM webhook_events WHERE provider = $1 AND event_key = $2',
        [event.provider, event.key],
      );
      let incident: IncidentInput<RefundParams | ActivationParams>;
      const opened: Pick<IncidentInput, 'source' | 'openedBy' | 'tenantIds' | 'policy'> = {
        source: 'webhook',
        openedBy: 'billops',
        tenantIds: [tenant.id],
        policy: ctx.policy,
      };
      if (intent.category === 'refund') {
        const refund = refundInEvent(event.provider, event.type, rows[0]?.payload);
        if ('ignored' in refund) return { ...stored, note: refund.ignored };
        // billops' own refund coming back is recorded by the incident that asked for it.
        const recorded = await ctx.pool.query(
          'SELECT 1 FROM payment_transactions WHERE processor = $1 AND refund_reference = $2',
          [event.provider, refund.refundReference],
        );
        if (refund.requestedByBillops || recorded.rowCount) {
          return { ...stored, note: `refund ${refund.refundReference} is billops' own or already recorded` };
        }
        const paid = refund.paymentReferences[0]!;
        incident = {
          ...opened,
          kind: 'refund',
          key: `${event.provider}-${refund.refundReference}`,
          summary: `${event.provider} refunded ${formatMinorUnits(refund.amountMinor, refund.currency)} of ${paid} (${tenant.id})`,
          params: {
            tenantId: tenant.id,
            reference: paid,
            reason: `refunded at ${event.provider} (${event.type} ${event.key})`,
            subscriptionChange: 'none',
            reported: { ...refund, eventKey: event.key },
          },
        };
      } else {
        const activation = activationInEvent(event.provider, event.type, rows[0]?.payload);
        if ('ignored' in activation) return { ...stored, note: activation.ignored };
        const active = await ctx.pool.query(
          `SELECT 1 FROM subscriptions WHERE tenant_id = $1 AND status = 'active' AND tier = $2 AND billing_cycle = $3
              AND current_period_end > now()`,
          [tenant.id, activation.tier, activation.billingCycle],
        );
        if (active.rowCount) {
          return { ...stored, note: `the ${activation.tier} subscription is already active` };
        }
        incident = {
          ...opened,
          kind: 'subscription_activation_failure',
          key: `${tenant.id}-${activation.reference}`,
          summary: `${tenant.id} paid for ${activation.tier} (${activation.reference}) but the subscription is not active`,
          params: { tenantId: tenant.id, ...activation },
        };
      }
      const handle = await ctx.client.withDeadline(Date.now() + ctx.temporalTimeoutMs, () =>
        startIncident(ctx.client, ctx.taskQueue, incident),
      );
      return { status: 'processed', tenantId: tenant.id, workflowId: handle.workflowId };
    }
    case 'paymentFailed': {
      if (!tenant) return waitForTenant(event.provider, intent.tenant);
      const refusal = refusalFor(ctx.policy, tenant);
      if (refusal) return refusal;
      const ours = invoice
        ? ownedBy(invoice, tenant, event.provider)
        : await findOrRecordFailedInvoice(ctx.pool, event.provider, tenant, intent.invoice);
      if (ours.status === 'paid' || ours.status === 'void') {
        // Providers do not promise order: a failure reported after the invoice was settled starts nothing.
        return {
          status: 'ignored',
          tenantId: tenant.id,
          note: `invoice ${ours.id} is already ${ours.status}`,
        };
      }
      const handle = await ctx.client.withDeadline(Date.now() + ctx.temporalTimeoutMs, () =>
        startOrJoinDunning(ctx.client, ctx.taskQueue, {
          tenantId: tenant.id,
          tenantName: tenant.name,
          tier: tenant.tier,
          processor: tenant.processor,
          invoice: {
            invoiceId: ours.id,
            amountMinor: intent.invoice.amountMinor,
            currency: intent.invoice.currency,
          },
          policy: ctx.policy,
          billingPortalUrl: ctx.billingPortalUrl,
        }),
      );
      return { status: 'processed', tenantId: tenant.id, workflowId: handle.workflowId };
    }
    case 'paymentSucceeded': {
      if (!tenant) return unknownTenant(event.provider, intent.tenant);
      const application = await recordInvoicePaid(ctx.pool, event.provider, tenant, intent.invoice);
      if (!application) {
        return { status: 'ignored', tenantId: tenant.id, note: 'no invoice of ours matches this payment' };
      }
      // A partial payment, or one in another currency, is recorded and recovers nothing.
      if (application.applied !== 'paid') {
        return { status: 'processed', tenantId: tenant.id, note: describeApplication(application) };
      }
      const invoiceId = application.invoiceId;
      const workflowId = dunningWorkflowId(tenant.id);
      try {
        await ctx.client.withDeadline(Date.now() + ctx.temporalTimeoutMs, () =>
          signalPaymentSucceeded(ctx.client, tenant.id, { invoiceId, reference: intent.invoice.reference }),
        );
      } catch (err) {
        // No lifecycle running for the tenant: recording the invoice as paid was all there was to do.
        if (err instanceof WorkflowNotFoundError) return { status: 'processed', tenantId: tenant.id };
        throw err;
      }
      return { status: 'processed', tenantId: tenant.id, workflowId };
    }
  }
}

/** The tiers whose failed payments are dunned: those the policy gives a grace period. */
export function dunnedTiers(policy: Policy): BillingTier[] {
  return (Object.keys(policy.tiers) as BillingTier[]).filter((tier) => policy.tiers[tier].graceDays !== null);
}

/** A tenant that exists but must not be dunned: deleted, or on a tier without payment processing. */
function refusalFor(policy: Policy, tenant: WebhookTenant): ActionOutcome | undefined {
  if (tenant.deleted)
    return { status: 'ignored', tenantId: tenant.id, note: `tenant ${tenant.id} was deleted` };
  if (policy.tiers[tenant.tier].graceDays === null) {
    return {
      status: 'ignored',
      tenantId: tenant.id,
      note: `tenant ${tenant.id} is on the ${tenant.tier} tier, which has no payment processing: nothing to dun`,
    };
  }
  return undefined;
}

function unknownTenant(provider: WebhookProvider, ref: TenantReference): ActionOutcome {
  const named = [
    ref.metadataTenantId && `metadata.tenant_id ${ref.metadataTenantId}`,
    ref.customerId && `${provider} customer ${ref.customerId}`,
  ].filter(Boolean);
  return {
    status: 'ignored',
    tenantUnknown: true,
    note: `unknown tenant: ${named.length > 0 ? named.join(', ') : 'the event names no tenant'} matches no tenant`,
  };
}

/**
 * A failed payment for a tenant billops does not have yet (a signup still being provisioned, a mapping not written
 * yet): nothing is started now, and the row is kept 'failed' with this note (finishEvents) so `billops webhooks retry`
 * or the provider's retry acts on it once the tenant exists. An event that names no tenant at all cannot wait for one.
 */
function waitForTenant(provider: WebhookProvider, ref: TenantReference): ActionOutcome {
  const named = [
    ref.metadataTenantId && `metadata.tenant_id ${ref.metadataTenantId}`,
    ref.customerId && `${provider} customer ${ref.customerId}`,
  ].filter(Boolean);
  if (named.length === 0) return unknownTenant(provider, ref);
  return {
    status: 'ignored',
    tenantUnknown: true,
    note:
      `${WAITING_FOR_TENANT} ${named.join(', ')}: no tenant matches yet; kept as failed, and ` +
      '`billops webhooks retry` acts on it once the tenant exists',
  };
}
