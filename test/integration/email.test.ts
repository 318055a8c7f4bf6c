// activities/email.ts against real PostgreSQL and a local SMTP server: the outbox lease (no lock held while SMTP
// answers), at most one message per key, permanent rejections recorded as undeliverable, and the SMTP timeouts.
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { msToNumber } from '@temporalio/common/lib/time';
import { Client, type Pool } from 'pg';
import { SMTPServer } from 'smtp-server';
import { createEmailActivities, type EmailRequest } from '../../activities/email';
import { createPool } from '../../db/pool';
import { defaultPolicy } from '../../domain/policy';
import { createSmtpMailer, SMTP_TIMEOUTS, type Mailer } from '../../drivers/smtp';
import { freePort } from '../../runtime/processes';
import { noticeStep, quick } from '../../workflows/shared/activityOptions';
import { testEnv } from '../support/testRuntime';

const FROM = 'billops <billing@billops.test>';

/** What the local SMTP server does for a recipient, by the address's local part. */
type Behaviour = 'accept' | 'reject' | 'later' | 'stall';

interface LocalSmtp {
  url: string;
  /** Messages accepted, per recipient. */
  received: Map<string, number>;
  /** RCPT TO commands seen, per recipient (refused ones too). */
  rcpt: Map<string, number>;
  /** Changes how one recipient is answered from now on. */
  set(address: string, behaviour: Behaviour): void;
  /** Resolves when a stalled message's data has arrived: the server holds its answer until `release`. */
  stalled(): Promise<void>;
  release(): void;
  close(): Promise<void>;
}

