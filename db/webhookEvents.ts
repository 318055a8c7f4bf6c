// webhook_events as the ingress uses it: store a verified event raw before acting, so a replayed delivery has no second effect.
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { BillingTier } from '../domain/policy';
import {
  failedInvoiceValues,
  insertFailedInvoiceSql,
  namedTenantSql,
  webhookTenant,
  type InvoiceRow,
  type TenantRow,
  type WebhookTenant,
} from './billingRecords';
import type { FailedProcessorInvoice, VerifiedEvent, WebhookProvider } from '../domain/paymentEvents';
import { storableJsonBody, storableText } from './storable';

/** Statuses after which a replayed delivery is a duplicate; 'failed' (and 'received') rows are processed again. */
export type FinalStatus = 'processed' | 'ignored' | 'stored_for_incident';

/**
 * How the note of an event that waits for its tenant starts: a failed payment naming a tenant billops does not have
 * yet. Its outcome is 'ignored' (nothing was done), but finishEvents stores the row as 'failed' with the note, so a
 * retried delivery or `billops webhooks retry` acts on it again once the tenant exists.
 */
export const WAITING_FOR_TENANT = 'tenant unknown: waiting for tenant';

export type Claim =
  /**
   * `tenant`: the tenant the event names, as the claim resolved it and wrote it on the row; undefined when none is ours.
   * `invoice`: for a failed payment claimed with the tiers that are dunned, our invoice for it, found or recorded by the
   * same statement; undefined when that was not possible in one statement (actOn then finds or records it itself).
   */
  | { kind: 'claimed'; rowId: string; attempt: number; tenant?: WebhookTenant; invoice?: InvoiceRow }
  | { kind: 'duplicate'; status: FinalStatus }
  /** Another delivery of the same event is being acted on right now. */
  | { kind: 'in_progress' };

type Statement = { name: string; text: string };

/**
 * One prepared statement per provider (the tenant lookup reads that provider's customer column), and one that also
 * keeps the bytes received, for the rare payload that had to be cleaned before jsonb would take it.
 */
const CLAIM_STATEMENTS: Record<WebhookProvider, { sent: Statement; cleaned: Statement }> = {
  stripe: { sent: claimStatement('stripe'), cleaned: claimStatement('stripe', '$8') },
  paystack: { sent: claimStatement('paystack'), cleaned: claimStatement('paystack', '$8') },
};

/**
 * $1–$7: provider, key, type, payload, lease seconds, metadata tenant id, customer id; `rawBody` names the parameter
 * holding the bytes received when the payload is a cleaned copy of them.
 */
function claimCtes(provider: WebhookProvider, rawBody?: string): string {
  return `tenant AS (${namedTenantSql(provider, '$6', '$7')}),
     claimed AS (
       INSERT INTO webhook_events AS e
         (provider, event_key, event_type, tenant_id, payload, signature_valid, status, attempts, claimed_at${rawBody ? ', raw_body' : ''})
       VALUES ($1, $2, $3, (SELECT id FROM tenant), $4::jsonb, true, 'processing', 1, now()${rawBody ? `, ${rawBody}::bytea` : ''})
       ON CONFLICT (provider, event_key) DO UPDATE
         SET status = 'processing', attempts = e.attempts + 1, error = NULL, claimed_at = now(),
             tenant_id = EXCLUDED.tenant_id
         WHERE e.status IN ('received', 'failed')
            OR (e.status = 'processing' AND (e.claimed_at IS NULL OR e.claimed_at < now() - make_interval(secs => $5)))
       RETURNING e.id, e.attempts)`;
}

function claimStatement(provider: WebhookProvider, rawBody?: string): Statement {
  return {
    name: `webhook-claim-${provider}${rawBody ? '-cleaned' : ''}`,
    text: `WITH ${claimCtes(provider, rawBody)}
     SELECT claimed.id AS row_id, claimed.attempts, tenant.* FROM claimed LEFT JOIN tenant ON true`,
  };
}

/**
 * The claim of a failed payment, which also finds our invoice for it (by our id, the payment's reference, then the
 * processor's invoice id, as findOrRecordFailedInvoice does) or records it from the event when the claim took the
 * event and the tenant is one that is dunned. $8–$17: our invoice id, transaction reference, processor invoice id,
 * period start and end, amount in minor units, currency, due, hosted URL, the tiers that are dunned.
 */
