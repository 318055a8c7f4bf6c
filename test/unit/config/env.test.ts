// Configuration from the environment: defaults, every problem at once, secrets never shown, and the exit-2 loaders.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadPolicyForConfig } from '../../../config/load';
import {
  formatConfigProblems,
  parseConfig,
  redactConfig,
  SECRET_VARIABLES,
  type BillopsConfig,
  type ConfigProblem,
} from '../../../config/env';
import { defaultPolicy } from '../../../domain/policy';

function configOf(env: Record<string, string | undefined>): BillopsConfig {
  const result = parseConfig(env);
  if (!result.ok) throw new Error(formatConfigProblems(result.problems));
  return result.config;
}

function problemsOf(env: Record<string, string | undefined>): ConfigProblem[] {
  const result = parseConfig(env);
  if (result.ok) throw new Error('expected configuration problems');
  return result.problems;
}

const secrets = {
  TEMPORAL_API_KEY: 'tmprl-s3cr3t-api-key-1',
  STRIPE_SECRET_KEY: 'sk_test_s3cr3tstripe2',
  STRIPE_WEBHOOK_SECRET: 'whsec_s3cr3tsigning3',
  PAYSTACK_SECRET_KEY: 'sk_test_s3cr3tpaystack4',
  PAYSTACK_WEBHOOK_SECRET: 's3cr3t-paystack-hook-5',
  ALERTMANAGER_TOKEN: 's3cr3t-alertmanager-6',
  PAGERDUTY_ROUTING_KEY: 's3cr3t-pagerduty-7',
  SLACK_WEBHOOK_URL: 'https://hooks.slack.test/services/T0/B0/s3cr3tslack8',
};

/** Hooks and the status page may carry tokens in their URL or command: never printed either. */
const tokenCarrying = {
  STATUS_PAGE_WEBHOOK_URL: 'https://status.test/hook?token=s3cr3tstatus9',
  BILLOPS_SCALE_UP_HOOK: 'https://ops.test/scale?token=s3cr3tscale10',
  BILLOPS_FAILOVER_HOOK: '/usr/local/bin/failover --token s3cr3tfailover11',
};