async function startLocalSmtp(): Promise<LocalSmtp> {
  const behaviours = new Map<string, Behaviour>();
  const received = new Map<string, number>();
  const rcpt = new Map<string, number>();
  let onStalled: () => void = () => undefined;
  let stalledNow = new Promise<void>((resolve) => (onStalled = resolve));
  let releases: Array<() => void> = [];
  const behaviourOf = (address: string): Behaviour => behaviours.get(address) ?? 'accept';
  const refusal = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onRcptTo(address, _session, callback) {
      rcpt.set(address.address, (rcpt.get(address.address) ?? 0) + 1);
      const behaviour = behaviourOf(address.address);
      if (behaviour === 'reject')
        return callback(refusal(550, `5.1.1 <${address.address}>: Recipient address rejected: no such user`));
      if (behaviour === 'later')
        return callback(refusal(451, '4.3.0 Mailbox temporarily unavailable, try again later'));
      callback();
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        const to = session.envelope.rcptTo.map((r) => r.address);
        const finish = () => {
          for (const address of to) received.set(address, (received.get(address) ?? 0) + 1);
          callback();
        };
        if (to.some((a) => behaviourOf(a) === 'stall')) {
          releases.push(finish);
          onStalled();
        } else finish();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    rcpt,
    set: (address, behaviour) => behaviours.set(address, behaviour),
    stalled: () => stalledNow,
    release() {
      const waiting = releases;
      releases = [];
      stalledNow = new Promise<void>((resolve) => (onStalled = resolve));
      for (const finish of waiting) finish();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A TCP server that accepts connections and never says a word: an SMTP server stuck before its greeting. */
async function startSilentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  return {
    url: `smtp://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function request(to: string, overrides: Partial<EmailRequest> = {}): EmailRequest {
  return {
    idempotencyKey: `email-test/${randomUUID()}`,
    tenantId: null,
    to,
    subject: 'Payment failed',
    text: 'Your payment failed; update your card.',
    template: 'paymentFailureNotice',
    ...overrides,
  };
}

interface OutboxRow {
  status: string;
  attempts: number;
  message_id: string | null;
  last_error: string | null;
  lease_expires_at: Date | null;
}

async function outboxRow(pool: Pool, key: string): Promise<OutboxRow | undefined> {
  const { rows } = await pool.query<OutboxRow>(
    `SELECT status, attempts, message_id, last_error, lease_expires_at FROM email_outbox WHERE idempotency_key = $1`,
    [key],
  );
  return rows[0];
}

let pool: Pool;
let smtp: LocalSmtp;
let mailer: Mailer;

beforeAll(async () => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  smtp = await startLocalSmtp();
  mailer = createSmtpMailer(smtp.url);
});

afterAll(async () => {
  mailer.close();
  await smtp.close();
  await pool.end();
});

const address = (name: string) => `${name}-${randomUUID().slice(0, 8)}@customer.test`;

describe('the outbox claims its row with a lease and holds no lock while the SMTP server answers', () => {
  it('while the server stalls on the message, another connection can lock the outbox row at once (NOWAIT)', async () => {
    const email = createEmailActivities({ pool, mailer, from: FROM });
    const to = address('stall');
    smtp.set(to, 'stall');
    const msg = request(to);

    const sending = email.sendEmail(msg);
    const settled = sending.then(
      () => 'done',
      () => 'done',
    );
    try {
      await Promise.race([smtp.stalled(), settled]);
      const other = new Client({ connectionString: testEnv('databaseUrl') });
      await other.connect();
      try {
        await other.query('BEGIN');
        // Sending inside the transaction that inserted and locked the row would make this fail: the row not yet
        // visible to another session, or locked (55P03 lock_not_available).
        const locked = await other.query<{ status: string }>(
          'SELECT status FROM email_outbox WHERE idempotency_key = $1 FOR UPDATE NOWAIT',
          [msg.idempotencyKey],
        );
        expect(locked.rows).toEqual([{ status: 'sending' }]);
        await other.query('COMMIT');
        // What keeps another attempt off the row instead: the claim's lease.
        const { rows } = await other.query<{ leased: boolean }>(
          'SELECT lease_expires_at > now() AS leased FROM email_outbox WHERE idempotency_key = $1',
          [msg.idempotencyKey],
        );
        expect(rows).toEqual([{ leased: true }]);
        // No billops session sits in an open transaction while the server answers.
        const idle = await other.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE application_name = 'billops' AND state LIKE 'idle in transaction%' AND query LIKE '%email_outbox%'`,
        );
        expect(idle.rows[0]?.n).toBe(0);
      } finally {
        await other.end();
      }
    } finally {
      smtp.release();
    }

    const sent = await sending;
    expect(sent).toMatchObject({ idempotencyKey: msg.idempotencyKey, sentNow: true, outcome: 'sent' });
    expect(smtp.received.get(to)).toBe(1);
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({
      status: 'sent',
      attempts: 1,
      message_id: sent.messageId,
      lease_expires_at: null,
    });

    // A retried activity with the same key: the row is sent, so the answer is "already sent" and nothing goes out.
    const again = await email.sendEmail(msg);
    expect(again).toEqual({ ...sent, sentNow: false });
    expect(smtp.received.get(to)).toBe(1);
  });

  it('a second attempt with the same key while the first is in flight waits for it and sends nothing', async () => {
    const email = createEmailActivities({ pool, mailer, from: FROM });
    const to = address('stall');
    smtp.set(to, 'stall');
    const msg = request(to);

    const first = email.sendEmail(msg);
    let secondDone = false;
    let second: ReturnType<typeof email.sendEmail> | undefined;
    try {
      await smtp.stalled();
      second = email.sendEmail(msg);
      void second.then(
        () => (secondDone = true),
        () => (secondDone = true),
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(secondDone).toBe(false);
    } finally {
      smtp.release();
    }

    const results = await Promise.all([first, second!]);
    expect(results.map((r) => r.sentNow)).toEqual([true, false]);
    expect(results[1]).toEqual({ ...results[0], sentNow: false });
    expect(smtp.received.get(to)).toBe(1);
    expect(smtp.rcpt.get(to)).toBe(1);
  });

  it('an attempt that finds a live claim past its wait fails for Temporal to retry, sending nothing', async () => {
    const email = createEmailActivities({ pool, mailer, from: FROM, inFlightWaitMs: 300 });
    const to = address('claimed');
    const msg = request(to);
    await pool.query(
      `INSERT INTO email_outbox (idempotency_key, tenant_id, to_address, subject, body_text, template, status,
                                 attempts, lease_token, lease_expires_at)
       VALUES ($1, NULL, $2, $3, $4, $5, 'sending', 1, gen_random_uuid(), now() + interval '1 minute')`,
      [msg.idempotencyKey, msg.to, msg.subject, msg.text, msg.template],
    );

    await expect(email.sendEmail(msg)).rejects.toMatchObject({
      type: 'EmailSendInFlight',
      message: expect.stringContaining(msg.idempotencyKey),
    });
    expect(smtp.rcpt.get(to)).toBeUndefined();
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({ status: 'sending', attempts: 1 });
  });

  it("a crashed sender's claim expires and the retry takes it and sends once", async () => {
    const email = createEmailActivities({ pool, mailer, from: FROM });
    const to = address('crashed');
    const msg = request(to);
    // What a worker lost mid-send leaves: the row claimed, its lease run out.
    await pool.query(
      `INSERT INTO email_outbox (idempotency_key, tenant_id, to_address, subject, body_text, template, status,
                                 attempts, lease_token, lease_expires_at)
       VALUES ($1, NULL, $2, $3, $4, $5, 'sending', 1, gen_random_uuid(), now() - interval '1 second')`,
      [msg.idempotencyKey, msg.to, msg.subject, msg.text, msg.template],
    );

    const sent = await email.sendEmail(msg);

    expect(sent).toMatchObject({ sentNow: true, outcome: 'sent' });
    expect(smtp.received.get(to)).toBe(1);
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({
      status: 'sent',
      attempts: 2,
      lease_expires_at: null,
    });
  });
});

