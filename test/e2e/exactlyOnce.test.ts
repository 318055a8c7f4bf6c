// Exactly once: a worker killed (SIGKILL) in the middle of a charge, and the processors, PostgreSQL and the SMTP server still see every outside effect once.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { Pool } from 'pg';
import { createEmailActivities } from '../../activities/email';
import { paymentReference } from '../../activities/payments';
import { dunningWorkflowId, startOrJoinDunning } from '../../temporal/dunning';
import { readCaughtMail, type CaughtMail } from '../../runtime/mailCatcher';
import { createPool } from '../../db/pool';
import type { DunningStatus, FailedInvoice } from '../../domain/dunning';
import { defaultPolicy } from '../../domain/policy';
import { renderTemplate } from '../../domain/templates';
import { dunningStatusQuery } from '../../workflows/definitions';
import type { dunningWorkflow } from '../../workflows/dunning';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { startPaystackFake, type PaystackFake } from '../support/paystackFake';
import { testEnv } from '../support/testRuntime';
import { TEST_PORTAL_URL, testWorkerDependencies } from '../support/workerDeps';

const ROOT = resolve(__dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const WORKER_SCRIPT = join(ROOT, 'test/support/workerProcess.ts');
const STRIPE_TEST_KEY = 'sk_test_billopsexactlyonce000000000';
/** Long enough that the worker is surely killed before the processor answers; the 30 s activity timeout dominates anyway. */
const ANSWER_DELAY_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `probe` gives a value, at most `timeoutMs`. */
async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

/** The promise's value, or an error naming `what` once `timeoutMs` has passed. */
async function within<T>(timeoutMs: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Worker processes ----

interface WorkerProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<void>;
}

/** Runs test/support/workerProcess.ts under tsx in its own process group, its output in `logFile`. */
function spawnWorker(name: string, env: NodeJS.ProcessEnv, logDir: string): WorkerProcess {
  const logFile = join(logDir, `${name}.log`);
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [TSX, WORKER_SCRIPT], {
    cwd: ROOT,
    env,
    stdio: ['ignore', out, out],
    // tsx runs the script in a second node process: killing the group reaches both.
    detached: true,
  });
  closeSync(out);
  const exited = new Promise<void>((done) => {
    child.once('exit', () => done());
    child.once('error', () => done());
  });
  return { name, child, logFile, exited };
}

function logOf(worker: WorkerProcess): string {
  return existsSync(worker.logFile) ? readFileSync(worker.logFile, 'utf8') : '';
}

async function waitUntilReady(worker: WorkerProcess): Promise<void> {
  await eventually(
    `${worker.name} printing "worker ready"`,
    () => {
      if (worker.child.exitCode !== null) {
        throw new Error(`${worker.name} exited (${worker.child.exitCode}) before it was ready`);
      }
      return /worker ready pid=\d+/.test(logOf(worker)) ? true : undefined;
    },
    30_000,
  );
}

