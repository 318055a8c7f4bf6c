// The payment processors' settings: Stripe's keys and API base, Paystack's keys, base URL, timeouts and retries.
import { z } from 'zod';
import { secret, url, type ConfigProblem, type Env } from './variables';

export interface StripeSettings {
  secretKey?: string;
  webhookSecret?: string;
  apiBase?: string;
}

export interface PaystackSettings {
  secretKey?: string;
  publicKey?: string;
  webhookSecret?: string;
  sandboxMode: boolean;
  baseUrl: string;
  timeoutSeconds: number;
  maxRetries: number;
}

const paymentSchema = z.object({
  STRIPE_SECRET_KEY: secret('sk_', 'a Stripe secret key'),
  STRIPE_WEBHOOK_SECRET: secret('whsec_', 'the signing secret of the Stripe webhook endpoint'),
  STRIPE_API_BASE: url(
    ['http:', 'https:'],
    'must be an http:// or https:// URL, e.g. http://127.0.0.1:12111',
  ).optional(),
  PAYSTACK_SECRET_KEY: secret('sk_', 'a Paystack secret key, sk_test_... or sk_live_...'),
  PAYSTACK_PUBLIC_KEY: z.string().startsWith('pk_', 'must start with pk_ (a Paystack public key)').optional(),
  PAYSTACK_WEBHOOK_SECRET: secret(null, 'the Paystack webhook secret'),
  PAYSTACK_SANDBOX_MODE: z
    .string()
    .regex(/^(true|false|1|0)$/i, 'must be true, false, 1 or 0')
    .transform((v) => /^(true|1)$/i.test(v))
    .prefault('true'),
  PAYSTACK_BASE_URL: url(['http:', 'https:'], 'must be an http:// or https:// URL').default(
    'https://api.paystack.co',
  ),
  PAYSTACK_TIMEOUT_SECONDS: z
    .string()
    .regex(/^[1-9]\d{0,5}$/, 'must be a whole number of seconds, at least 1')
    .transform(Number)
    .prefault('30'),
  PAYSTACK_MAX_RETRIES: z
    .string()
    .regex(/^(\d|10)$/, 'must be a whole number from 0 to 10')
    .transform(Number)
    .prefault('3'),
});

/** Stripe's variables, then Paystack's, in the order their problems are listed. */
export const paymentVariables = paymentSchema.shape;

/** A live key in sandbox mode, or a test key outside it, is a mistake about which Paystack the keys reach. */
export function paystackProblems(set: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const sandbox = set.PAYSTACK_SANDBOX_MODE;
  const paystackKey = set.PAYSTACK_SECRET_KEY;
  const sandboxOn = sandbox === undefined || /^(true|1)$/i.test(sandbox);
  const sandboxOff = sandbox !== undefined && /^(false|0)$/i.test(sandbox);
  if (sandboxOn && paystackKey?.startsWith('sk_live_')) {
    problems.push({
      variable: 'PAYSTACK_SANDBOX_MODE',
      problem: 'is true (the default) but PAYSTACK_SECRET_KEY is a live key; set it to false for production',
    });
  }
  if (sandboxOff && paystackKey?.startsWith('sk_test_')) {
    problems.push({
      variable: 'PAYSTACK_SANDBOX_MODE',
      problem: 'is false but PAYSTACK_SECRET_KEY is a test key',
    });
  }
  return problems;
}

export function stripeSettings(env: z.output<typeof paymentSchema>): StripeSettings {
  return {
    secretKey: env.STRIPE_SECRET_KEY,
    webhookSecret: env.STRIPE_WEBHOOK_SECRET,
    apiBase: env.STRIPE_API_BASE,
  };
}

export function paystackSettings(env: z.output<typeof paymentSchema>): PaystackSettings {
  return {
    secretKey: env.PAYSTACK_SECRET_KEY,
    publicKey: env.PAYSTACK_PUBLIC_KEY,
    webhookSecret: env.PAYSTACK_WEBHOOK_SECRET,
    sandboxMode: env.PAYSTACK_SANDBOX_MODE,
    baseUrl: env.PAYSTACK_BASE_URL,
    timeoutSeconds: env.PAYSTACK_TIMEOUT_SECONDS,
    maxRetries: env.PAYSTACK_MAX_RETRIES,
  };
}
