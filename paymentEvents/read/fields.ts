// Small readers shared by the Stripe and Paystack event parsers: tenant and invoice ids in metadata, event categories, zod messages.
import { z } from 'zod';
import type { WebhookProvider } from '../../domain/paymentEvents';
import { TENANT_ID_FORMAT } from '../../domain/vocabulary';

/** Longest event key kept: well inside what the unique index on (provider, event_key) takes. */
export const MAX_EVENT_KEY_LENGTH = 255;

/** An event id or name that can be part of a row's key: not blank, not longer than MAX_EVENT_KEY_LENGTH. */
export const eventKeyText = z
  .string()
  .max(MAX_EVENT_KEY_LENGTH)
  .refine((value) => value.trim() !== '', 'must not be blank');

/** metadata.tenant_id when it has the shape of a tenant id; anything else names no tenant. */
export function pickTenantId(metadata: Record<string, unknown> | null | undefined): string | undefined {
  const value = metadata?.tenant_id;
  return typeof value === 'string' && TENANT_ID_FORMAT.test(value.trim()) ? value.trim() : undefined;
}

/** metadata.invoice_id: billops' own charges carry our invoice id there (activities/payments). */
export function invoiceIdIn(metadata: Record<string, unknown> | null | undefined): string | undefined {
  const value = metadata?.invoice_id;
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** Events kept for the refund, dispute and subscription-activation incident workflows. */
export function incidentCategory(
  provider: WebhookProvider,
  type: string,
): 'refund' | 'dispute' | 'subscription' | undefined {
  if (type.startsWith('charge.dispute.')) return 'dispute';
  if (type.startsWith('refund.')) return 'refund';
  if (provider === 'stripe') {
    if (type === 'charge.refunded' || type.startsWith('charge.refund.')) return 'refund';
    if (type.startsWith('customer.subscription.')) return 'subscription';
  } else if (type.startsWith('subscription.')) {
    return 'subscription';
  }
  return undefined;
}

export const seconds = (epochSeconds: number) => new Date(epochSeconds * 1000);

/** "data.object.amount_due: Required; ..." — where the body falls short, for the 400 answer. */
export function describeIssues(error: z.ZodError, prefix?: string): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}
