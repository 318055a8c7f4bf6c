// Starts stripe-mock, Stripe's official API mock, on a loopback port: the Stripe API the tests (and a demo) talk to.
import { ChildSupervisor, waitForPort } from './processes';

/**
 * The secret key billops gives the stripe-mock it starts. stripe-mock accepts any test-mode key that looks real,
 * which means letters and digits after `sk_test_`; `sk_test_stripe_mock` would be answered 401.
 */
export const STRIPE_MOCK_SECRET_KEY = 'sk_test_billopsembedded0000000000';

export async function startStripeMock(
  supervisor: ChildSupervisor,
  opts: { binPath: string; port: number; httpsPort: number; logFile: string },
): Promise<{ apiBase: string }> {
  // stripe-mock always serves HTTPS too; give it its own port so it never collides with another stripe-mock's default.
  const child = supervisor.spawn({
    name: 'stripe-mock',
    command: opts.binPath,
    args: ['-http-addr', `127.0.0.1:${opts.port}`, '-https-addr', `127.0.0.1:${opts.httpsPort}`],
    logFile: opts.logFile,
  });
  await waitForPort('127.0.0.1', opts.port, { timeoutMs: 30_000, child });
  return { apiBase: `http://127.0.0.1:${opts.port}` };
}
