// What the deletion of a tenant's data reads and scrubs: the facts its guard checks (suspension, debt, legal hold) and
// the personal data left in records kept for accounting (webhook payloads, payment links).
import type { ClientBase } from 'pg';
import { activeLegalHold, type LegalHold } from './legalHolds';

type Queryable = Pick<ClientBase, 'query'>;

export interface DeletionFacts {
  /** Set when the tenant's data was already deleted. */
  deletedAt: Date | null;
  /** The database clock, so the days are counted on one clock whatever the worker's. */
  now: Date;
  /**
   * When the active dunning suspension began: the last change of the dunning hold into `suspended` (the hold's own
   * `since` is when the lifecycle first restricted the tenant, at the soft limit). Null: no active dunning suspension.
   */
  suspendedSince: Date | null;
  /** Open or uncollectible invoices with an amount due; uncollectible ones are written off, not paid. */
  owedInvoices: number;
  legalHold: LegalHold | undefined;
}

/**
 * Locks the tenant row for the rest of the caller's transaction (concurrent usage inserts, legal holds and service
 * control changes wait) and reads what the deletion guard decides on. Undefined when there is no such tenant.
 */
export async function lockDeletionFacts(
  client: Queryable,
  tenantId: string,
): Promise<DeletionFacts | undefined> {
  const { rows } = await client.query<{
    deleted_at: Date | null;
    now: Date;
    suspended_since: Date | null;
  }>(
    `SELECT t.deleted_at, now() AS now,
            CASE WHEN h.tenant_id IS NULL THEN NULL ELSE GREATEST(h.since, (
              SELECT max(c.changed_at) FROM service_control_hold_changes c
              WHERE c.tenant_id = t.id AND c.source = 'dunning'
                AND (c.after ->> 'suspended')::boolean
                AND (c.before IS NULL OR NOT (c.before ->> 'suspended')::boolean)
            )) END AS suspended_since
     FROM tenants t
     LEFT JOIN service_control_holds h
       ON h.tenant_id = t.id AND h.source = 'dunning' AND h.suspended AND (h.until IS NULL OR h.until > now())
     WHERE t.id = $1
     FOR UPDATE OF t`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) return undefined;
  const owed = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM invoices
     WHERE tenant_id = $1 AND status IN ('open', 'uncollectible') AND total_minor > amount_paid_minor`,
    [tenantId],
  );
  return {
    deletedAt: row.deleted_at,
    now: row.now,
    suspendedSince: row.suspended_since,
    owedInvoices: owed.rows[0]?.n ?? 0,
    legalHold: await activeLegalHold(client, tenantId),
  };
}

/**
 * Keys whose values name or reach a person in Stripe's and Paystack's objects: names, addresses, phones, emails, IPs,
 * card holder and billing details, free text a customer typed, and links to pages that show them.
 */
const PERSONAL_KEYS: ReadonlySet<string> = new Set([
  'name',
  'first_name',
  'last_name',
  'account_name',
  'cardholder_name',
  'card_holder_name',
  'email',
  'receipt_email',
  'customer_email',
  'customer_name',
  'customer_phone',
  'customer_address',
  'customer_shipping',
  'customer_tax_ids',
  'phone',
  'international_format_phone',
  'mobile',
  'address',
  'shipping',
  'billing_details',
  'owner',
  'ip',
  'ip_address',
  'client_ip',
  'custom_fields',
  'footer',
  'hosted_invoice_url',
  'invoice_pdf',
  'receipt_url',
  'authorization_url',
]);

/** An id under metadata (tenant_id, invoice_id) ties the event to our records; everything else there is dropped. */
const KEPT_METADATA_KEY = /(^|_)id$/i;

/**
 * The payload without personal data: ids, event type, amounts, currency, status and timestamps stay. A customer
 * object loses its metadata whole; other metadata keeps only its ids. The input is not modified.
 */
export function scrubPersonalData(value: unknown, parentKey = ''): unknown {
  if (Array.isArray(value)) return value.map((item) => scrubPersonalData(item, parentKey));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (PERSONAL_KEYS.has(key.toLowerCase())) continue;
    if (key === 'metadata') {
      if (parentKey === 'customer' || child === null || typeof child !== 'object') continue;
      out[key] = Object.fromEntries(
        Object.entries(child as Record<string, unknown>).filter(
          ([k, v]) => KEPT_METADATA_KEY.test(k) && (typeof v === 'string' || typeof v === 'number'),
        ),
      );
      continue;
    }
    out[key] = scrubPersonalData(child, key);
  }
  return out;
}

/**
 * Scrubs the tenant's stored webhook events: the payload loses its personal data and raw_body (the delivery's bytes,
 * kept only for signature checks) is dropped. Events recorded before the tenant was known (no tenant_id) are found
 * by the tenant's Stripe customer id or Paystack customer code. Returns how many rows changed.
 */
export async function scrubWebhookEvents(client: Queryable, tenantId: string): Promise<number> {
  const { rows } = await client.query<{ id: string; payload: unknown; has_raw_body: boolean }>(
    `SELECT e.id, e.payload, e.raw_body IS NOT NULL AS has_raw_body
     FROM webhook_events e, tenants t
     WHERE t.id = $1 AND (
       e.tenant_id = t.id
       OR (e.tenant_id IS NULL AND t.stripe_customer_id IS NOT NULL
           AND e.payload @> jsonb_build_object('data', jsonb_build_object('object',
                 jsonb_build_object('customer', t.stripe_customer_id))))
       OR (e.tenant_id IS NULL AND t.paystack_customer_code IS NOT NULL
           AND e.payload @> jsonb_build_object('data', jsonb_build_object('customer',
                 jsonb_build_object('customer_code', t.paystack_customer_code))))
     )
     FOR UPDATE OF e`,
    [tenantId],
  );
  let changed = 0;
  for (const row of rows) {
    const scrubbed = JSON.stringify(scrubPersonalData(row.payload));
    if (!row.has_raw_body && scrubbed === JSON.stringify(row.payload)) continue;
    await client.query('UPDATE webhook_events SET payload = $2::jsonb, raw_body = NULL WHERE id = $1', [
      row.id,
      scrubbed,
    ]);
    changed += 1;
  }
  return changed;
}

/** Payment links (Stripe's hosted invoice page, a Paystack checkout) lead to pages with the customer's details. */
export async function scrubInvoiceLinks(client: Queryable, tenantId: string): Promise<number> {
  const result = await client.query(
    'UPDATE invoices SET hosted_invoice_url = NULL WHERE tenant_id = $1 AND hosted_invoice_url IS NOT NULL',
    [tenantId],
  );
  return result.rowCount ?? 0;
}

/**
 * The tenants row keeps its id, tier, currency and processor ids (kept records still resolve to it); its name and
 * addresses are replaced and the saved card authorization removed. 1 when it changed, 0 when already scrubbed.
 */
export async function scrubTenantRow(client: Queryable, tenantId: string): Promise<number> {
  // The placeholder address satisfies the email CHECKs and can never be delivered (.invalid, RFC 2606).
  const result = await client.query(
    `UPDATE tenants
     SET name = 'deleted tenant',
         email = 'deleted+' || id || '@invalid',
         billing_email = 'deleted+' || id || '@invalid',
         paystack_authorization_code = NULL,
         deleted_at = COALESCE(deleted_at, now())
     WHERE id = $1
       AND (deleted_at IS NULL OR name <> 'deleted tenant' OR email <> 'deleted+' || id || '@invalid'
            OR billing_email <> 'deleted+' || id || '@invalid' OR paystack_authorization_code IS NOT NULL)`,
    [tenantId],
  );
  return result.rowCount ?? 0;
}

/** The tenant's processor ids, for stopping the provider side. Undefined when there is no such tenant. */
export async function tenantProcessorIds(
  db: Queryable,
  tenantId: string,
): Promise<
  | { stripeCustomerId: string | null; paystackAuthorizationCode: string | null; deletedAt: Date | null }
  | undefined
> {
  const { rows } = await db.query<{
    stripe_customer_id: string | null;
    paystack_authorization_code: string | null;
    deleted_at: Date | null;
  }>('SELECT stripe_customer_id, paystack_authorization_code, deleted_at FROM tenants WHERE id = $1', [
    tenantId,
  ]);
  const row = rows[0];
  return row
    ? {
        stripeCustomerId: row.stripe_customer_id,
        paystackAuthorizationCode: row.paystack_authorization_code,
        deletedAt: row.deleted_at,
      }
    : undefined;
}