describe('parseConfig', () => {
  it('runs on embedded defaults when nothing is set', () => {
    expect(configOf({})).toEqual({
      temporal: { namespace: 'default' },
      taskQueue: 'billing-incidents',
      stripe: {},
      paystack: { sandboxMode: true, baseUrl: 'https://api.paystack.co', timeoutSeconds: 30, maxRetries: 3 },
      ingress: { host: '127.0.0.1', port: 8080 },
      access: { maxAgeSeconds: 5 },
      decisionsLogPath: '.data/DECISIONS.log',
      dataDir: '.data',
      billingPortalUrl: 'http://127.0.0.1:8080/billing',
      mailFrom: 'billops <billing@billops.local>',
      embedded: { temporalPort: 7233, uiPort: 8233 },
      incidents: { opsEmail: 'billing-ops@billops.local', reportsDir: '.data/incidents' },
    });
  });

  it('reads how long a gateway may cache an access answer, refusing anything but whole seconds up to a day', () => {
    expect(configOf({ BILLOPS_ACCESS_MAX_AGE_SECONDS: '30' }).access).toEqual({ maxAgeSeconds: 30 });
    expect(configOf({ BILLOPS_ACCESS_MAX_AGE_SECONDS: '0' }).access).toEqual({ maxAgeSeconds: 0 });
    for (const bad of ['5s', '-1', '86401'])
      expect(problemsOf({ BILLOPS_ACCESS_MAX_AGE_SECONDS: bad }).map((p) => p.variable)).toEqual([
        'BILLOPS_ACCESS_MAX_AGE_SECONDS',
      ]);
  });

  it('treats empty strings as unset', () => {
    expect(configOf({ INGRESS_PORT: '', TEMPORAL_ADDRESS: '', STRIPE_SECRET_KEY: '  ' })).toEqual(
      configOf({}),
    );
  });

  it('reads a production environment into the nested shape', () => {
    const config = configOf({
      ...secrets,
      TEMPORAL_ADDRESS: 'billops.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'billops.a1b2c',
      TEMPORAL_TLS_CERT: '/etc/billops/client.pem',
      TEMPORAL_TLS_KEY: '/etc/billops/client.key',
      DATABASE_URL: 'postgresql://billops:pw@db:5432/billops',
      PAYSTACK_SANDBOX_MODE: 'True',
      PAYSTACK_TIMEOUT_SECONDS: '10',
      PAYSTACK_MAX_RETRIES: '0',
      INGRESS_HOST: '0.0.0.0',
      INGRESS_PORT: '9000',
      BILLOPS_DATA_DIR: '/var/lib/billops/',
    });
    expect(config.temporal).toEqual({
      address: 'billops.a1b2c.tmprl.cloud:7233',
      namespace: 'billops.a1b2c',
      apiKey: secrets.TEMPORAL_API_KEY,
      tls: { certPath: '/etc/billops/client.pem', keyPath: '/etc/billops/client.key' },
    });
    expect(config.paystack).toMatchObject({ sandboxMode: true, timeoutSeconds: 10, maxRetries: 0 });
    expect(config.ingress).toEqual({ host: '0.0.0.0', port: 9000 });
    expect(config.decisionsLogPath).toBe('/var/lib/billops/DECISIONS.log');
    expect(configOf({ PAYSTACK_SANDBOX_MODE: '0' }).paystack.sandboxMode).toBe(false);
  });

  it('lists every wrong variable at once', () => {
    const problems = problemsOf({
      TEMPORAL_ADDRESS: 'http://temporal:7233',
      DATABASE_URL: 'mysql://db/billops',
      SMTP_URL: 'http://mail',
      STRIPE_SECRET_KEY: 'pk_test_publishable',
      STRIPE_WEBHOOK_SECRET: 'secret_without_prefix',
      STRIPE_API_BASE: 'ftp://stripe',
      PAYSTACK_PUBLIC_KEY: 'sk_wrong_kind',
      PAYSTACK_SANDBOX_MODE: 'yes',
      PAYSTACK_TIMEOUT_SECONDS: '0',
      PAYSTACK_MAX_RETRIES: '11',
      INGRESS_PORT: '70000',
      TEMPORAL_UI_PORT: 'abc',
      BILLOPS_MAIL_FROM: 'billing',
    });
    expect(problems.map((p) => p.variable).sort()).toEqual([
      'BILLOPS_MAIL_FROM',
      'DATABASE_URL',
      'INGRESS_PORT',
      'PAYSTACK_MAX_RETRIES',
      'PAYSTACK_PUBLIC_KEY',
      'PAYSTACK_SANDBOX_MODE',
      'PAYSTACK_TIMEOUT_SECONDS',
      'SMTP_URL',
      'STRIPE_API_BASE',
      'STRIPE_SECRET_KEY',
      'STRIPE_WEBHOOK_SECRET',
      'TEMPORAL_ADDRESS',
      'TEMPORAL_UI_PORT',
    ]);
    expect(problems).toContainEqual({
      variable: 'INGRESS_PORT',
      problem: 'must be a whole number from 1 to 65535 (got "70000")',
    });
    expect(problems).toContainEqual({
      variable: 'STRIPE_SECRET_KEY',
      problem: 'must start with sk_ (a Stripe secret key)',
    });
  });

  it('wants both TLS files or neither, and an address to use them with', () => {
    expect(problemsOf({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS_CERT: '/c.pem' })).toEqual([
      { variable: 'TEMPORAL_TLS_KEY', problem: 'must be set when TEMPORAL_TLS_CERT is (both or neither)' },
    ]);
    expect(problemsOf({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_TLS_KEY: '/c.key' })).toEqual([
      { variable: 'TEMPORAL_TLS_CERT', problem: 'must be set when TEMPORAL_TLS_KEY is (both or neither)' },
    ]);
    expect(problemsOf({ TEMPORAL_API_KEY: 'k' }).map((p) => p.variable)).toEqual(['TEMPORAL_API_KEY']);
  });

  it('refuses a live Paystack key in sandbox mode and clashing embedded ports', () => {
    expect(problemsOf({ PAYSTACK_SECRET_KEY: 'sk_live_abc' }).map((p) => p.variable)).toEqual([
      'PAYSTACK_SANDBOX_MODE',
    ]);
    expect(
      configOf({ PAYSTACK_SECRET_KEY: 'sk_live_abc', PAYSTACK_SANDBOX_MODE: 'false' }).paystack.sandboxMode,
    ).toBe(false);
    expect(problemsOf({ INGRESS_PORT: '7233' })).toEqual([
      { variable: 'INGRESS_PORT', problem: 'is the same port as TEMPORAL_PORT (7233); pick another' },
    ]);
  });

  it('never shows a secret, in problems or in the redacted config', () => {
    const wrongSecrets = {
      STRIPE_SECRET_KEY: 'rk_live_s3cr3trestricted',
      STRIPE_WEBHOOK_SECRET: ' whsec_s3cr3tspaced',
      PAYSTACK_SECRET_KEY: 's3cr3tnoPrefix',
      PAYSTACK_WEBHOOK_SECRET: 's3cr3t-hook ',
      DATABASE_URL: 'mysql://u:s3cr3tdbpass@db/x',
      TEMPORAL_API_KEY: 's3cr3t-no-address',
    };
    const message = formatConfigProblems(problemsOf(wrongSecrets));
    expect(message).toMatch(/^billops: configuration is invalid \(7 problems\):\n {2}- /);
    for (const value of Object.values(wrongSecrets)) expect(message).not.toContain(value.trim());
    expect(message).not.toContain('s3cr3t');

    const config = configOf({
      ...secrets,
      ...tokenCarrying,
      TEMPORAL_ADDRESS: 'temporal:7233',
      DATABASE_URL: 'postgres://billops:s3cr3tdbpass@db:5432/billops?sslmode=require',
      SMTP_URL: 'smtps://mailer:s3cr3tsmtppass@mail:465',
    });
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).not.toContain('s3cr3t');
    expect(redactConfig(config).databaseUrl).toBe('postgres://billops:***@db:5432/billops?sslmode=require');
    expect(redactConfig(config).smtpUrl).toBe('smtps://mailer:***@mail:465');
    expect(redactConfig(config).stripe.secretKey).toBe('***');
    expect(config.stripe.secretKey).toBe(secrets.STRIPE_SECRET_KEY);
    expect(redactConfig(config).incidents.failoverHook).toBe('***');
    expect(config.incidents.failoverHook).toBe(tokenCarrying.BILLOPS_FAILOVER_HOOK);
    expect(SECRET_VARIABLES).toHaveLength(8);
  });

  it('formats one message: header, one line per problem, what to do', () => {
    const message = formatConfigProblems([
      { variable: 'INGRESS_PORT', problem: 'must be a whole number from 1 to 65535 (got "x")' },
      { variable: 'SMTP_URL', problem: 'must be an smtp:// or smtps:// URL with a host' },
    ]);
    expect(message.split('\n')).toEqual([
      'billops: configuration is invalid (2 problems):',
      '  - INGRESS_PORT: must be a whole number from 1 to 65535 (got "x")',
      '  - SMTP_URL: must be an smtp:// or smtps:// URL with a host',
      'Fix these environment variables and start again (an empty or unset variable takes its default).',
    ]);
  });
});

