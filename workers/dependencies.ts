// The real dependencies a worker runs with: a PostgreSQL pool, an SMTP mailer, payment gateways, and how to release them.
import type { Client } from '@temporalio/client';
import type { ActivityDependencies, IncidentDependencies } from '../activities';
import { createSmtpMailer } from '../drivers/smtp';
import type { PaymentGateways } from '../activities/payments';
import { createPool } from '../db/pool';
import { redactConfig, type BillopsConfig } from '../config/env';

/** The incident wiring from configuration: pagers, status page, operators' address, reports, outage hooks. */
export function incidentDependencies(config: BillopsConfig): IncidentDependencies {
  const i = config.incidents;
  return {
    paging: {
      pagerDutyRoutingKey: i.pagerDutyRoutingKey,
      pagerDutyEventsUrl: i.pagerDutyEventsUrl,
      slackWebhookUrl: i.slackWebhookUrl,
      timeoutMs: 10_000,
    },
    statusPageWebhookUrl: i.statusPageWebhookUrl,
    opsEmail: i.opsEmail,
    reportsDir: i.reportsDir,
    backupProcessor: i.backupProcessor,
    scaleUpHook: i.scaleUpHook,
    failoverHook: i.failoverHook,
    healthUrl: i.healthUrl,
    secrets: configuredSecrets(config),
  };
}

/**
 * Every secret value in the configuration: each one redactConfig hides (the secret variables, the hooks, the webhook
 * URLs) and the passwords inside DATABASE_URL and SMTP_URL, as written and decoded.
 */
export function configuredSecrets(config: BillopsConfig): string[] {
  const found = new Set<string>();
  const walk = (value: unknown, shown: unknown): void => {
    if (typeof value === 'string') {
      if (value !== shown) {
        found.add(value);
        for (const password of urlPasswords(value)) found.add(password);
      }
    } else if (value !== null && typeof value === 'object') {
      const redacted = (shown ?? {}) as Record<string, unknown>;
      for (const [key, inner] of Object.entries(value)) walk(inner, redacted[key]);
    }
  };
  walk(config, redactConfig(config));
  return [...found].filter((s) => s !== '');
}

function urlPasswords(value: string): string[] {
  try {
    const url = new URL(value);
    const written = [url.password, url.searchParams.get('password') ?? ''].filter((p) => p !== '');
    return written.flatMap((p) => {
      try {
        return [p, decodeURIComponent(p)];
      } catch {
        return [p];
      }
    });
  } catch {
    return [];
  }
}

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
  incidents: IncidentDependencies;
  /** Connections at most in the pool; 10 unless given. */
  poolMax?: number;
  /** For activities that signal or start workflows; the caller owns (and closes) its connection. */
  temporalClient?: Client;
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
    incidents: opts.incidents,
    temporalClient: opts.temporalClient,
    async close() {
      mailer.close();
      await pool.end();
    },
  };
}
