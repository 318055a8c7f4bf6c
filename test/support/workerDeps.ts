// Worker dependencies for tests: the shared PostgreSQL and SMTP servers, a DECISIONS.log in a temp dir, chosen gateways.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { IncidentDependencies } from '../../activities';
import type { PaymentGateways } from '../../activities/payments';
import { createWorkerDependencies, type WorkerDependencies } from '../../workers/dependencies';
import { testEnv } from './testRuntime';

export const TEST_PORTAL_URL = 'https://billing.test/portal';

export const TEST_OPS_EMAIL = 'billing-ops@billops.test';

export interface TestWorkerOptions {
  gateways?: PaymentGateways;
  /** Overrides of the incident wiring: pager and status-page receivers, hooks, the backup processor. */
  incidents?: Partial<IncidentDependencies>;
  /** A suite's private database (see privateDatabase) instead of the shared one. */
  databaseUrl?: string;
  /** For activities that signal or start workflows. */
  temporalClient?: Client;
}

export function testWorkerDependencies(opts: TestWorkerOptions = {}): WorkerDependencies {
  const scratch = mkdtempSync(join(tmpdir(), 'billops-decisions-'));
  return createWorkerDependencies({
    databaseUrl: opts.databaseUrl ?? testEnv('databaseUrl'),
    smtpUrl: testEnv('smtpUrl'),
    mailFrom: 'billops <billing@billops.test>',
    billingPortalUrl: TEST_PORTAL_URL,
    decisionsLogPath: join(scratch, 'DECISIONS.log'),
    gateways: opts.gateways,
    incidents: {
      paging: { timeoutMs: 5_000 },
      opsEmail: TEST_OPS_EMAIL,
      reportsDir: join(scratch, 'incidents'),
      ...opts.incidents,
    },
    temporalClient: opts.temporalClient,
  });
}

/** Options of the helpers that make their own Temporal client (startTestWorker, startTimeSkipping). */
export interface OwnClientOptions extends Omit<TestWorkerOptions, 'temporalClient'> {
  /** Activities get the helper's client, for those that signal or start workflows. */
  clientForActivities?: boolean;
}

/** testWorkerDependencies for a helper holding `client`. */
export function ownClientDependencies(opts: OwnClientOptions, client: Client): WorkerDependencies {
  const { clientForActivities, ...rest } = opts;
  return testWorkerDependencies({ ...rest, ...(clientForActivities ? { temporalClient: client } : {}) });
}
