// Email activities: every message goes through the email_outbox table, so a retried activity never sends twice.
import type { Pool } from 'pg';
import type { Mailer } from '../drivers/smtp';

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
  /** False when the outbox already held this message as sent: nothing went out this time. */
  sentNow: boolean;
}

interface OutboxRow {
  status: string;
  message_id: string | null;
}

export function createEmailActivities(deps: { pool: Pool; mailer: Mailer; from: string }) {
  return {
    async sendEmail(request: EmailRequest): Promise<SentEmail> {
      const client = await deps.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO email_outbox (idempotency_key, tenant_id, to_address, subject, body_text, template, status)
           VALUES ($1, $2, $3, $4, $5, $6, 'pending')
           ON CONFLICT (idempotency_key) DO NOTHING`,
          [
            request.idempotencyKey,
            request.tenantId,
            request.to,
            request.subject,
            request.text,
            request.template,
          ],
        );
        // The row lock serialises concurrent attempts for the same key; the second sees 'sent' and stops.
        const { rows } = await client.query<OutboxRow>(
          'SELECT status, message_id FROM email_outbox WHERE idempotency_key = $1 FOR UPDATE',
          [request.idempotencyKey],
        );
        const row = rows[0];
        if (row?.status === 'sent' && row.message_id) {
          await client.query('COMMIT');
          return { idempotencyKey: request.idempotencyKey, messageId: row.message_id, sentNow: false };
        }
        const messageId = `<${encodeURIComponent(request.idempotencyKey)}@billops>`;
        await deps.mailer.send({
          from: deps.from,
          to: request.to,
          subject: request.subject,
          text: request.text,
          messageId,
          headers: { 'X-Billops-Idempotency-Key': request.idempotencyKey },
        });
        await client.query(
          `UPDATE email_outbox SET status = 'sent', message_id = $2, attempts = attempts + 1, sent_at = now()
           WHERE idempotency_key = $1`,
          [request.idempotencyKey, messageId],
        );
        await client.query('COMMIT');
        return { idempotencyKey: request.idempotencyKey, messageId, sentNow: true };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
  };
}
export type EmailActivities = ReturnType<typeof createEmailActivities>;
