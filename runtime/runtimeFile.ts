// What `npm start` leaves for a second terminal: `.data/runtime.json` (mode 0600), read by the CLI (cli/localRuntime.ts),
// and the local webhook secrets it generates when none are set, kept across restarts through that file.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { runtimeFilePath, type LocalRuntime } from '../cli/localRuntime';

/** The variables a second terminal needs to reach what this `npm start` runs, as it ran them. */
const PASSED_ON = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'BILLOPS_TASK_QUEUE',
  'DATABASE_URL',
  'SMTP_URL',
  'INGRESS_HOST',
  'INGRESS_PORT',
  'STRIPE_SECRET_KEY',
  'STRIPE_WEBHOOK_SECRET',
  'STRIPE_API_BASE',
  'PAYSTACK_SECRET_KEY',
  'PAYSTACK_PUBLIC_KEY',
  'PAYSTACK_WEBHOOK_SECRET',
  'PAYSTACK_SANDBOX_MODE',
  'PAYSTACK_BASE_URL',
  'ALERTMANAGER_TOKEN',
  'BILLOPS_POLICY_FILE',
  'BILLOPS_ALERT_ROUTES',
  'DECISIONS_LOG_PATH',
  'BILLOPS_BILLING_PORTAL_URL',
  'BILLOPS_MAIL_FROM',
] as const;

/** Paths npm start resolved from the project folder; a CLI elsewhere must find the same files. */
const PATHS: ReadonlySet<string> = new Set([
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'BILLOPS_POLICY_FILE',
  'BILLOPS_ALERT_ROUTES',
  'DECISIONS_LOG_PATH',
]);

/** The secrets `npm start` makes when the environment sets none, so webhooks and alerts can be signed locally. */
const GENERATED = {
  STRIPE_WEBHOOK_SECRET: () => `whsec_local${randomBytes(24).toString('hex')}`,
  PAYSTACK_WEBHOOK_SECRET: () => `local_paystack_${randomBytes(24).toString('hex')}`,
  ALERTMANAGER_TOKEN: () => `local_alertmanager_${randomBytes(24).toString('hex')}`,
} as const;

/**
 * The environment with a local secret for each of STRIPE_WEBHOOK_SECRET, PAYSTACK_WEBHOOK_SECRET (unless
 * PAYSTACK_SECRET_KEY signs) and ALERTMANAGER_TOKEN left unset: the one an earlier run generated, else a new one.
 */
export function withLocalSecrets(
  env: Record<string, string | undefined>,
  dataDir: string,
): { env: Record<string, string | undefined>; generated: string[] } {
  const earlier = earlierGenerated(dataDir);
  const out = { ...env };
  const generated: string[] = [];
  for (const [name, make] of Object.entries(GENERATED)) {
    if (env[name]?.trim()) continue;
    if (name === 'PAYSTACK_WEBHOOK_SECRET' && env.PAYSTACK_SECRET_KEY?.trim()) continue;
    out[name] = earlier[name] ?? make();
    generated.push(name);
  }
  return { env: out, generated };
}

function earlierGenerated(dataDir: string): Record<string, string> {
  const file = runtimeFilePath(dataDir);
  if (!existsSync(file)) return {};
  try {
    const earlier = JSON.parse(readFileSync(file, 'utf8')) as Partial<LocalRuntime>;
    const kept: Record<string, string> = {};
    for (const name of earlier.generatedSecrets ?? []) {
      const value = earlier.env?.[name];
      if (typeof value === 'string') kept[name] = value;
    }
    return kept;
  } catch {
    return {}; // unreadable: new secrets, and the file is rewritten below
  }
}

/** The variables to pass on: the parts this run started, over what its environment named. */
export function passedOnEnv(
  env: Record<string, string | undefined>,
  parts: Record<string, string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_ON) {
    const value = parts[name] ?? env[name]?.trim();
    if (!value) continue;
    out[name] = PATHS.has(name) && !isAbsolute(value) ? resolve(value) : value;
  }
  return out;
}

/** Written whole under a temporary name, then renamed: a CLI never reads half a file. Readable by this user only. */
export function writeRuntimeFile(dataDir: string, runtime: LocalRuntime): string {
  const file = runtimeFilePath(dataDir);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(runtime, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
  return file;
}