describe('client loaders exit with code 2', () => {
  let stderr: jest.SpyInstance;
  let exit: jest.SpyInstance;
  let dir: string;

  beforeEach(() => {
    stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    exit = jest.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${String(code)}`);
    });
    dir = mkdtempSync(join(tmpdir(), 'billops-config-'));
  });
  afterEach(() => {
    stderr.mockRestore();
    exit.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loadConfig prints the problems and exits 2', () => {
    expect(() => loadConfig({ INGRESS_PORT: '0', ALERTMANAGER_TOKEN: ' s3cr3ttoken' })).toThrow('exit 2');
    const written = String(stderr.mock.calls[0]?.[0]);
    expect(written).toContain('billops: configuration is invalid (2 problems):');
    expect(written).toContain('  - ALERTMANAGER_TOKEN: has leading or trailing whitespace');
    expect(written).not.toContain('s3cr3ttoken');
    expect(loadConfig({}).ingress.port).toBe(8080);
  });

  it('loadPolicyForConfig reads the policy file over the defaults', () => {
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ tiers: { pro: { graceDays: 10 } } }));
    const policy = loadPolicyForConfig({ ...configOf({}), policyFile: file });
    expect(policy.tiers.pro.graceDays).toBe(10);
    expect(loadPolicyForConfig(configOf({}))).toEqual(defaultPolicy);
  });

  it('loadPolicyForConfig names the file and the paths of an invalid policy', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ paymentRetryHours: [6, 0], tiers: { pro: { graceDays: -1 } } }));
    expect(() => loadPolicyForConfig({ ...configOf({}), policyFile: file })).toThrow('exit 2');
    const written = String(stderr.mock.calls[0]?.[0]);
    expect(written).toContain(`BILLOPS_POLICY_FILE=${file}`);
    expect(written).toContain('  - paymentRetryHours: hours must be in ascending order');
    expect(written).toContain('  - tiers.pro.graceDays: ');
  });

  it('loadPolicyForConfig exits 2 on a missing file or broken JSON', () => {
    expect(() => loadPolicyForConfig({ ...configOf({}), policyFile: join(dir, 'absent.json') })).toThrow(
      'exit 2',
    );
    expect(String(stderr.mock.calls[0]?.[0])).toContain('cannot read the policy file');
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "tiers": ');
    expect(() => loadPolicyForConfig({ ...configOf({}), policyFile: broken })).toThrow('exit 2');
    expect(String(stderr.mock.calls[1]?.[0])).toContain('is not valid JSON');
  });
});
