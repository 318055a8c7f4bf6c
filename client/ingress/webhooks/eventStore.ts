// webhook_events as the ingress uses it: store a verified event raw before acting, so a replayed delivery has no second effect.
import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { namedTenantSql, webhookTenant, type TenantRow, type WebhookTenant } from './billingRecords';
import type { VerifiedEvent, WebhookProvider } from './intents';

/** Statuses after which a replayed delivery is a duplicate; 'failed' (and 'received') rows are processed again. */
export type FinalStatus = 'processed' | 'ignored' | 'stored_for_incident';

export type Claim =
  /** `tenant`: the tenant the event names, as the claim resolved it and wrote it on the row; undefined when none is ours. */
  | { kind: 'claimed'; rowId: string; attempt: number; tenant?: WebhookTenant }
  | { kind: 'duplicate'; status: FinalStatus }
  /** Another delivery of the same event is being acted on right now. */
  | { kind: 'in_progress' };

/** One prepared statement per provider: the tenant lookup reads that provider's customer column. */
const CLAIM_STATEMENTS: Record<WebhookProvider, { name: string; text: string }> = {
  stripe: claimStatement('stripe'),
  paystack: claimStatement('paystack'),
};

function claimStatement(provider: WebhookProvider): { name: string; text: string } {
  return {
    name: `webhook-claim-${provider}`,
    text: `WITH tenant AS (${namedTenantSql(provider, '$6', '$7')}),
     claimed AS (
       INSERT INTO webhook_events AS e
         (provider, event_key, event_type, tenant_id, payload, signature_valid, status, attempts, claimed_at)
       VALUES ($1, $2, $3, (SELECT id FROM tenant), $4::jsonb, true, 'processing', 1, now())
       ON CONFLICT (provider, event_key) DO UPDATE
         SET status = 'processing', attempts = e.attempts + 1, error = NULL, claimed_at = now(),
             tenant_id = EXCLUDED.tenant_id
         WHERE e.status IN ('received', 'failed')
            OR (e.status = 'processing' AND (e.claimed_at IS NULL OR e.claimed_at < now() - make_interval(secs => $5)))
       RETURNING e.id, e.attempts)
     SELECT claimed.id AS row_id, claimed.attempts, tenant.* FROM claimed LEFT JOIN tenant ON true`,
  };
}

type ClaimRow = { row_id: string; attempts: number } & (TenantRow | Record<keyof TenantRow, null>);

/**
 * Stores the event raw and claims it for this delivery in one statement, which also resolves the tenant the event
 * names and writes it on the row: a new event is inserted as 'processing'; a stored one is taken again only when it
 * failed, was never acted on, or its claim outlived the lease (a crash), and then names the tenant as it resolves now
 * (after a corrected mapping, say).
 */
export async function claimEvent(
  pool: Pool,
  event: VerifiedEvent,
  rawBody: Buffer,
  leaseSeconds: number,
): Promise<Claim> {
  const named = event.intent.kind === 'ignore' ? {} : event.intent.tenant;
  const claimed = await pool.query<ClaimRow>({
    ...CLAIM_STATEMENTS[event.provider],
    values: [
      event.provider,
      event.key,
      event.type,
      rawBody.toString('utf8'),
      leaseSeconds,
      named.metadataTenantId ?? null,
      named.customerId ?? null,
    ],
  });
  const row = claimed.rows[0];
  if (row) {
    const tenant = row.id === null ? undefined : webhookTenant(row);
    return { kind: 'claimed', rowId: row.row_id, attempt: row.attempts, tenant };
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
 * row is updated in place on its page (HOT), with no index entry written.
 */
export async function finishEvents(pool: Pool, events: Finished[]): Promise<void> {
  await pool.query({
    name: FINISH_STATEMENT,
    text: `UPDATE webhook_events AS e
           SET status = f.status, error = f.note, processed_at = now(), claimed_at = NULL
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS f(id, status, note)
           WHERE e.id = f.id`,
    values: [events.map((e) => e.rowId), events.map((e) => e.status), events.map((e) => e.note ?? null)],
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
