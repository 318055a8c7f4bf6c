// Acting on a stored payment event: signal-with-start the tenant's dunning, signal a payment, or keep it for an incident.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Pool } from 'pg';
import type { Policy } from '../../../domain/policy';
import { dunningWorkflowId, startOrJoinDunning } from '../../dunning';
import { paymentSucceededSignal } from '../../../workflows/definitions';
import {
  findOrRecordFailedInvoice,
  recordInvoicePaid,
  resolveTenant,
  type WebhookTenant,
} from './billingRecords';
import type { FinalStatus } from './eventStore';
import type { TenantReference, VerifiedEvent, WebhookIntent, WebhookProvider } from './intents';

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

export async function actOn(ctx: ActionContext, event: VerifiedEvent): Promise<ActionOutcome> {
  const intent: WebhookIntent = event.intent;
  switch (intent.kind) {
    case 'ignore':
      return { status: 'ignored', note: intent.reason };
    case 'storeForIncident': {
      // The refund, dispute and subscription incident workflows will read these rows; the tenant helps them now.
      const tenant = await resolveTenant(ctx.pool, event.provider, intent.tenant);
      return { status: 'stored_for_incident', tenantId: tenant?.id };
    }
    case 'paymentFailed': {
      const tenant = await resolveTenant(ctx.pool, event.provider, intent.tenant);
      if (!tenant) return unknownTenant(event.provider, intent.tenant);
      const refusal = refusalFor(ctx.policy, tenant);
      if (refusal) return refusal;
      const invoice = await findOrRecordFailedInvoice(ctx.pool, event.provider, tenant, intent.invoice);
      if (invoice.status === 'paid' || invoice.status === 'void') {
        // Providers do not promise order: a failure reported after the invoice was settled starts nothing.
        return {
          status: 'ignored',
          tenantId: tenant.id,
          note: `invoice ${invoice.id} is already ${invoice.status}`,
        };
      }
      const handle = await ctx.client.withDeadline(Date.now() + ctx.temporalTimeoutMs, () =>
        startOrJoinDunning(ctx.client, ctx.taskQueue, {
          tenantId: tenant.id,
          tenantName: tenant.name,
          tier: tenant.tier,
          processor: tenant.processor,
          invoice: {
            invoiceId: invoice.id,
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
      const tenant = await resolveTenant(ctx.pool, event.provider, intent.tenant);
      if (!tenant) return unknownTenant(event.provider, intent.tenant);
      const invoiceId = await recordInvoicePaid(ctx.pool, event.provider, tenant, intent.invoice);
      if (!invoiceId) {
        return { status: 'ignored', tenantId: tenant.id, note: 'no invoice of ours matches this payment' };
      }
      const workflowId = dunningWorkflowId(tenant.id);
      try {
        await ctx.client.withDeadline(Date.now() + ctx.temporalTimeoutMs, () =>
          ctx.client.workflow
            .getHandle(workflowId)
            .signal(paymentSucceededSignal, { invoiceId, reference: intent.invoice.reference }),
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