describe('what the SMTP server answers', () => {
  it('a permanent 550 for the recipient is recorded as undeliverable with its reason and returned, not thrown', async () => {
    const email = createEmailActivities({ pool, mailer, from: FROM });
    const to = address('gone');
    smtp.set(to, 'reject');
    const msg = request(to);

    const result = await email.sendEmail(msg);

    expect(result).toMatchObject({
      idempotencyKey: msg.idempotencyKey,
      sentNow: false,
      outcome: 'undeliverable',
      reason: expect.stringMatching(/^550 5\.1\.1 .*Recipient address rejected/),
    });
    const row = await outboxRow(pool, msg.idempotencyKey);
    expect(row).toMatchObject({ status: 'undeliverable', attempts: 1, lease_expires_at: null });
    expect(row?.last_error).toBe(result.reason);

    // The retry (or a replay) gets the same answer from the outbox; the server is not asked again.
    expect(await email.sendEmail(msg)).toEqual(result);
    expect(smtp.rcpt.get(to)).toBe(1);
    expect(smtp.received.get(to)).toBeUndefined();
  });

  it('a temporary 451 is thrown for Temporal to retry, the claim is released, and the retry sends', async () => {
    const email = createEmailActivities({ pool, mailer, from: FROM });
    const to = address('busy');
    smtp.set(to, 'later');
    const msg = request(to);

    await expect(email.sendEmail(msg)).rejects.toThrow(/451 4\.3\.0/);
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({
      status: 'failed',
      attempts: 1,
      lease_expires_at: null,
      last_error: expect.stringContaining('451'),
    });

    smtp.set(to, 'accept');
    const sent = await email.sendEmail(msg);
    expect(sent).toMatchObject({ sentNow: true, outcome: 'sent' });
    expect(smtp.received.get(to)).toBe(1);
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({ status: 'sent', attempts: 2 });
  });

  it('a refused connection is thrown for Temporal to retry and leaves the row to the retry', async () => {
    const nowhere = createSmtpMailer(`smtp://127.0.0.1:${await freePort()}`);
    const msg = request(address('refused'));
    try {
      const email = createEmailActivities({ pool, mailer: nowhere, from: FROM });
      await expect(email.sendEmail(msg)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      nowhere.close();
    }
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({
      status: 'failed',
      lease_expires_at: null,
    });

    const sent = await createEmailActivities({ pool, mailer, from: FROM }).sendEmail(msg);
    expect(sent).toMatchObject({ sentNow: true, outcome: 'sent' });
  });
});

describe('SMTP timeouts', () => {
  it("each stays below the email activities' start-to-close timeout, and so does a stall at every one", () => {
    const policy = defaultPolicy;
    // dunning and the incidents send mail under `quick`, the customer notice under `noticeStep`.
    const startToClose = Math.min(
      msToNumber(quick(policy).startToCloseTimeout!),
      msToNumber(noticeStep.startToCloseTimeout!),
    );
    for (const ms of Object.values(SMTP_TIMEOUTS)) {
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThan(startToClose);
    }
    expect(SMTP_TIMEOUTS.connectionMs + SMTP_TIMEOUTS.greetingMs + SMTP_TIMEOUTS.socketMs).toBeLessThan(
      startToClose,
    );
  });

  it('a server that never greets fails the send within the greeting timeout, and the claim is released', async () => {
    const silent = await startSilentServer();
    const stuck = createSmtpMailer(silent.url);
    const msg = request(address('silent'));
    const startedAt = Date.now();
    try {
      const email = createEmailActivities({ pool, mailer: stuck, from: FROM });
      await expect(email.sendEmail(msg)).rejects.toThrow(/greeting|timeout/i);
    } finally {
      stuck.close();
      await silent.close();
    }
    const elapsed = Date.now() - startedAt;
    expect(elapsed).toBeGreaterThanOrEqual(SMTP_TIMEOUTS.greetingMs - 100);
    expect(elapsed).toBeLessThan(SMTP_TIMEOUTS.greetingMs + 5_000);
    expect(await outboxRow(pool, msg.idempotencyKey)).toMatchObject({
      status: 'failed',
      lease_expires_at: null,
    });
  }, 20_000);
});
