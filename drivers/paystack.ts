// The Paystack side of the runbook's "Retry Payment", "Manual Payment Link" and "verify" steps: charge a saved authorization, initialize a checkout, verify a reference.
import { ApplicationFailure } from '@temporalio/activity';
import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import { interpretPaystackStatus } from './paystackOutcomes';
import type { DeclineClassification } from './stripe';

export {
  classifyPaystackGatewayResponse,
  interpretPaystackStatus,
  PAYSTACK_GATEWAY_RESPONSE_RULES,
  type PaystackOutcome,
} from './paystackOutcomes';

export interface PaystackChargeRequest {
  authorizationCode: string;
  email: string;
  /** Kobo (or the currency's minor unit): a positive integer, never a float. */
  amountMinor: number;
  currency: string;
  /** Ours, derived from the idempotency key: Paystack refuses a second transaction with it. */
  reference: string;
  metadata?: Record<string, string | number>;
}

export type PaystackChargeResult = {
  reference: string;
  gatewayResponse: string;
  /** 'verify' when the charge call hit "Duplicate Transaction Reference" and the earlier attempt's result was used. */
  answeredBy: 'charge' | 'verify';
} & (
  | { status: 'success'; amountMinor: number; currency: string; paidAt: Date | null }
  | { status: 'failed'; decline: DeclineClassification }
  | { status: 'pending'; paystackStatus: string }
);

export interface PaystackInitializeRequest {
  email: string;
  amountMinor: number;
  currency: string;
  reference: string;
  callbackUrl?: string;
  metadata?: Record<string, string | number>;
}

export type PaystackInitializeResult =
  | { status: 'initialized'; reference: string; authorizationUrl: string; accessCode: string }
  /** An earlier attempt with this reference reached Paystack; its checkout URL is not retrievable from the API. */
  | { status: 'duplicate_reference'; reference: string };

export interface PaystackTransaction {
  reference: string;
  /** success, failed, abandoned, ongoing, pending, processing, queued, reversed. */
  status: string;
  amountMinor: number;
  currency: string;
  gatewayResponse: string;
  paidAt: Date | null;
}

export interface PaystackGateway {
  chargeAuthorization(request: PaystackChargeRequest): Promise<PaystackChargeResult>;
  initializeTransaction(request: PaystackInitializeRequest): Promise<PaystackInitializeResult>;
  /** null when Paystack has no transaction with this reference. */
  verifyTransaction(reference: string): Promise<PaystackTransaction | null>;
  /**
   * Any other Paystack call (refunds, transaction lists, ...), with the same key handling and error rules:
   * network trouble, 429 and 5xx throw retryable, 401/403 throw ProcessorAuthFailed, anything else is returned.
   */
  request(method: 'GET' | 'POST', path: string, body?: object): Promise<PaystackAnswer>;
}

/** Paystack's envelope `{ status, message, data }` with the HTTP status it came with. */
export interface PaystackAnswer {
  httpStatus: number;
  envelope: { status: boolean; message: string; data?: unknown; meta?: unknown };
}

export interface PaystackGatewayOptions {
  /** PAYSTACK_SECRET_KEY. */
  secretKey: string;
  /** PAYSTACK_BASE_URL, https://api.paystack.co in production. */
  baseUrl: string;
  /** PAYSTACK_TIMEOUT_SECONDS. */
  timeoutSeconds: number;
}

// `meta` carries a list's paging (page, pageCount).
const envelopeSchema = z.object({
  status: z.boolean(),
  message: z.string(),
  data: z.unknown().optional(),
  meta: z.unknown().optional(),
});

const transactionSchema = z.object({
  reference: z.string().min(1),
  status: z.string().min(1),
  amount: z.number().int().nonnegative(),
  currency: z.string().length(3),
  gateway_response: z.string().nullish(),
  message: z.string().nullish(),
  paid_at: z.string().nullish(),
});

const initializeSchema = z.object({
  authorization_url: z.string().url(),
  access_code: z.string().min(1),
  reference: z.string().min(1),
});

type Answer = PaystackAnswer;

const DUPLICATE_REFERENCE = /duplicate transaction reference/i;
const REFERENCE_NOT_FOUND = /reference not found|transaction not found|no transaction/i;

