// Before the webhooks runs, the tenants every delivery names; after them, the check that each was processed and started its lifecycle.
import type { Client } from '@temporalio/client';
import { benchClient, progress } from './support';
import type { Options } from './webhooksOptions';

/** Deliveries per side: the warm-up, the saturated runs and the paced runs. */
const perSide = (opts: Options) => opts.warmup + opts.repeat * (opts.events + opts['paced-events']);

/**
 * One pro tenant on Stripe per ingress delivery, in one statement: run 0 is the warm-up, runs 1..repeat the saturated
 * ones, the next `repeat` runs the paced ones.
 */
export async function insertTenants(url: string, opts: Options): Promise<void> {
  const admin = benchClient(url, 'billops-bench-admin');
  await admin.connect();
  try {
    const total = perSide(opts);
    progress(`inserting ${total} tenants`);
    await admin.query(
      `INSERT INTO tenants (id, name, tier, email, billing_email, payment_processor)
       SELECT id, 'Bench tenant ' || id, 'pro', 'ops@' || id || '.bench.example',
              'billing@' || id || '.bench.example', 'stripe'
       FROM (SELECT 'bench-w' || run || '-' || lpad(i::text, 7, '0') AS id
             FROM generate_series(0, 2 * $1::int) AS run,
                  LATERAL generate_series(
                    0, CASE WHEN run = 0 THEN $2::int WHEN run <= $1::int THEN $3::int ELSE $4::int END - 1) AS i) AS ids`,
      [opts.repeat, opts.warmup, opts.events, opts['paced-events']],
    );
    await admin.query('VACUUM ANALYZE tenants');
  } finally {
    await admin.end();
  }
}

/** Every delivery stored as processed, and one running lifecycle per call on either side. */
export async function verify(url: string, client: Client, opts: Options) {
  const delivered = perSide(opts);
  const admin = benchClient(url, 'billops-bench-admin');
  await admin.connect();
  let processed: number;
  try {
    // A delivery marks its event processed just after answering: give the last ones a moment.
    processed = await until(
      async () => {
        const { rows } = await admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM webhook_events WHERE provider = 'stripe' AND status = 'processed'`,
        );
        return Number(rows[0]!.n);
      },
      delivered,
      (n) => `${n} webhook events are stored as processed, ${delivered} were delivered`,
    );
  } finally {
    await admin.end();
  }
  const query = `WorkflowType = 'dunningWorkflow' AND ExecutionStatus = 'Running'`;
  const running = await until(
    async () => (await client.workflow.count(query)).count,
    2 * delivered,
    (n) => `${n} dunning lifecycles are running, ${2 * delivered} were started`,
  );
  progress(`verified: ${processed} webhook events processed, ${running} lifecycles running`);
  return { webhookEventsProcessed: processed, workflowsRunning: running };
}

/** Polls `read` until it gives `expected`; after 30 s fails with `problem` of the last value read. */
async function until(
  read: () => Promise<number>,
  expected: number,
  problem: (last: number) => string,
): Promise<number> {
  const deadline = Date.now() + 30_000;
  let last: number;
  while ((last = await read()) !== expected) {
    if (Date.now() > deadline) throw new Error(problem(last));
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}
