// The real dependencies a worker runs with: a PostgreSQL pool and an SMTP mailer, and how to release them.
import type { ActivityDependencies } from '../activities';
import { createSmtpMailer } from '../activities/mailer';
import { createPool } from '../db/pool';

export interface WorkerDependencies extends ActivityDependencies {
  close(): Promise<void>;
}

export function createWorkerDependencies(opts: {
  databaseUrl: string;
  smtpUrl: string;
  mailFrom: string;
  /** 1 against the embedded PGlite, which serves a single session. */
  poolMax?: number;
}): WorkerDependencies {
  const pool = createPool(opts.databaseUrl, { max: opts.poolMax });
  const mailer = createSmtpMailer(opts.smtpUrl);
  return {
    pool,
    mailer,
    mailFrom: opts.mailFrom,
    async close() {
      mailer.close();
      await pool.end();
    },
  };
}
