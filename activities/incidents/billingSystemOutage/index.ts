// Seed 000 §3 "Check system health dashboards; verify database connectivity and replication lag": the billing API's
// health endpoint, PostgreSQL (connect, read, a write probe, recovery state) and replication lag, each with a timeout.
import { dirname, join } from 'node:path';
import axios from 'axios';
import { Client, type ClientBase, type Pool } from 'pg';
import type { IncidentDependencies } from '../common';
import { databaseUnavailable } from '../../../db/errors';
import { createOperationQueueActivities, type OperationQueueDependencies } from './operationQueue';
import { createOutageHookActivities } from './hooks';
import type { PaymentGateways } from '../../payments';
import { createPricingCacheActivities } from './pricingCache';

export interface HealthCheckRequest {
  /** The billing API answers within this or is unhealthy (the policy's critical billing API latency). */
  httpTimeoutMs: number;
  /** Connecting, reading and the write probe each give up after this. */
  databaseTimeoutMs: number;
  /** Replicas further behind than this make the database unhealthy. */
  maxReplicationLagSeconds: number;
}

export interface HttpHealth {
  status: 'healthy' | 'unhealthy' | 'not_configured';
  statusCode: number | null;
  latencyMs: number | null;
  detail: string;
}

export interface DatabaseHealth {
  reachable: boolean;
  /** The write probe (an update of no rows on the tables critical writes go to) went through. */
  writable: boolean;
  /** pg_is_in_recovery(): a standby, which takes no writes; null when unknown. */
  inRecovery: boolean | null;
  latencyMs: number | null;
  detail: string;
}

export interface ReplicaLag {
  name: string;
  state: string | null;
  replayLagSeconds: number | null;
}

export interface ReplicationHealth {
  /** primary: its replicas from pg_stat_replication; standby: its own replay delay; unknown: not reachable. */
  role: 'primary' | 'standby' | 'unknown';
  /** The largest lag in seconds; null when nothing replicates. */
  lagSeconds: number | null;
  replicas: ReplicaLag[];
  lagging: boolean;
  detail: string;
}

export interface BillingHealth {
  checkedAt: string;
  healthy: boolean;
  http: HttpHealth;
  database: DatabaseHealth;
  replication: ReplicationHealth;
  summary: string;
}

type Session = Pick<ClientBase, 'query'>;

// The tables critical billing writes go to: payments, invoices, service controls (suspensions).
const WRITE_PROBES = [
  'UPDATE payment_transactions SET status = status WHERE false',
  'UPDATE invoices SET status = status WHERE false',
  'UPDATE service_controls SET reason = reason WHERE false',
];

