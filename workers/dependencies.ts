// The real dependencies a worker runs with: a PostgreSQL pool, an SMTP mailer, payment gateways, and how to release them.
import type { ActivityDependencies } from '../activities';
import { createSmtpMailer } from '../activities/mailer';
import type { PaymentGateways } from '../activities/payments';
import { createPool } from '../db/pool';

export interface WorkerDependencies extends ActivityDependencies {
  close(): Promise<void>;
}

export function createWorkerDependencies(opts: {
  databaseUrl: string;
  smtpUrl: string;
  mailFrom: string;
  billingPortalUrl: string;
  decisionsLogPath: string;
  gateways?: PaymentGateways;
  /** 1 against the embedded PGlite, which serves a single session. */
  poolMax?: number;
}): WorkerDependencies {
  const pool = createPool(opts.databaseUrl, { max: opts.poolMax });
  const mailer = createSmtpMailer(opts.smtpUrl);
  return {
    pool,
    mailer,
    mailFrom: opts.mailFrom,
    gateways: opts.gateways ?? {},
    billingPortalUrl: opts.billingPortalUrl,
    decisionsLogPath: opts.decisionsLogPath,
    async close() {
      mailer.close();
      await pool.end();
    },
  };
}
