// Email activities: every message goes through the email_outbox table, claimed with a lease, so a retried activity
// never sends twice and no transaction or row lock is held while the SMTP server answers.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { MailRejectedError, type Mailer } from '../drivers/smtp';

export interface EmailRequest {
  /** Workflow id + step: the same key always means the same message. */
  idempotencyKey: string;
  /** null for mail to billops' own operators (the root-cause reminder). */
  tenantId: string | null;
  to: string;
  subject: string;
  text: string;
  template: string;
}

export interface SentEmail {
  idempotencyKey: string;
  messageId: string;
  /** False when the outbox already held this message as sent or undeliverable: nothing went out this time. */
  sentNow: boolean;
  /** 'undeliverable': the SMTP server refused it for good (an unknown mailbox); it is never tried again. */
  outcome: 'sent' | 'undeliverable';
  /** The server's answer when undeliverable, for example `550 5.1.1 <a@b>: Recipient address rejected`. */
  reason?: string;
}

/**
 * How long a claim keeps other attempts off a message: longer than one SMTP exchange can last under the driver's
 * timeouts (drivers/smtp.ts: 5 s to connect, 5 s to the greeting, at most 15 s of silence at each later step), so a
 * live send is never claimed twice; a sender lost mid-send (a crashed worker) frees its message when it runs out.
 */
export const EMAIL_LEASE_MS = 2 * 60_000;
/** How long an attempt waits for another one sending the same message before handing back to Temporal's retry. */
const IN_FLIGHT_WAIT_MS = 10_000;
const IN_FLIGHT_POLL_MS = 200;
const MAX_ERROR_CHARS = 500;

interface OutboxRow {
  status: string;
  message_id: string | null;
  last_error: string | null;
  lease_expires_at: Date | null;
}

export function createEmailActivities(deps: {
  pool: Pool;
  mailer: Mailer;
  from: string;
  /** Defaults to EMAIL_LEASE_MS. */
  leaseMs?: number;
  /** Defaults to ten seconds, well inside the activity's start-to-close. */
  inFlightWaitMs?: number;
}) {
  const { pool } = deps;
  const leaseMs = deps.leaseMs ?? EMAIL_LEASE_MS;
  const inFlightWaitMs = deps.inFlightWaitMs ?? IN_FLIGHT_WAIT_MS;

  /** Each statement commits on its own: nothing is held between them, least of all while SMTP answers. */
  async function insertPending(request: EmailRequest): Promise<void> {
    await pool.query(
      `INSERT INTO email_outbox (idempotency_key, tenant_id, to_address, subject, body_text, template, status)
       VALUES ($1, $2, $3, $4, $5, $6, 'pending')
       ON CONFLICT (idempotency_key) DO NOTHING`,
      [request.idempotencyKey, request.tenantId, request.to, request.subject, request.text, request.template],
    );
  }

  /** Takes the message when nobody holds it (never tried, failed for now, or its sender's lease ran out). */
  async function claim(key: string): Promise<string | undefined> {
    const { rows } = await pool.query<{ lease_token: string }>(
      `UPDATE email_outbox
       SET status = 'sending', lease_token = gen_random_uuid(),
           lease_expires_at = now() + $2::double precision * interval '1 millisecond', attempts = attempts + 1
       WHERE idempotency_key = $1
         AND (status IN ('pending', 'failed') OR (status = 'sending' AND lease_expires_at <= now()))
       RETURNING lease_token`,
      [key, leaseMs],
    );
    return rows[0]?.lease_token;
  }

  async function send(request: EmailRequest, leaseToken: string): Promise<SentEmail> {
    const key = request.idempotencyKey;
    const messageId = `<${encodeURIComponent(key)}@billops>`;
    try {
      await deps.mailer.send({
        from: deps.from,
        to: request.to,
        subject: request.subject,
        text: request.text,
        messageId,
        headers: { 'X-Billops-Idempotency-Key': key },
      });
    } catch (err) {
      if (err instanceof MailRejectedError) {
        // Recorded and answered: the workflow goes on; the reason is on the row and in the result.
        await pool.query(
          `UPDATE email_outbox
           SET status = 'undeliverable', message_id = $3, last_error = $4, undeliverable_at = now(),
               lease_token = NULL, lease_expires_at = NULL
           WHERE idempotency_key = $1 AND lease_token = $2`,
          [key, leaseToken, messageId, err.reason],
        );
        return {
          idempotencyKey: key,
          messageId,
          sentNow: false,
          outcome: 'undeliverable',
          reason: err.reason,
        };
      }
      const detail = (err as Error).message.slice(0, MAX_ERROR_CHARS);
      // Released for the retry; if PostgreSQL is unreachable too, the lease runs out by itself.
      await pool
        .query(
          `UPDATE email_outbox SET status = 'failed', last_error = $3, lease_token = NULL, lease_expires_at = NULL
           WHERE idempotency_key = $1 AND lease_token = $2`,
          [key, leaseToken, detail],
        )
        .catch(() => undefined);
      throw ApplicationFailure.create({
        message:
          `email ${key} to ${request.to} was not sent: ${detail}. Temporal retries it; ` +
          'if this persists, check that the SMTP server in SMTP_URL is up and accepts billops.',
        type: 'EmailNotSent',
        nonRetryable: false,
      });
    }
    // Marked whoever holds the lease now: the server took the message, so the row says so.
    await pool.query(
      `UPDATE email_outbox
       SET status = 'sent', message_id = $2, sent_at = now(), last_error = NULL,
           lease_token = NULL, lease_expires_at = NULL
       WHERE idempotency_key = $1 AND status <> 'sent'`,
      [key, messageId],
    );
    return { idempotencyKey: key, messageId, sentNow: true, outcome: 'sent' };
  }

  return {
    async sendEmail(request: EmailRequest): Promise<SentEmail> {
      const key = request.idempotencyKey;
      const waitUntil = Date.now() + inFlightWaitMs;
      await insertPending(request);
      for (;;) {
        const leaseToken = await claim(key);
        if (leaseToken) return send(request, leaseToken);

        const { rows } = await pool.query<OutboxRow>(
          'SELECT status, message_id, last_error, lease_expires_at FROM email_outbox WHERE idempotency_key = $1',
          [key],
        );
        const row = rows[0];
        if (!row) {
          // Removed between the two statements (a tenant's data deleted): written again, then claimed.
          await insertPending(request);
          continue;
        }
        if (row.status === 'sent' && row.message_id) {
          return { idempotencyKey: key, messageId: row.message_id, sentNow: false, outcome: 'sent' };
        }
        if (row.status === 'undeliverable') {
          return {
            idempotencyKey: key,
            messageId: row.message_id ?? `<${encodeURIComponent(key)}@billops>`,
            sentNow: false,
            outcome: 'undeliverable',
            reason: row.last_error ?? 'refused by the SMTP server',
          };
        }
        // Another attempt holds the lease and is sending right now: wait for its answer, a little.
        const left = waitUntil - Date.now();
        if (left <= 0) {
          const until = row.lease_expires_at?.toISOString() ?? 'shortly';
          throw ApplicationFailure.create({
            message:
              `email ${key} is being sent by another attempt, whose claim runs until ${until}; ` +
              'Temporal retries this one, which then finds it sent, or takes it over once the claim runs out.',
            type: 'EmailSendInFlight',
            nonRetryable: false,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(IN_FLIGHT_POLL_MS, left)));
      }
    },
  };
}
export type EmailActivities = ReturnType<typeof createEmailActivities>;
