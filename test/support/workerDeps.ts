// Worker dependencies for tests: the shared PostgreSQL and SMTP servers, a DECISIONS.log in a temp dir, chosen gateways.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PaymentGateways } from '../../activities/payments';
import { createWorkerDependencies, type WorkerDependencies } from '../../workers/dependencies';
import { testEnv } from './testRuntime';

export const TEST_PORTAL_URL = 'https://billing.test/portal';

export function testWorkerDependencies(opts: { gateways?: PaymentGateways } = {}): WorkerDependencies {
  return createWorkerDependencies({
    databaseUrl: testEnv('databaseUrl'),
    smtpUrl: testEnv('smtpUrl'),
    mailFrom: 'billops <billing@billops.test>',
    billingPortalUrl: TEST_PORTAL_URL,
    decisionsLogPath: join(mkdtempSync(join(tmpdir(), 'billops-decisions-')), 'DECISIONS.log'),
    gateways: opts.gateways,
  });
}
