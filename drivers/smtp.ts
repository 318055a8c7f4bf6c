// The SMTP driver behind the email activities: nodemailer over the configured SMTP_URL, with timeouts well inside
// an activity attempt, and a server's permanent refusal of a message told apart from a failure worth retrying.
import nodemailer from 'nodemailer';
import SMTPTransport from 'nodemailer/lib/smtp-transport';

export interface OutgoingMail {
  from: string;
  to: string;
  subject: string;
  text: string;
  /** Deterministic per idempotency key, so a receiving system can also tell a resend apart. */
  messageId: string;
  headers?: Record<string, string>;
}

export interface Mailer {
  /** Resolves when the server took the message; throws MailRejectedError when it refused it for good. */
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
  close(): void;
}

export interface SmtpTimeouts {
  /** To open the TCP (or TLS) connection. */
  connectionMs: number;
  /** From the connection to the server's 220 greeting. */
  greetingMs: number;
  /** Of silence from the server at any later point (after MAIL, RCPT, the message data). */
  socketMs: number;
}

/**
 * Each, and all three together, well below the 30-second start-to-close of the email activities' shortest profile
 * (workflows/shared/activityOptions.ts `quick`), so an attempt ends with the SMTP server's answer or a timeout of
 * its own, not by Temporal giving up on it. nodemailer's own defaults (2 minutes, 30 s, 10 minutes) are not.
 */
export const SMTP_TIMEOUTS: Readonly<SmtpTimeouts> = Object.freeze({
  connectionMs: 5_000,
  greetingMs: 5_000,
  socketMs: 15_000,
});

/**
 * The server refused this message for good (an SMTP 5xx to the recipient or to the message itself): sending it again
 * cannot succeed. `reason` is the server's answer, for example `550 5.1.1 <a@b>: Recipient address rejected`.
 */
export class MailRejectedError extends Error {
  override name = 'MailRejectedError';
  constructor(
    readonly responseCode: number,
    readonly reason: string,
  ) {
    super(`the SMTP server refused the message for good: ${reason}`);
  }
}

/** The longest server answer kept: enough for any real reason, never a whole transcript. */
const MAX_REASON_CHARS = 500;

/** What nodemailer attaches to the errors it raises. */
interface SmtpError extends Error {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
}

/**
 * A 5xx to RCPT TO or to the message data refuses this message (no such mailbox, content refused, too large).
 * A 5xx to the connection, the greeting, EHLO, AUTH or MAIL FROM refuses billops' own setup (SMTP_URL, its
 * credentials, BILLOPS_MAIL_FROM): every message would fail alike, so that stays a failure that is retried.
 */
function permanentRefusal(err: SmtpError): MailRejectedError | undefined {
  const code = err.responseCode;
  if (!code || code < 500 || code > 599) return undefined;
  if (err.command !== 'RCPT TO' && err.command !== 'DATA') return undefined;
  const reason = (err.response ?? err.message).replace(/\s+/g, ' ').trim().slice(0, MAX_REASON_CHARS);
  return new MailRejectedError(code, reason);
}

export function createSmtpMailer(smtpUrl: string, opts: { timeouts?: Partial<SmtpTimeouts> } = {}): Mailer {
  const timeouts = { ...SMTP_TIMEOUTS, ...opts.timeouts };
  // Built from the transport class: nodemailer.createTransport({ url, ... }) drops every option beside the URL.
  // Settings in the URL's query (`?socketTimeout=...`) still win over these, as the transport reads them last.
  const transport = nodemailer.createTransport(
    new SMTPTransport({
      url: smtpUrl,
      connectionTimeout: timeouts.connectionMs,
      greetingTimeout: timeouts.greetingMs,
      socketTimeout: timeouts.socketMs,
    }),
  );
  return {
    async send(mail) {
      try {
        const info = await transport.sendMail({
          from: mail.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          messageId: mail.messageId,
          headers: mail.headers,
        });
        return { messageId: info.messageId };
      } catch (err) {
        throw permanentRefusal(err as SmtpError) ?? err;
      }
    },
    close: () => transport.close(),
  };
}