export function createBillingHealthActivities(deps: { pool: Pool; healthUrl?: string }) {
  async function checkHttp(timeoutMs: number): Promise<HttpHealth> {
    if (!deps.healthUrl) {
      return {
        status: 'not_configured',
        statusCode: null,
        latencyMs: null,
        detail: 'no health URL configured (BILLOPS_HEALTH_URL)',
      };
    }
    const started = Date.now();
    try {
      const res = await axios.get(deps.healthUrl, {
        timeout: timeoutMs,
        validateStatus: () => true,
        maxRedirects: 0,
        responseType: 'text',
      });
      const latencyMs = Date.now() - started;
      const ok = res.status >= 200 && res.status < 300;
      return {
        status: ok ? 'healthy' : 'unhealthy',
        statusCode: res.status,
        latencyMs,
        detail: `billing API ${originOf(deps.healthUrl)} answered HTTP ${res.status} in ${latencyMs} ms`,
      };
    } catch (err) {
      const code = (err as { code?: string }).code;
      const why =
        code === 'ECONNABORTED' || code === 'ETIMEDOUT'
          ? `no answer within ${timeoutMs} ms`
          : `unreachable (${code ?? (err as Error).message})`;
      return {
        status: 'unhealthy',
        statusCode: null,
        latencyMs: null,
        detail: `billing API ${originOf(deps.healthUrl)} ${why}`,
      };
    }
  }

  async function checkDatabase(req: HealthCheckRequest): Promise<{
    database: DatabaseHealth;
    replication: ReplicationHealth;
  }> {
    const timeout = req.databaseTimeoutMs;
    const started = Date.now();
    const unknownReplication: ReplicationHealth = {
      role: 'unknown',
      lagSeconds: null,
      replicas: [],
      lagging: false,
      detail: 'replication unknown: the database is not reachable',
    };
    let connection: { session: Session; close(): Promise<void> } | undefined;
    try {
      connection = await connect(timeout);
      const client = connection.session;
      const { rows } = await client.query<{ in_recovery: boolean; read_only: string }>(
        `SELECT pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') AS read_only`,
      );
      const latencyMs = Date.now() - started;
      const inRecovery = rows[0]?.in_recovery ?? null;
      const write = inRecovery
        ? { ok: false, detail: 'a standby in recovery: it takes no writes' }
        : rows[0]?.read_only === 'on'
          ? { ok: false, detail: 'the database is read-only (default_transaction_read_only)' }
          : await probeWrites(client, timeout);
      const database: DatabaseHealth = {
        reachable: true,
        writable: write.ok,
        inRecovery,
        latencyMs,
        detail: `reachable in ${latencyMs} ms; ${write.ok ? 'writes go through' : `writes fail: ${write.detail}`}`,
      };
      const replication = await checkReplication(
        client,
        inRecovery === true,
        req.maxReplicationLagSeconds,
      ).catch((err: Error) => ({ ...unknownReplication, detail: `replication unknown: ${err.message}` }));
      return { database, replication };
    } catch (err) {
      const why = databaseUnavailable(err) ?? (err as Error).message;
      return {
        database: { reachable: false, writable: false, inRecovery: null, latencyMs: null, detail: why },
        replication: unknownReplication,
      };
    } finally {
      await connection?.close();
    }
  }

  /** A connection of its own, so a database that takes no new connections shows; with a pool of one (a database
   * that allows a single session) the pool's connection, within the same timeout. */
  async function connect(timeoutMs: number): Promise<{ session: Session; close(): Promise<void> }> {
    if (deps.pool.options.max === 1) {
      const pending = deps.pool.connect();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // Whenever it does connect, hand the connection back.
          pending.then(
            (c) => c.release(),
            () => undefined,
          );
          reject(Object.assign(new Error('connection timeout'), { code: 'ETIMEDOUT' }));
        }, timeoutMs);
      });
      try {
        const pooled = await Promise.race([pending, late]);
        return { session: pooled, close: async () => pooled.release() };
      } finally {
        clearTimeout(timer);
      }
    }
    const client = new Client({
      ...deps.pool.options,
      connectionTimeoutMillis: timeoutMs,
      // A backstop only: the server's own lock and statement timeouts answer first, with the reason.
      query_timeout: timeoutMs * 3,
      application_name: 'billops-health',
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return { session: client, close: () => client.end().catch(() => undefined) };
  }

  return {
    /** One look at the billing system: healthy when the API answers 2xx (or is not configured), and PostgreSQL is
     * reachable, takes writes and its replicas are within the lag limit. */
    async checkBillingHealth(req: HealthCheckRequest): Promise<BillingHealth> {
      const [http, db] = await Promise.all([checkHttp(req.httpTimeoutMs), checkDatabase(req)]);
      const healthy =
        http.status !== 'unhealthy' &&
        db.database.reachable &&
        db.database.writable &&
        !db.replication.lagging;
      return {
        checkedAt: new Date().toISOString(),
        healthy,
        http,
        database: db.database,
        replication: db.replication,
        summary: [
          http.detail,
          `database ${db.database.reachable ? db.database.detail : `unreachable: ${db.database.detail}`}`,
          db.replication.detail,
        ].join('; '),
      };
    },
  };
}

/** An update of no rows on each critical table, rolled back: fails on a read-only database, on locks held past the
 * timeout, and on a server that cannot write. */