/** kill -9, for the whole process group (tsx and the node process running the worker). */
async function killWorker(worker: WorkerProcess): Promise<void> {
  const pid = worker.child.pid;
  if (pid === undefined || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
  await within(5_000, `${worker.name} exiting after SIGKILL`, worker.exited);
}

// ---- A recording proxy in front of stripe-mock that holds the first answer to /pay ----

interface StripeCall {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  /** Whether the caller received the answer (false when it was killed while the answer was held). */
  answered: boolean;
}

async function startStripeProxy(
  target: string,
  holdFirstPayMs: number,
): Promise<{ url: string; calls: StripeCall[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const calls: StripeCall[] = [];
  let payHeld = false;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const header = req.headers['idempotency-key'];
    const call: StripeCall = {
      method: req.method ?? '',
      path: req.url ?? '',
      idempotencyKey: Array.isArray(header) ? header[0] : header,
      answered: false,
    };
    calls.push(call);
    const hold = !payHeld && call.method === 'POST' && /\/pay$/.test(call.path);
    if (hold) payHeld = true;
    res.on('error', () => undefined);
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          // Stripe has acted on the request; its answer is lost if the caller dies while it is held.
          void sleep(hold ? holdFirstPayMs : 0).then(() => {
            if (res.destroyed || !res.socket || res.socket.destroyed) return;
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(chunks));
            call.answered = true;
          });
        });
      },
    );
    forward.on('error', () => {
      if (res.destroyed) return;
      res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

// ---- Rows and mail ----

async function transactionRows(pool: Pool, invoiceId: string) {
  const { rows } = await pool.query<{ reference: string; status: string; failure_code: string | null }>(
    'SELECT reference, status, failure_code FROM payment_transactions WHERE invoice_id = $1 ORDER BY created_at',
    [invoiceId],
  );
  return rows;
}

async function outboxRows(pool: Pool, tenantId: string) {
  const { rows } = await pool.query<{ idempotency_key: string; status: string; template: string }>(
    'SELECT idempotency_key, status, template FROM email_outbox WHERE tenant_id = $1 ORDER BY created_at',
    [tenantId],
  );
  return rows;
}

function mailTo(address: string): CaughtMail[] {
  return readCaughtMail(testEnv('mailDir')).filter((m) => m.to.includes(address));
}

describe('a worker killed with SIGKILL in the middle of a charge', () => {
  const taskQueue = `exactly-once-${randomUUID()}`;
  const logDir = mkdtempSync(join(tmpdir(), 'billops-exactly-once-'));
  const workers: WorkerProcess[] = [];
  let failed = false;
  let pool: Pool;
  let client: Client;
  let paystack: PaystackFake;
  let stripe: Awaited<ReturnType<typeof startStripeProxy>>;

  let paystackTenant: TestTenant;
  let paystackInvoice: FailedInvoice;
  let paystackHandle: WorkflowHandle<typeof dunningWorkflow>;
  let paystackRunId: string;
  let paystackRetryKey: string;

  let stripeTenant: TestTenant;
  let stripeInvoice: FailedInvoice;
  const stripeInvoiceId = `in_exactlyonce${randomUUID().slice(0, 8)}`;
  let stripeHandle: WorkflowHandle<typeof dunningWorkflow>;
  let stripeRunId: string;
  let stripeRetryKey: string;

  /** Prints the workers' logs (Temporal SDK output included) when something failed, then rethrows. */
  async function showingWorkerLogs(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (err) {
      failed = true;
      for (const worker of workers) console.log(`---- ${worker.logFile} ----\n${logOf(worker)}`);
      throw err;
    }
  }

  function startWorker(name: string): WorkerProcess {
    const worker = spawnWorker(
      name,
      {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        TEMPORAL_ADDRESS: testEnv('temporalAddress'),
        BILLOPS_TASK_QUEUE: taskQueue,
        DATABASE_URL: testEnv('databaseUrl'),
        SMTP_URL: testEnv('smtpUrl'),
        PAYSTACK_BASE_URL: paystack.url,
        PAYSTACK_SECRET_KEY: paystack.secretKey,
        STRIPE_API_BASE: stripe.url,
        STRIPE_SECRET_KEY: STRIPE_TEST_KEY,
        DECISIONS_LOG_PATH: join(logDir, 'DECISIONS.log'),
        BILLOPS_BILLING_PORTAL_URL: TEST_PORTAL_URL,
        BILLOPS_MAIL_FROM: 'billops <billing@billops.test>',
        BILLOPS_TEST_WORKFLOW_BUNDLE: testEnv('workflowBundle'),
      },
      logDir,
    );
    workers.push(worker);
    return worker;
  }

  const startLifecycle = (tenant: TestTenant, invoice: FailedInvoice, processor: 'stripe' | 'paystack') =>
    startOrJoinDunning(client, taskQueue, {
      tenantId: tenant.id,
      tier: tenant.tier,
      processor,
      invoice,
      policy: defaultPolicy,
      billingPortalUrl: TEST_PORTAL_URL,
    });

  /** The key the workflow gives a step: workflow id, first run id, step (a fresh lifecycle's run is its first). */
  const stepKey = (tenant: TestTenant, runId: string, step: string) =>
    `${dunningWorkflowId(tenant.id)}/${runId}/${step}`;

  beforeAll(
    () =>
      showingWorkerLogs(async () => {
        pool = createPool(testEnv('databaseUrl'), { max: 2 });
        client = new Client({
          connection: await Connection.connect({ address: testEnv('temporalAddress') }),
        });
        paystack = await startPaystackFake();
        stripe = await startStripeProxy(testEnv('stripeApiBase'), ANSWER_DELAY_MS);

        // Enterprise tenants: their first step after retry-1 is days away (a Pro tenant's warning is due at once).
        // Paystack: a saved card that declines softly ("Insufficient Funds"), answering only after a delay.
        const authorization = `AUTH_${randomUUID().slice(0, 8)}`;
        paystack.authorize(authorization, { outcome: 'soft_decline', delayMs: ANSWER_DELAY_MS });
        paystackTenant = await insertTenant(pool, 'enterprise', {
          processor: 'paystack',
          paystackAuthorization: authorization,
        });
        paystackInvoice = await insertOpenInvoice(pool, paystackTenant.id, { processor: 'paystack' });
        paystackHandle = await startLifecycle(paystackTenant, paystackInvoice, 'paystack');
        paystackRunId = (await paystackHandle.describe()).runId;
        paystackRetryKey = stepKey(paystackTenant, paystackRunId, `retry-1/${paystackInvoice.invoiceId}`);

        // Stripe: stripe-mock pays any invoice id; the proxy holds its first answer to /pay.
        stripeTenant = await insertTenant(pool, 'enterprise', { processor: 'stripe' });
        stripeInvoice = await insertOpenInvoice(pool, stripeTenant.id, {
          processor: 'stripe',
          processorInvoiceId: stripeInvoiceId,
        });
        stripeHandle = await startLifecycle(stripeTenant, stripeInvoice, 'stripe');
        stripeRunId = (await stripeHandle.describe()).runId;
        stripeRetryKey = stepKey(stripeTenant, stripeRunId, `retry-1/${stripeInvoice.invoiceId}`);

        const workerA = startWorker('worker-a');
        await waitUntilReady(workerA);

        // Both charges have reached their processor, and neither answer has come back: the step is in flight.
        const paystackReference = paymentReference(paystackRetryKey);
        await eventually(
          'both retry-1 charges reaching their processor',
          () =>
            paystack.charges().some((c) => c.reference === paystackReference) &&
            stripe.calls.some((c) => c.path === `/v1/invoices/${stripeInvoiceId}/pay`)
              ? true
              : undefined,
          20_000,
        );
        expect(paystack.requests().filter((r) => r.path === '/transaction/charge_authorization')).toEqual([]);
        expect(stripe.calls.filter((c) => c.answered && c.path.endsWith('/pay'))).toEqual([]);

        await killWorker(workerA);
        expect(workerA.child.signalCode).toBe('SIGKILL');
        await waitUntilReady(startWorker('worker-b'));
      }),
    80_000,
  );

  afterAll(async () => {
    for (const handle of [paystackHandle, stripeHandle]) {
      await handle?.terminate('exactly-once test finished').catch(() => undefined);
    }
    for (const worker of workers) await killWorker(worker);
    await Promise.all([client?.connection.close(), pool?.end(), paystack?.close(), stripe?.close()]);
    if (!failed) rmSync(logDir, { recursive: true, force: true });
    else console.log(`worker logs kept in ${logDir}`);
  });

  it(
    'Paystack: the retry after the activity timeout verifies the first charge; one charge, one row, one failure notice',
    () =>
      showingWorkerLogs(async () => {
        const noticeKey = stepKey(paystackTenant, paystackRunId, 'payment-failure-notice');
        // The 30 s activity timeout must pass before worker B retries the charge, then the notice goes out.
        const status = await eventually<DunningStatus>(
          'worker B finishing retry-1 and sending the payment failure notice',
          async () => {
            if (mailTo(paystackTenant.billingEmail).length === 0) return undefined;
            const s = await paystackHandle.query(dunningStatusQuery);
            return s.timeline.some((e) => e.event === 'retry-1') ? s : undefined;
          },
          75_000,
        );
        expect(status.phase).toBe('retrying');
        expect(status.nextAction?.step).toBe('retry-2');
        expect(status.timeline.find((e) => e.event === 'retry-1')?.detail).toBe(
          `${paystackInvoice.invoiceId}: failed (Paystack declined the charge (insufficient_funds): Insufficient Funds)`,
        );

        // What reached Paystack is the reference of dunning-<tenant>/<run>/retry-1/<invoice>, readable as the lifecycle's.
        const reference = paymentReference(paystackRetryKey);
        expect(reference.startsWith(`dunning-${paystackTenant.id}-`)).toBe(true);

        // Paystack accepted one charge; worker B's charge met "Duplicate Transaction Reference" and verified it.
        expect(paystack.charges().map((c) => ({ reference: c.reference, metadata: c.metadata }))).toEqual([
          {
            reference,
            metadata: { tenant_id: paystackTenant.id, invoice_id: paystackInvoice.invoiceId, attempt: 1 },
          },
        ]);
        const calls = paystack
          .requests()
          .filter(
            (r) =>
              r.path === '/transaction/charge_authorization' || r.path.startsWith('/transaction/verify/'),
          )
          .map((r) => `${r.method} ${r.path} ${r.status}`);
        expect(calls).toEqual([
          'POST /transaction/charge_authorization 200',
          'POST /transaction/charge_authorization 400',
          `GET /transaction/verify/${reference} 200`,
        ]);
        expect(paystack.initializations()).toHaveLength(1);

        // One row for the charge (the payment link has its own reference).
        const rows = await transactionRows(pool, paystackInvoice.invoiceId);
        expect(rows.filter((r) => r.reference === reference)).toEqual([
          { reference, status: 'failed', failure_code: 'insufficient_funds' },
        ]);
        expect(rows).toHaveLength(2);

        // One outbox row, and one email at the SMTP server, carrying the step's key.
        expect(await outboxRows(pool, paystackTenant.id)).toEqual([
          { idempotency_key: noticeKey, status: 'sent', template: 'paymentFailureNotice' },
        ]);
        const mail = mailTo(paystackTenant.billingEmail);
        expect(mail.map((m) => m.subject)).toEqual([`Payment Issue - Account #${paystackTenant.id}`]);
        expect(mail[0]?.headers['x-billops-idempotency-key']).toBe(noticeKey);
      }),
    90_000,
  );

  it(
    'Stripe: the retry sends /pay again under the same Idempotency-Key; one success row, one recovery email',
    () =>
      showingWorkerLogs(async () => {
        const outcome = await within(75_000, 'the Stripe lifecycle recovering', stripeHandle.result());
        expect(outcome).toEqual({
          tenantId: stripeTenant.id,
          phase: 'recovered',
          paidInvoices: [stripeInvoice.invoiceId],
        });

        // stripe-mock keeps no state, so the proof is the key: Stripe replays the first answer for a key it has seen.
        const reference = paymentReference(stripeRetryKey);
        expect(reference.startsWith(`dunning-${stripeTenant.id}-`)).toBe(true);
        const pays = stripe.calls.filter((c) => c.path === `/v1/invoices/${stripeInvoiceId}/pay`);
        expect(pays).toEqual([
          {
            method: 'POST',
            path: `/v1/invoices/${stripeInvoiceId}/pay`,
            idempotencyKey: reference,
            answered: false,
          },
          {
            method: 'POST',
            path: `/v1/invoices/${stripeInvoiceId}/pay`,
            idempotencyKey: reference,
            answered: true,
          },
        ]);

        expect(await transactionRows(pool, stripeInvoice.invoiceId)).toEqual([
          { reference, status: 'success', failure_code: null },
        ]);
        const { rows } = await pool.query<{ status: string }>('SELECT status FROM invoices WHERE id = $1', [
          stripeInvoice.invoiceId,
        ]);
        expect(rows).toEqual([{ status: 'paid' }]);

        const recoveredKey = stepKey(stripeTenant, stripeRunId, 'payment-recovered');
        expect(await outboxRows(pool, stripeTenant.id)).toEqual([
          { idempotency_key: recoveredKey, status: 'sent', template: 'paymentRecovered' },
        ]);
        const mail = mailTo(stripeTenant.billingEmail);
        expect(mail.map((m) => m.subject)).toEqual([`Payment Received - Account #${stripeTenant.id}`]);
        expect(mail[0]?.headers['x-billops-idempotency-key']).toBe(recoveredKey);
      }),
    90_000,
  );
});

describe('sendEmail run again by a freshly built worker after a crash past its commit', () => {
  let pool: Pool;

  beforeAll(() => {
    pool = createPool(testEnv('databaseUrl'), { max: 2 });
  });
  afterAll(() => pool.end());

  /** Email activities as two separate worker processes would build them: their own pool and SMTP connection. */
  function twoWorkers() {
    const deps = [testWorkerDependencies(), testWorkerDependencies()];
    const activities = deps.map((d) =>
      createEmailActivities({ pool: d.pool, mailer: d.mailer, from: d.mailFrom }),
    );
    return { activities, close: () => Promise.all(deps.map((d) => d.close())) };
  }

  /** The payment failure notice of a fresh tenant, under a key shaped like the lifecycle's. */
  async function notice() {
    const tenant = await insertTenant(pool, 'pro');
    const idempotencyKey = `dunning-${tenant.id}/${randomUUID()}/payment-failure-notice`;
    const message = renderTemplate('paymentFailureNotice', {
      tenant_id: tenant.id,
      invoice_id: 'in_exactlyonce',
      grace_days: 7,
      billing_portal_url: TEST_PORTAL_URL,
    });
    return {
      tenant,
      idempotencyKey,
      tenantId: tenant.id,
      to: tenant.billingEmail,
      template: 'paymentFailureNotice',
      ...message,
    };
  }

  it('the second worker finds the outbox row sent and sends nothing', async () => {
    const { activities, close } = twoWorkers();
    try {
      const { tenant, ...msg } = await notice();

      const first = await activities[0]!.sendEmail(msg);
      const again = await activities[1]!.sendEmail(msg);

      expect(first.sentNow).toBe(true);
      expect(again).toEqual({ ...first, sentNow: false });
      expect(mailTo(tenant.billingEmail)).toHaveLength(1);
      expect(await outboxRows(pool, tenant.id)).toEqual([
        { idempotency_key: msg.idempotencyKey, status: 'sent', template: 'paymentFailureNotice' },
      ]);
    } finally {
      await close();
    }
  });

  it('two workers running the same key at once send one email: the outbox row lock serialises them', async () => {
    const { activities, close } = twoWorkers();
    try {
      const { tenant, ...msg } = await notice();

      const results = await Promise.all(activities.map((a) => a.sendEmail(msg)));

      expect(results.map((r) => r.sentNow).sort()).toEqual([false, true]);
      expect(mailTo(tenant.billingEmail)).toHaveLength(1);
      expect(await outboxRows(pool, tenant.id)).toHaveLength(1);
    } finally {
      await close();
    }
  });
});