function failedPaymentClaimStatement(provider: WebhookProvider, rawBody?: string): Statement {
  return {
    name: `webhook-claim-failed-${provider}${rawBody ? '-cleaned' : ''}`,
    text: `WITH ${claimCtes(provider, rawBody)},
     known AS (
       SELECT id, tenant_id, status FROM (
         SELECT 1 AS priority, id, tenant_id, status FROM invoices WHERE id = $8
         UNION ALL
         SELECT 2, i.id, i.tenant_id, i.status FROM payment_transactions t JOIN invoices i ON i.id = t.invoice_id
          WHERE t.processor = $1 AND t.reference = $9
         UNION ALL
         SELECT 3, id, tenant_id, status FROM invoices WHERE processor = $1 AND processor_invoice_id = $10) found
       ORDER BY priority
       LIMIT 1),
     recorded AS (${insertFailedInvoiceSql(
       `SELECT tenant.id, $1, $10, $11, $12, 'open', $13, $13, $14, $15, $16 FROM tenant
         WHERE EXISTS (SELECT 1 FROM claimed) AND NOT EXISTS (SELECT 1 FROM known)
           AND tenant.deleted_at IS NULL AND tenant.tier = ANY ($17::text[])`,
     )}),
     invoice AS (SELECT * FROM recorded UNION ALL SELECT * FROM known LIMIT 1)
     SELECT claimed.id AS row_id, claimed.attempts, tenant.*,
            invoice.id AS invoice_id, invoice.tenant_id AS invoice_tenant_id, invoice.status AS invoice_status
       FROM claimed LEFT JOIN tenant ON true LEFT JOIN invoice ON true`,
  };
}

/** As CLAIM_STATEMENTS; $18 holds the bytes received for a cleaned payload. */
const FAILED_PAYMENT_CLAIM_STATEMENTS: Record<WebhookProvider, { sent: Statement; cleaned: Statement }> = {
  stripe: {
    sent: failedPaymentClaimStatement('stripe'),
    cleaned: failedPaymentClaimStatement('stripe', '$18'),
  },
  paystack: {
    sent: failedPaymentClaimStatement('paystack'),
    cleaned: failedPaymentClaimStatement('paystack', '$18'),
  },
};

type ClaimRow = { row_id: string; attempts: number } & (TenantRow | Record<keyof TenantRow, null>) & {
    invoice_id?: string | null;
    invoice_tenant_id?: string | null;
    invoice_status?: string | null;
  };

export interface ClaimOptions {
  /**
   * The tiers whose failed payments are dunned. Given, a failed payment's invoice is found or recorded by the claim
   * itself: one statement before the event goes to Temporal instead of two.
   */
  dunnedTiers?: readonly BillingTier[];
}

/**
 * Stores the event raw and claims it for this delivery in one statement, which also resolves the tenant the event
 * names and writes it on the row: a new event is inserted as 'processing'; a stored one is taken again only when it
 * failed, was never acted on, or its claim outlived the lease (a crash), and then names the tenant as it resolves now
 * (after a corrected mapping, say). A body jsonb refuses as sent (\u0000, a lone surrogate, bytes that are not
 * UTF-8) is stored cleaned, those characters replaced by U+FFFD, with the bytes received in raw_body.
 */
export async function claimEvent(
  pool: Pool,
  event: VerifiedEvent,
  rawBody: Buffer,
  leaseSeconds: number,
  opts: ClaimOptions = {},
): Promise<Claim> {
  const named = event.intent.kind === 'ignore' ? {} : event.intent.tenant;
  const payload = storableJsonBody(rawBody);
  const values = [
    event.provider,
    storableText(event.key),
    storableText(event.type),
    payload.text,
    leaseSeconds,
    named.metadataTenantId ?? null,
    named.customerId === undefined ? null : storableText(named.customerId),
  ];
  const variant = payload.raw ? 'cleaned' : 'sent';
  let claimed: { rows: ClaimRow[] } | undefined;
  if (event.intent.kind === 'paymentFailed' && opts.dunnedTiers) {
    // An invoice the database refuses (say, a period that ends before it starts) fails this whole statement, event
    // row included: then the claim alone stores the event, and acting on it records the refusal on the row.
    claimed = await pool
      .query<ClaimRow>({
        ...FAILED_PAYMENT_CLAIM_STATEMENTS[event.provider][variant],
        values: [
          ...values,
          ...failedInvoiceParameters(event.intent.invoice, opts.dunnedTiers),
          ...(payload.raw ? [payload.raw] : []),
        ],
      })
      .catch(() => undefined);
  }
  claimed ??= await pool.query<ClaimRow>({
    ...CLAIM_STATEMENTS[event.provider][variant],
    values: payload.raw ? [...values, payload.raw] : values,
  });
  const row = claimed.rows[0];
  if (row) {
    const tenant = row.id === null ? undefined : webhookTenant(row);
    const invoice =
      row.invoice_id && row.invoice_tenant_id && row.invoice_status
        ? { id: row.invoice_id, tenant_id: row.invoice_tenant_id, status: row.invoice_status }
        : undefined;
    return { kind: 'claimed', rowId: row.row_id, attempt: row.attempts, tenant, invoice };
  }
  const { rows } = await pool.query<{ status: string }>(
    'SELECT status FROM webhook_events WHERE provider = $1 AND event_key = $2',
    [event.provider, event.key],
  );
  const status = rows[0]?.status;
  if (status === 'processed' || status === 'ignored' || status === 'stored_for_incident') {
    return { kind: 'duplicate', status };
  }
  return { kind: 'in_progress' };
}