async function probeWrites(client: Session, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  try {
    await client.query('BEGIN');
    const ms = Math.max(1, Math.floor(timeoutMs));
    // Waiting on a lock is the usual way writes stall: it answers first, as a lock timeout.
    await client.query(`SET LOCAL lock_timeout = ${ms}`);
    await client.query(`SET LOCAL statement_timeout = ${ms * 2}`);
    for (const probe of WRITE_PROBES) {
      try {
        await client.query(probe);
      } catch (err) {
        const table = probe.split(' ')[1];
        return { ok: false, detail: `${table}: ${(err as Error).message}` };
      }
    }
    return { ok: true, detail: 'writes go through' };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

async function checkReplication(
  client: Session,
  standby: boolean,
  maxLagSeconds: number,
): Promise<ReplicationHealth> {
  if (standby) {
    // Caught up with what it received: no lag, however long ago the primary last wrote.
    const { rows } = await client.query<{ lag: number | null }>(
      `SELECT CASE WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                   THEN 0
                   ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag`,
    );
    const lag = rows[0]?.lag ?? null;
    const lagging = lag !== null && lag > maxLagSeconds;
    return {
      role: 'standby',
      lagSeconds: lag,
      replicas: [],
      lagging,
      detail:
        lag === null
          ? 'a standby that has replayed nothing yet'
          : `a standby ${formatSeconds(lag)} behind its primary${lagging ? ` (over ${maxLagSeconds} s)` : ''}`,
    };
  }
  const { rows } = await client.query<{ name: string; state: string | null; lag: number | null }>(
    `SELECT application_name AS name, state, EXTRACT(EPOCH FROM replay_lag)::float8 AS lag
     FROM pg_stat_replication ORDER BY application_name`,
  );
  const replicas = rows.map((r) => ({ name: r.name, state: r.state, replayLagSeconds: r.lag }));
  if (replicas.length === 0) {
    return { role: 'primary', lagSeconds: null, replicas, lagging: false, detail: 'no replicas streaming' };
  }
  // replay_lag is null once a replica has caught up and nothing new was written: no lag.
  const lagSeconds = Math.max(0, ...replicas.map((r) => r.replayLagSeconds ?? 0));
  const lagging = lagSeconds > maxLagSeconds;
  return {
    role: 'primary',
    lagSeconds,
    replicas,
    lagging,
    detail: `${replicas.length} replica${replicas.length === 1 ? '' : 's'} (${replicas
      .map(
        (r) =>
          `${r.name} ${r.state ?? '?'}, ${r.replayLagSeconds === null ? 'caught up' : formatSeconds(r.replayLagSeconds)}`,
      )
      .join('; ')})${lagging ? `, over ${maxLagSeconds} s behind` : ''}`,
  };
}

function formatSeconds(seconds: number): string {
  return `${Math.round(seconds * 10) / 10} s`;
}

/** scheme://host:port only: a path or query may carry a token. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparsable URL)';
  }
}

/** Everything a billing system outage does, from the worker's dependencies. */
export function createBillingOutageActivities(deps: {
  pool: Pool;
  incidents: IncidentDependencies;
  gateways: PaymentGateways;
  billingPortalUrl: string;
  temporalClient?: OperationQueueDependencies['temporalClient'];
}) {
  return {
    ...createBillingHealthActivities({ pool: deps.pool, healthUrl: deps.incidents.healthUrl }),
    ...createPricingCacheActivities({
      pool: deps.pool,
      // Beside the reports, under the data directory: it must outlive the database it stands in for.
      cachePath: join(dirname(deps.incidents.reportsDir), 'pricing-cache.json'),
    }),
    ...createOutageHookActivities({
      pool: deps.pool,
      scaleUpHook: deps.incidents.scaleUpHook,
      failoverHook: deps.incidents.failoverHook,
      secrets: deps.incidents.secrets,
    }),
    ...createOperationQueueActivities({
      pool: deps.pool,
      ...deps.gateways,
      billingPortalUrl: deps.billingPortalUrl,
      temporalClient: deps.temporalClient,
    }),
  };
}
export type BillingHealthActivities = ReturnType<typeof createBillingHealthActivities>;
export type BillingOutageActivities = ReturnType<typeof createBillingOutageActivities>;
