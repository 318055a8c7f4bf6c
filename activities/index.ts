// All activity groups, built from the worker's dependencies; the type is what workflows proxy.
import type { Pool } from 'pg';
import { createEmailActivities } from './email';
import type { Mailer } from './mailer';
import { createNoticeActivities } from './notices';

export interface ActivityDependencies {
  pool: Pool;
  mailer: Mailer;
  mailFrom: string;
}

export function createActivities(deps: ActivityDependencies) {
  return {
    ...createEmailActivities({ pool: deps.pool, mailer: deps.mailer, from: deps.mailFrom }),
    ...createNoticeActivities({ pool: deps.pool }),
  };
}

export type BillopsActivities = ReturnType<typeof createActivities>;