/** $8–$17 of the failed payment's claim. */
function failedInvoiceParameters(
  failed: FailedProcessorInvoice,
  dunnedTiers: readonly BillingTier[],
): unknown[] {
  return [
    failed.ourInvoiceId ?? null,
    failed.transactionReference ?? null,
    ...failedInvoiceValues(failed),
    dunnedTiers,
  ];
}

/** The name of the prepared statement that marks events done, the one write of a delivery made after its answer. */
export const FINISH_STATEMENT = 'webhook-finish';

export interface Finished {
  rowId: string;
  status: FinalStatus;
  /** Why nothing was done, for an ignored event. */
  note?: string;
}

/**
 * The events are dealt with, in one statement. The claim wrote tenant_id and no column set here is indexed, so each
 * row is updated in place on its page (HOT), with no index entry written. An ignored event whose note says it waits
 * for its tenant (WAITING_FOR_TENANT) is stored 'failed' with that note, for the retries to take.
 */
export async function finishEvents(pool: Pool, events: Finished[]): Promise<void> {
  await pool.query({
    name: FINISH_STATEMENT,
    text: `UPDATE webhook_events AS e
           SET status = CASE WHEN f.status = 'ignored' AND starts_with(f.note, $4) THEN 'failed' ELSE f.status END,
               error = f.note, processed_at = now(), claimed_at = NULL
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS f(id, status, note)
           WHERE e.id = f.id`,
    values: [
      events.map((e) => e.rowId),
      events.map((e) => e.status),
      events.map((e) => e.note ?? null),
      WAITING_FOR_TENANT,
    ],
  });
}

export async function finishEvent(
  pool: Pool,
  rowId: string,
  outcome: { status: FinalStatus; note?: string },
): Promise<void> {
  await finishEvents(pool, [{ rowId, ...outcome }]);
}

/**
 * Marks events done after their answers, several to a statement: the first event of a batch waits `lingerMs` for
 * others to join it. The rows only say 'processing' that much longer; the answers have gone already.
 */
export class FinishBatcher {
  private batch: { event: Finished; settle: (err?: Error) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly lingerMs = 10,
  ) {}

  finish(event: Finished): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ event, settle: (err) => (err ? reject(err) : resolve()) });
      this.timer ??= setTimeout(() => this.flush(), this.lingerMs);
    });
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    this.timer = undefined;
    finishEvents(
      this.pool,
      batch.map((b) => b.event),
    ).then(
      () => batch.forEach((b) => b.settle()),
      (err: Error) => batch.forEach((b) => b.settle(err)),
    );
  }
}

/** Acting failed: the provider's retry, or `billops webhooks retry`, processes the row again. */
export async function failEvent(pool: Pool, rowId: string, error: string): Promise<void> {
  await pool.query(
    `UPDATE webhook_events SET status = 'failed', error = $2, claimed_at = NULL WHERE id = $1`,
    [rowId, error.slice(0, 2000)],
  );
}

/**
 * Counts a delivery whose signature did not verify, for the webhook-failure incident. Its body is not trusted, so
 * only a digest and what it claims to be are kept, under a key of their own: a forged delivery can never take the
 * key of a real event, and the same body sent again adds an attempt rather than a row.
 */
export async function recordRejected(
  pool: Pool,
  provider: WebhookProvider,
  rawBody: Buffer,
  reason: string,
): Promise<void> {
  const digest = createHash('sha256').update(rawBody).digest('hex');
  const claimed = claimedIdentity(provider, rawBody);
  await pool.query(
    `INSERT INTO webhook_events AS e
       (provider, event_key, event_type, payload, signature_valid, status, attempts, error)
     VALUES ($1, $2, $3, $4::jsonb, false, 'rejected', 1, $5)
     ON CONFLICT (provider, event_key) DO UPDATE SET attempts = e.attempts + 1, error = EXCLUDED.error`,
    [
      provider,
      `rejected:${digest}`,
      claimed.type ?? 'unverified',
      JSON.stringify({ claimed_event: claimed.id ?? null, body_sha256: digest, body_bytes: rawBody.length }),
      reason,
    ],
  );
}

/** What an unverified body says it is, cut short: enough to find the real event at the provider. */
function claimedIdentity(provider: WebhookProvider, rawBody: Buffer): { id?: string; type?: string } {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return {};
  }
  if (typeof body !== 'object' || body === null) return {};
  const fields = body as Record<string, unknown>;
  const data = (typeof fields.data === 'object' && fields.data !== null ? fields.data : {}) as Record<
    string,
    unknown
  >;
  const text = (v: unknown) =>
    typeof v === 'string' || typeof v === 'number' ? String(v).slice(0, 200) : undefined;
  return provider === 'stripe'
    ? { id: text(fields.id), type: text(fields.type) }
    : { id: text(data.reference ?? data.id), type: text(fields.event) };
}
