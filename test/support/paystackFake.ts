// A Paystack-shaped HTTP server on loopback for tests: checks the bearer key, JSON bodies, kobo amounts and reference uniqueness as Paystack does, and records what it received.
import { createHmac, randomInt } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPaystackGateway, type PaystackGateway } from '../../drivers/paystack';

/** What a saved card (authorization code) does when charged. */
export type FakeChargeOutcome = 'success' | 'soft_decline' | 'hard_decline' | 'send_otp';

export interface FakeAuthorization {
  outcome: FakeChargeOutcome;
  /** The issuer text Paystack passes on; defaults per outcome ("Insufficient Funds", "Stolen Card, Pick-Up"). */
  gatewayResponse?: string;
  /** Milliseconds to wait before answering; the charge is recorded first, as if the answer were lost on the way. */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  /** The body exactly as sent, so a test can see that amounts were integers on the wire. */
  rawBody: string;
  status: number;
}

export interface RecordedCharge {
  reference: string;
  authorizationCode: string;
  email: string;
  /** As it appeared in the JSON body (number or digit string). */
  amount: number | string;
  currency: string;
  metadata: unknown;
  outcome: FakeChargeOutcome;
}

export interface RecordedInitialize {
  reference: string;
  email: string;
  amount: number | string;
  currency: string;
  callbackUrl: string | undefined;
  authorizationUrl: string;
}

/** A refund Paystack accepted (POST /refund); amount in kobo as it was recorded. */
export interface RecordedRefund {
  id: number;
  /** The refunded transaction's reference. */
  reference: string;
  amount: number;
  currency: string;
  merchantNote: string | undefined;
  customerNote: string | undefined;
}

/** A transaction as if Paystack had recorded it earlier (for GET /transaction and verify); amount in kobo. */
export interface FakeTransactionSeed {
  reference: string;
  amount: number;
  currency?: string;
  /** success, failed, abandoned, reversed, ...; default success. */
  status?: string;
  createdAt: Date | string;
  /** Defaults to createdAt for a successful transaction. */
  paidAt?: Date | string | null;
  gatewayResponse?: string;
  email?: string;
  metadata?: unknown;
}

export interface PaystackFake {
  /** Base URL, for PAYSTACK_BASE_URL. */
  url: string;
  secretKey: string;
  /** Records a transaction directly (a reference already known is refused), e.g. one created on an earlier day. */
  addTransaction(seed: FakeTransactionSeed): void;
  /** Sets how charges on this authorization code behave; unknown codes are refused like Paystack does. */
  authorize(authorizationCode: string, behaviour: FakeAuthorization): void;
  /** The next `count` requests answer `status` (e.g. 503) before doing anything: a Paystack outage. */
  failNext(count: number, status: number): void;
  /** Charges Paystack accepted (duplicates and invalid requests are refused and not counted). */
  charges(): RecordedCharge[];
  initializations(): RecordedInitialize[];
  /** Refunds Paystack queued (refused ones are not counted). */
  refunds(): RecordedRefund[];
  /** Authorization codes deactivated (POST /customer/authorization/deactivate), in order; refused ones not counted. */
  deactivations(): string[];
  requests(): RecordedRequest[];
  /** Forgets transactions, recordings, authorizations and pending failures. */
  reset(): void;
  close(): Promise<void>;
}

interface Transaction {
  id: number;
  reference: string;
  status: string;
  amount: number;
  currency: string;
  gatewayResponse: string;
  paidAt: string | null;
  createdAt: string;
  email: string;
  authorizationCode: string | null;
  metadata: unknown;
}

/** Paystack's refusal of a saved card that was deactivated or never existed (its errors page). */
const AUTHORIZATION_GONE_MESSAGE = 'Authorization code does not exist or has been deactivated';

const SUPPORTED_CURRENCIES = new Set(['NGN', 'GHS', 'ZAR', 'KES', 'USD', 'XOF', 'EGP']);

