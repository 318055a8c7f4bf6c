// Checks the shipped monitoring config with the real Prometheus tools: promtool accepts deploy/prometheus/alerts.yml
// and passes its unit tests (deploy/prometheus/alerts.test.yml), amtool accepts deploy/alertmanager.yml and routes
// billops alerts to the ingress, and broken copies of each are refused (so a pass means something).
// The tools come from `bash scripts/provision.sh prometheus` (Debian prometheus + prometheus-alertmanager), which
// writes their paths to .tools/promtool-path and .tools/amtool-path. A missing tool fails these tests; never skips.
import { spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

const root = resolve(__dirname, '..', '..');
const rulesFile = join(root, 'deploy', 'prometheus', 'alerts.yml');
const rulesTestFile = join(root, 'deploy', 'prometheus', 'alerts.test.yml');
const alertmanagerFile = join(root, 'deploy', 'alertmanager.yml');

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** $PROMTOOL_PATH / $AMTOOL_PATH, then the path provision.sh recorded in .tools/, then PATH; else fails the test. */
function tool(name: 'promtool' | 'amtool'): string {
  const fromEnv = process.env[`${name.toUpperCase()}_PATH`];
  if (fromEnv && isExecutable(fromEnv)) return fromEnv;
  try {
    const recorded = readFileSync(join(root, '.tools', `${name}-path`), 'utf8').trim();
    if (recorded && isExecutable(recorded)) return recorded;
  } catch {
    // not provisioned yet: look on PATH
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  throw new Error(
    `${name} was not found ($${name.toUpperCase()}_PATH, .tools/${name}-path, PATH), so the monitoring config cannot be checked. ` +
      'Run: bash scripts/provision.sh prometheus',
  );
}

interface RunResult {
  status: number | null;
  output: string; // stdout and stderr together: promtool and amtool split their messages between them
}

function run(name: 'promtool' | 'amtool', args: string[]): RunResult {
  const result = spawnSync(tool(name), args, { cwd: root, encoding: 'utf8', timeout: 60_000 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Fails with the tool's own words when it did not exit 0. */
function expectSuccess(result: RunResult): void {
  if (result.status !== 0) throw new Error(`exited ${result.status}:\n${result.output}`);
}

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'billops-promrules-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Writes `text` as scratch/<dirName>/<name>, after checking that the edit really changed the original. */
function brokenCopy(dirName: string, name: string, original: string, text: string): string {
  expect(text).not.toBe(original);
  const dir = join(scratch, dirName);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('deploy/prometheus/alerts.yml', () => {
  it('passes promtool check rules with its 11 rules', () => {
    const result = run('promtool', ['check', 'rules', rulesFile]);
    expectSuccess(result);
    expect(result.output).toContain('SUCCESS: 11 rules found');
  });

  it('passes its promtool unit tests: every rule fires past its threshold and not just inside it', () => {
    const result = run('promtool', ['test', 'rules', rulesTestFile]);
    expectSuccess(result);
    expect(result.output).toContain('SUCCESS');
    expect(result.output).not.toContain('FAILED');
  });

  describe('a broken copy is refused', () => {
    const original = readFileSync(rulesFile, 'utf8');

    it('by promtool check rules when an expression does not parse', () => {
      const broken = original.replace(
        'histogram_quantile(0.95, sum by (le) (rate(billing_api_request_duration_seconds_bucket[5m]))) > 2',
        'histogram_quantile(0.95, sum by (le) (rate(billing_api_request_duration_seconds_bucket[5m])) > 2',
      );
      const result = run('promtool', ['check', 'rules', brokenCopy('parse', 'alerts.yml', original, broken)]);
      expect(result.status).not.toBe(0);
      expect(result.output).toMatch(/FAILED|parse error|unclosed/i);
    });

    it('by promtool check rules when an annotation template is invalid', () => {
      const broken = original.replace(
        '{{ $value | humanizePercentage }}',
        '{{ $value | noSuchTemplateFunction }}',
      );
      const result = run('promtool', [
        'check',
        'rules',
        brokenCopy('template', 'alerts.yml', original, broken),
      ]);
      expect(result.status).not.toBe(0);
      expect(result.output).toContain('noSuchTemplateFunction');
    });

    it('by the promtool unit tests when a threshold drifts (95% warning moved to 96%)', () => {
      const drifted = original.replace(/< 0\.95\n/, '< 0.96\n');
      const dir = join(scratch, 'drift');
      brokenCopy('drift', 'alerts.yml', original, drifted);
      copyFileSync(rulesTestFile, join(dir, 'alerts.test.yml')); // its rule_files entry names the alerts.yml beside it
      const result = run('promtool', ['test', 'rules', join(dir, 'alerts.test.yml')]);
      expect(result.status).not.toBe(0);
      expect(result.output).toContain('FAILED');
      expect(result.output).toContain('payment success 95.5% (just above warning) fires nothing');
    });
  });
});

describe('deploy/alertmanager.yml', () => {
  const original = readFileSync(alertmanagerFile, 'utf8');

  it('passes amtool check-config', () => {
    const result = run('amtool', ['check-config', alertmanagerFile]);
    expectSuccess(result);
    expect(result.output).toContain('SUCCESS');
  });

  it('routes every alert with an incident_kind to the billops ingress, and others nowhere', () => {
    const routeOf = (...labels: string[]): string => {
      const result = run('amtool', [
        'config',
        'routes',
        'test',
        `--config.file=${alertmanagerFile}`,
        ...labels,
      ]);
      expectSuccess(result);
      return result.output.replace(/^Warning:.*$/gm, '').trim();
    };
    expect(
      routeOf(
        'alertname=PaymentSuccessRateLow',
        'severity=critical',
        'incident_kind=payment_processor_outage',
      ),
    ).toBe('billops-ingress');
    expect(
      routeOf('alertname=WebhookProcessingDelayed', 'severity=warning', 'incident_kind=webhook_failure'),
    ).toBe('billops-ingress');
    expect(routeOf('alertname=SomeoneElsesAlert', 'severity=critical')).toBe('discard');
  });

  it('posts to /alerts/alertmanager with a bearer token from a file and sends resolved alerts', () => {
    // amtool checks the shape; these are the settings the ingress contract depends on.
    const receiver = original.slice(original.indexOf('- name: billops-ingress'));
    expect(receiver).toMatch(/url: http:\/\/[^\s/]+\/alerts\/alertmanager\n/);
    expect(receiver).toMatch(/send_resolved: true/);
    expect(receiver).toMatch(/authorization:\n\s+type: Bearer\n\s+credentials_file: \S+/);
    expect(original).toContain('ALERTMANAGER_TOKEN');
  });

  it('is refused by amtool when a route names a receiver that does not exist', () => {
    const broken = original.replace('- receiver: billops-ingress', '- receiver: no-such-receiver');
    const result = run('amtool', [
      'check-config',
      brokenCopy('am-receiver', 'alertmanager.yml', original, broken),
    ]);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('no-such-receiver');
  });

  it('is refused by amtool when the authorization has both a token and a token file', () => {
    const broken = original.replace(
      /(\n(\s+)credentials_file: \S+)/,
      '$1\n$2credentials: inline-token-and-a-file-cannot-both-be-set',
    );
    const result = run('amtool', [
      'check-config',
      brokenCopy('am-auth', 'alertmanager.yml', original, broken),
    ]);
    expect(result.status).not.toBe(0);
    expect(result.output).toMatch(/credentials/i);
  });
});