function assertMinorUnits(amountMinor: number, what: string): void {
  if (!Number.isSafeInteger(amountMinor) || amountMinor <= 0) {
    throw ApplicationFailure.nonRetryable(
      `${what}: Paystack amounts are positive integers in minor units (kobo), got ${amountMinor}`,
      'InvalidAmount',
    );
  }
}

function toTransaction(data: z.infer<typeof transactionSchema>): PaystackTransaction {
  return {
    reference: data.reference,
    status: data.status,
    amountMinor: data.amount,
    currency: data.currency.toUpperCase(),
    gatewayResponse: data.gateway_response ?? data.message ?? '',
    paidAt: data.paid_at ? new Date(data.paid_at) : null,
  };
}

export function createPaystackGateway(options: PaystackGatewayOptions): PaystackGateway {
  const http: AxiosInstance = axios.create({
    baseURL: options.baseUrl.replace(/\/+$/, ''),
    timeout: options.timeoutSeconds * 1000,
    headers: {
      Authorization: `Bearer ${options.secretKey}`,
      'Content-Type': 'application/json',
      Accept: 'application/json',
    },
    // Every status is answered here, so nothing the caller sees is an AxiosError carrying our headers.
    validateStatus: () => true,
    maxRedirects: 0,
  });

  /** One request; network trouble, 429 and 5xx are retryable, 401/403 are a key problem, the rest is returned. */
  async function send(method: 'GET' | 'POST', path: string, body?: object): Promise<Answer> {
    let response: { status: number; data: unknown };
    try {
      response = await http.request({ method, url: path, data: body });
    } catch (error) {
      // Only the code and message: the error object also holds the request config, Authorization header included.
      const detail = axios.isAxiosError(error)
        ? `${error.code ?? 'network error'}: ${error.message}`
        : error instanceof Error
          ? error.message
          : String(error);
      throw ApplicationFailure.retryable(
        `Paystack ${method} ${path} did not answer (${detail})`,
        'ProcessorUnavailable',
      );
    }
    const parsed = envelopeSchema.safeParse(response.data);
    const message = parsed.success ? parsed.data.message : 'no Paystack message';
    if (response.status === 401 || response.status === 403) {
      throw ApplicationFailure.nonRetryable(
        `Paystack refused the secret key (HTTP ${response.status}: ${message}): check PAYSTACK_SECRET_KEY ` +
          '(sk_test_... with PAYSTACK_SANDBOX_MODE=true, sk_live_... in production)',
        'ProcessorAuthFailed',
      );
    }
    if (response.status === 429 || response.status >= 500) {
      throw ApplicationFailure.retryable(
        `Paystack ${method} ${path} answered HTTP ${response.status} (${message})`,
        'ProcessorUnavailable',
      );
    }
    if (!parsed.success) {
      throw ApplicationFailure.retryable(
        `Paystack ${method} ${path} answered HTTP ${response.status} with a body that is not { status, message, data }`,
        'ProcessorResponseInvalid',
      );
    }
    return { httpStatus: response.status, envelope: parsed.data };
  }

  function dataOf<T>(answer: Answer, schema: z.ZodType<T>, what: string): T {
    const parsed = schema.safeParse(answer.envelope.data);
    if (!parsed.success) {
      throw ApplicationFailure.retryable(
        `Paystack ${what} answered without the expected data: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
        'ProcessorResponseInvalid',
      );
    }
    return parsed.data;
  }

  function rejected(what: string, answer: Answer): ApplicationFailure {
    return ApplicationFailure.nonRetryable(
      `Paystack refused ${what} (HTTP ${answer.httpStatus}): ${answer.envelope.message}`,
      'ProcessorRejected',
    );
  }

  function chargeResult(
    transaction: PaystackTransaction,
    answeredBy: 'charge' | 'verify',
  ): PaystackChargeResult {
    const base = {
      reference: transaction.reference,
      gatewayResponse: transaction.gatewayResponse,
      answeredBy,
    };
    const outcome = interpretPaystackStatus(transaction.status, transaction.gatewayResponse);
    switch (outcome.status) {
      case 'success':
        return {
          ...base,
          status: 'success',
          amountMinor: transaction.amountMinor,
          currency: transaction.currency,
          paidAt: transaction.paidAt,
        };
      case 'failed':
        return { ...base, status: 'failed', decline: outcome.decline };
      case 'pending':
        return { ...base, status: 'pending', paystackStatus: transaction.status };
    }
  }

  const gateway: PaystackGateway = {
    async chargeAuthorization(request) {
      assertMinorUnits(request.amountMinor, `charge ${request.reference}`);
      const answer = await send('POST', '/transaction/charge_authorization', {
        authorization_code: request.authorizationCode,
        email: request.email,
        amount: request.amountMinor,
        currency: request.currency,
        reference: request.reference,
        ...(request.metadata ? { metadata: request.metadata } : {}),
      });
      if (answer.envelope.status && answer.httpStatus < 300) {
        return chargeResult(
          toTransaction(dataOf(answer, transactionSchema, 'charge_authorization')),
          'charge',
        );
      }
      if (DUPLICATE_REFERENCE.test(answer.envelope.message)) {
        // An earlier attempt reached Paystack (its answer was lost): its result is this attempt's result.
        const earlier = await gateway.verifyTransaction(request.reference);
        if (!earlier) {
          throw ApplicationFailure.retryable(
            `Paystack calls ${request.reference} a duplicate reference but cannot verify it yet`,
            'PaymentPending',
          );
        }
        return chargeResult(earlier, 'verify');
      }
      if (/authori[sz]ation/i.test(answer.envelope.message)) {
        // The saved card (authorization) is invalid or not reusable: only the customer can give a new one.
        return {
          status: 'failed',
          reference: request.reference,
          gatewayResponse: answer.envelope.message,
          answeredBy: 'charge',
          decline: { kind: 'hard', declineCode: 'authorization_invalid' },
        };
      }
      throw rejected(`charge ${request.reference}`, answer);
    },

    async initializeTransaction(request) {
      assertMinorUnits(request.amountMinor, `payment link ${request.reference}`);
      const answer = await send('POST', '/transaction/initialize', {
        email: request.email,
        amount: request.amountMinor,
        currency: request.currency,
        reference: request.reference,
        ...(request.callbackUrl ? { callback_url: request.callbackUrl } : {}),
        ...(request.metadata ? { metadata: request.metadata } : {}),
      });
      if (answer.envelope.status && answer.httpStatus < 300) {
        const data = dataOf(answer, initializeSchema, 'initialize');
        return {
          status: 'initialized',
          reference: data.reference,
          authorizationUrl: data.authorization_url,
          accessCode: data.access_code,
        };
      }
      if (DUPLICATE_REFERENCE.test(answer.envelope.message)) {
        return { status: 'duplicate_reference', reference: request.reference };
      }
      throw rejected(`payment link ${request.reference}`, answer);
    },

    async verifyTransaction(reference) {
      const answer = await send('GET', `/transaction/verify/${encodeURIComponent(reference)}`);
      if (answer.envelope.status && answer.httpStatus < 300) {
        return toTransaction(dataOf(answer, transactionSchema, 'verify'));
      }
      if (answer.httpStatus === 404 || REFERENCE_NOT_FOUND.test(answer.envelope.message)) return null;
      throw rejected(`verify ${reference}`, answer);
    },
    request: send,
  };
  return gateway;
}

/** Paystack's answer for a code it does not know or that was deactivated before: either way it cannot be charged. */
const AUTHORIZATION_GONE = /does not exist|has been deactivated|invalid authori[sz]ation|not found/i;

/**
 * Forgets a saved card (POST /customer/authorization/deactivate): Paystack refuses every later charge of the code.
 * 'already_inactive' when Paystack no longer knows the code as chargeable, so a second call is harmless.
 * 401/403 throw ProcessorAuthFailed, network trouble and 5xx throw retryable, other refusals ProcessorRejected.
 */
export async function deactivatePaystackAuthorization(
  gateway: PaystackGateway,
  authorizationCode: string,
): Promise<'deactivated' | 'already_inactive'> {
  const answer = await gateway.request('POST', '/customer/authorization/deactivate', {
    authorization_code: authorizationCode,
  });
  if (answer.envelope.status && answer.httpStatus < 300) return 'deactivated';
  if (AUTHORIZATION_GONE.test(answer.envelope.message)) return 'already_inactive';
  throw ApplicationFailure.nonRetryable(
    `Paystack refused to deactivate the saved card (HTTP ${answer.httpStatus}): ${answer.envelope.message}`,
    'ProcessorRejected',
  );
}