const DEFAULT_GATEWAY_RESPONSE: Record<FakeChargeOutcome, string> = {
  success: 'Approved',
  soft_decline: 'Insufficient Funds',
  hard_decline: 'Stolen Card, Pick-Up',
  send_otp: 'Kindly enter the OTP sent to your phone',
};

/** Paystack's x-paystack-signature: HMAC-SHA512 of the raw body, hex, keyed with the secret key. */
export function signPaystackWebhook(body: string, secret: string): string {
  return createHmac('sha512', secret).update(body).digest('hex');
}

class RequestProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Paystack accepts an amount as a JSON integer or a string of digits, in the minor unit; anything else is refused. */
function kobo(value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value;
  if (typeof value === 'string' && /^\d+$/.test(value) && Number(value) > 0) return Number(value);
  throw new RequestProblem(400, 'Invalid Amount Sent');
}

function requiredString(body: Record<string, unknown>, field: string, message: string): string {
  const value = body[field];
  if (typeof value !== 'string' || value.trim() === '') throw new RequestProblem(400, message);
  return value;
}

function currencyOf(body: Record<string, unknown>): string {
  const currency = body.currency === undefined ? 'NGN' : body.currency;
  if (typeof currency !== 'string' || !SUPPORTED_CURRENCIES.has(currency.toUpperCase())) {
    throw new RequestProblem(400, 'Currency not supported by merchant');
  }
  return currency.toUpperCase();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startPaystackFake(opts: { secretKey?: string } = {}): Promise<PaystackFake> {
  const secretKey = opts.secretKey ?? 'sk_test_paystackfake0000000000000000000000';
  const transactions = new Map<string, Transaction>();
  const authorizations = new Map<string, FakeAuthorization>();
  let charges: RecordedCharge[] = [];
  let initializations: RecordedInitialize[] = [];
  let refunds: RecordedRefund[] = [];
  let deactivations: string[] = [];
  let requests: RecordedRequest[] = [];
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  // Paystack's ids are unique across its whole system; each fake starts at its own random base, so ids from two
  // fakes in one test run (one shared database) never collide.
  let nextId = 1_000_000 + randomInt(0, 1_000_000) * 1_000;
  let baseUrl = '';

  function newTransaction(
    fields: Omit<Transaction, 'id' | 'createdAt' | 'paidAt' | 'gatewayResponse' | 'status'>,
  ): Transaction {
    if (transactions.has(fields.reference)) throw new RequestProblem(400, 'Duplicate Transaction Reference');
    const tx: Transaction = {
      ...fields,
      id: nextId++,
      status: 'pending',
      gatewayResponse: '',
      paidAt: null,
      createdAt: new Date().toISOString(),
    };
    transactions.set(tx.reference, tx);
    return tx;
  }

  function transactionData(tx: Transaction): Record<string, unknown> {
    return {
      id: tx.id,
      domain: 'test',
      status: tx.status,
      reference: tx.reference,
      amount: tx.amount,
      currency: tx.currency,
      gateway_response: tx.gatewayResponse,
      message: null,
      paid_at: tx.paidAt,
      created_at: tx.createdAt,
      channel: 'card',
      metadata: tx.metadata ?? '',
      customer: { email: tx.email },
      authorization: tx.authorizationCode
        ? { authorization_code: tx.authorizationCode, reusable: true }
        : null,
    };
  }

  async function chargeAuthorization(body: Record<string, unknown>): Promise<[number, unknown]> {
    const authorizationCode = requiredString(body, 'authorization_code', 'Authorization code is required');
    const email = requiredString(body, 'email', 'Email is required');
    const amount = kobo(body.amount);
    const currency = currencyOf(body);
    if (deactivations.includes(authorizationCode)) {
      throw new RequestProblem(400, AUTHORIZATION_GONE_MESSAGE);
    }
    const behaviour = authorizations.get(authorizationCode);
    if (!behaviour) throw new RequestProblem(400, 'Invalid Authorization Code');
    const reference =
      body.reference === undefined ? `T${nextId}` : requiredString(body, 'reference', 'Invalid reference');
    const tx = newTransaction({
      reference,
      amount,
      currency,
      email,
      authorizationCode,
      metadata: body.metadata,
    });
    charges.push({
      reference,
      authorizationCode,
      email,
      amount: body.amount as number | string,
      currency,
      metadata: body.metadata,
      outcome: behaviour.outcome,
    });
    tx.gatewayResponse = behaviour.gatewayResponse ?? DEFAULT_GATEWAY_RESPONSE[behaviour.outcome];
    if (behaviour.outcome === 'success') {
      tx.status = 'success';
      tx.paidAt = new Date().toISOString();
    } else {
      tx.status = behaviour.outcome === 'send_otp' ? 'send_otp' : 'failed';
    }
    if (behaviour.delayMs) await sleep(behaviour.delayMs);
    return [200, { status: true, message: 'Charge attempted', data: transactionData(tx) }];
  }

  function initialize(body: Record<string, unknown>): [number, unknown] {
    const email = requiredString(body, 'email', 'Email is required');
    const amount = kobo(body.amount);
    const currency = currencyOf(body);
    const reference =
      body.reference === undefined ? `T${nextId}` : requiredString(body, 'reference', 'Invalid reference');
    const tx = newTransaction({
      reference,
      amount,
      currency,
      email,
      authorizationCode: null,
      metadata: body.metadata,
    });
    tx.status = 'abandoned';
    tx.gatewayResponse = 'The transaction was not completed';
    const accessCode = `ac_${tx.id.toString(36)}`;
    const authorizationUrl = `${baseUrl}/checkout/${accessCode}`;
    initializations.push({
      reference,
      email,
      amount: body.amount as number | string,
      currency,
      callbackUrl: typeof body.callback_url === 'string' ? body.callback_url : undefined,
      authorizationUrl,
    });
    return [
      200,
      {
        status: true,
        message: 'Authorization URL created',
        data: { authorization_url: authorizationUrl, access_code: accessCode, reference },
      },
    ];
  }

  /**
   * GET /transaction: newest first, offset-paginated with perPage (default 50) and page (default 1), filtered by
   * created_at from..to (both inclusive) and status; meta as Paystack's (total, total_volume, skipped, perPage, page,
   * pageCount).
   */
  function list(query: URLSearchParams): [number, unknown] {
    const whole = (name: string, fallback: number): number => {
      const raw = query.get(name);
      if (raw === null) return fallback;
      if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new RequestProblem(400, `Invalid ${name} value`);
      return Number(raw);
    };
    const instant = (name: string): number | undefined => {
      const raw = query.get(name);
      if (raw === null) return undefined;
      const ms = Date.parse(raw);
      if (Number.isNaN(ms)) throw new RequestProblem(400, `Invalid ${name} date`);
      return ms;
    };
    const perPage = whole('perPage', 50);
    const page = whole('page', 1);
    const from = instant('from');
    const to = instant('to');
    const status = query.get('status');
    const selected = [...transactions.values()]
      .filter((tx) => {
        const at = Date.parse(tx.createdAt);
        return (from === undefined || at >= from) && (to === undefined || at <= to);
      })
      .filter((tx) => status === null || tx.status === status)
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id - a.id);
    const skipped = (page - 1) * perPage;
    const data = selected
      .slice(skipped, skipped + perPage)
      .map((tx) => ({ ...transactionData(tx), createdAt: tx.createdAt }));
    return [
      200,
      {
        status: true,
        message: 'Transactions retrieved',
        data,
        meta: {
          total: selected.length,
          total_volume: selected
            .filter((tx) => tx.status === 'success')
            .reduce((sum, tx) => sum + tx.amount, 0),
          skipped,
          perPage,
          page,
          pageCount: Math.ceil(selected.length / perPage),
        },
      },
    ];
  }

  function addTransaction(seed: FakeTransactionSeed): void {
    if (!Number.isSafeInteger(seed.amount) || seed.amount <= 0) {
      throw new Error(`a seeded Paystack amount is a positive integer in kobo, got ${seed.amount}`);
    }
    const iso = (value: Date | string) => new Date(value).toISOString();
    const status = seed.status ?? 'success';
    const tx = newTransaction({
      reference: seed.reference,
      amount: seed.amount,
      currency: (seed.currency ?? 'NGN').toUpperCase(),
      email: seed.email ?? 'customer@paystack.test',
      authorizationCode: null,
      metadata: seed.metadata,
    });
    tx.status = status;
    tx.createdAt = iso(seed.createdAt);
    const paidWhenCreated = status === 'success' ? tx.createdAt : null;
    tx.paidAt = seed.paidAt === undefined ? paidWhenCreated : seed.paidAt && iso(seed.paidAt);
    tx.gatewayResponse = seed.gatewayResponse ?? (status === 'success' ? 'Approved' : 'Declined');
  }

  function refundData(refund: RecordedRefund, tx: Transaction): Record<string, unknown> {
    return {
      id: refund.id,
      integration: 1,
      domain: 'test',
      transaction: { id: tx.id, reference: tx.reference, amount: tx.amount, currency: tx.currency },
      dispute: null,
      amount: refund.amount,
      deducted_amount: 0,
      currency: refund.currency,
      channel: 'card',
      fully_deducted: false,
      refunded_by: 'billops@paystack.test',
      expected_at: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      merchant_note: refund.merchantNote ?? null,
      customer_note: refund.customerNote ?? null,
      status: 'pending',
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
    };
  }

  /** POST /refund: a successful transaction (by reference or id), at most what is left of it, in kobo. */
  function refund(body: Record<string, unknown>): [number, unknown] {
    const named = body.transaction;
    if ((typeof named !== 'string' && typeof named !== 'number') || String(named).trim() === '') {
      throw new RequestProblem(400, 'Transaction reference or id is required');
    }
    const tx =
      transactions.get(String(named)) ??
      [...transactions.values()].find((t) => String(t.id) === String(named));
    if (!tx) throw new RequestProblem(404, 'Transaction not found');
    if (tx.status !== 'success')
      throw new RequestProblem(400, 'Cannot refund a transaction that was not successful');
    const refunded = refunds
      .filter((r) => r.reference === tx.reference)
      .reduce((sum, r) => sum + r.amount, 0);
    const left = tx.amount - refunded;
    const amount = body.amount === undefined ? left : kobo(body.amount);
    if (amount > left)
      throw new RequestProblem(400, 'Refund amount cannot be more than the transaction amount left');
    if (body.currency !== undefined && currencyOf(body) !== tx.currency) {
      throw new RequestProblem(400, 'Currency does not match the transaction currency');
    }
    const note = (field: string) => (typeof body[field] === 'string' ? body[field] : undefined);
    const recorded: RecordedRefund = {
      id: nextId++,
      reference: tx.reference,
      amount,
      currency: tx.currency,
      merchantNote: note('merchant_note'),
      customerNote: note('customer_note'),
    };
    refunds.push(recorded);
    return [
      200,
      { status: true, message: 'Refund has been queued for processing', data: refundData(recorded, tx) },
    ];
  }

  /** GET /refund: the refunds of one transaction (`transaction`: its id or reference; `reference` as some SDKs send). */
  function listRefunds(query: URLSearchParams): [number, unknown] {
    const named = query.get('transaction') ?? query.get('reference');
    const selected = [...transactions.values()]
      .filter((tx) => named === null || tx.reference === named || String(tx.id) === named)
      .flatMap((tx) => refunds.filter((r) => r.reference === tx.reference).map((r) => refundData(r, tx)));
    return [200, { status: true, message: 'Refunds retrieved', data: selected }];
  }

  /**
   * POST /customer/authorization/deactivate: the saved card can never be charged again. A code Paystack does not know,
   * or one deactivated before, is refused with Paystack's message.
   */
  function deactivateAuthorization(body: Record<string, unknown>): [number, unknown] {
    const code = requiredString(body, 'authorization_code', 'Authorization code is required');
    if (!authorizations.has(code) || deactivations.includes(code)) {
      throw new RequestProblem(400, AUTHORIZATION_GONE_MESSAGE);
    }
    deactivations.push(code);
    return [200, { status: true, message: 'Authorization has been deactivated' }];
  }

  function verify(reference: string): [number, unknown] {
    const tx = transactions.get(reference);
    if (!tx) return [400, { status: false, message: 'Transaction reference not found' }];
    return [200, { status: true, message: 'Verification successful', data: transactionData(tx) }];
  }

  async function route(req: IncomingMessage, rawBody: string): Promise<[number, unknown]> {
    if (failures.count > 0) {
      failures = { ...failures, count: failures.count - 1 };
      return [failures.status, { status: false, message: 'An error occurred' }];
    }
    if (req.headers.authorization !== `Bearer ${secretKey}`)
      return [401, { status: false, message: 'Invalid key' }];
    const path = new URL(req.url ?? '/', 'http://paystack.invalid').pathname;
    if (req.method === 'GET' && path.startsWith('/transaction/verify/')) {
      return verify(decodeURIComponent(path.slice('/transaction/verify/'.length)));
    }
    if (req.method === 'GET' && path === '/transaction') {
      return list(new URL(req.url ?? '/', 'http://paystack.invalid').searchParams);
    }
    if (req.method === 'GET' && path === '/refund') {
      return listRefunds(new URL(req.url ?? '/', 'http://paystack.invalid').searchParams);
    }
    if (req.method !== 'POST') return [404, { status: false, message: 'Route not found' }];
    if (!(req.headers['content-type'] ?? '').includes('application/json')) {
      return [400, { status: false, message: 'Content-Type must be application/json' }];
    }
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      return [400, { status: false, message: 'Invalid JSON body' }];
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return [400, { status: false, message: 'Invalid JSON body' }];
    }
    // JSON.parse reads 1500.0 as 1500; Paystack sees the decimal point on the wire and refuses it.
    if (/"amount"\s*:\s*"?-?\d*\.\d*/.test(rawBody))
      return [400, { status: false, message: 'Invalid Amount Sent' }];
    const fields = body as Record<string, unknown>;
    if (path === '/transaction/charge_authorization') return chargeAuthorization(fields);
    if (path === '/transaction/initialize') return initialize(fields);
    if (path === '/refund') return refund(fields);
    if (path === '/customer/authorization/deactivate') return deactivateAuthorization(fields);
    return [404, { status: false, message: 'Route not found' }];
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const rawBody = await readBody(req);
      let status: number;
      let payload: unknown;
      try {
        [status, payload] = await route(req, rawBody);
      } catch (error) {
        if (!(error instanceof RequestProblem)) throw error;
        [status, payload] = [error.status, { status: false, message: error.message }];
      }
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        rawBody,
        status,
      });
      if (res.destroyed) return;
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(payload));
    })().catch((error: unknown) => {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ status: false, message: String(error) }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    secretKey,
    addTransaction,
    authorize: (code, behaviour) => void authorizations.set(code, behaviour),
    failNext: (count, status) => {
      failures = { count, status };
    },
    charges: () => [...charges],
    initializations: () => [...initializations],
    refunds: () => [...refunds],
    deactivations: () => [...deactivations],
    requests: () => [...requests],
    reset: () => {
      transactions.clear();
      authorizations.clear();
      charges = [];
      initializations = [];
      refunds = [];
      deactivations = [];
      requests = [];
      failures = { count: 0, status: 503 };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** billops' Paystack gateway pointed at `fake`, waiting at most five seconds for an answer. */
export function fakePaystackGateway(fake: Pick<PaystackFake, 'url' | 'secretKey'>): PaystackGateway {
  return createPaystackGateway({ secretKey: fake.secretKey, baseUrl: fake.url, timeoutSeconds: 5 });
}
