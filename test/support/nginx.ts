// The shipped gateway configuration (deploy/gateway/nginx.conf.template) rendered and run by Debian's nginx, for tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../runtime/tools';

export interface GatewaySettings {
  billopsAddr: string;
  accessKey: string;
  productAddr: string;
  tenantRate: number;
  throttledRate: number;
  /** What nginx does when billops does not answer. */
  whenUnreachable: 'open' | 'closed';
}

export interface Gateway {
  url: string;
  config: string;
  stop(): Promise<void>;
}

const PROVISION_HINT = 'run `bash scripts/provision.sh nginx` (or set NGINX_PATH)';

/** .tools/nginx-path (provision.sh), else NGINX_PATH, else Debian's /usr/sbin/nginx. */
export function nginxBinary(): string {
  const recorded = join(projectRoot, '.tools', 'nginx-path');
  const candidates = [
    existsSync(recorded) ? readFileSync(recorded, 'utf8').trim() : '',
    process.env.NGINX_PATH ?? '',
    '/usr/sbin/nginx',
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) throw new Error(`nginx was not found: ${PROVISION_HINT}`);
  return found;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Renders the template as `envsubst` with the listed variables would, leaving nginx's own $variables alone. */
export function renderGatewayConfig(vars: Record<string, string>): string {
  const template = readFileSync(join(projectRoot, 'deploy', 'gateway', 'nginx.conf.template'), 'utf8');
  return template
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join('\n')
    .replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => {
      const value = vars[name];
      if (value === undefined) throw new Error(`the gateway template needs ${name}`);
      return value;
    });
}

export async function startGateway(settings: GatewaySettings): Promise<Gateway> {
  const runDir = mkdtempSync(join(tmpdir(), 'billops-gateway-'));
  const [port, innerPort] = [await freePort(), await freePort()];
  const fallback = join(projectRoot, 'deploy', 'gateway', `fail-${settings.whenUnreachable}.conf`);
  const config = renderGatewayConfig({
    LISTEN: `127.0.0.1:${port}`,
    INNER_PORT: String(innerPort),
    BILLOPS_ADDR: settings.billopsAddr,
    BILLOPS_ACCESS_KEY: settings.accessKey,
    PRODUCT_ADDR: settings.productAddr,
    TENANT_RATE: String(settings.tenantRate),
    THROTTLED_RATE: String(settings.throttledRate),
    RUN_DIR: runDir,
    UNREACHABLE: readFileSync(fallback, 'utf8')
      .split('\n')
      .filter((line) => line.trim() && !line.startsWith('#'))
      .join('\n')
      .replace(/\$\{INNER_PORT\}/g, String(innerPort)),
  });
  const configPath = join(runDir, 'nginx.conf');
  writeFileSync(configPath, config);
  const nginx = nginxBinary();
  const args = ['-p', runDir, '-c', configPath, '-e', join(runDir, 'error.log'), '-g', 'daemon off;'];
  const check = spawn(nginx, ['-t', ...args.slice(0, 6)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const checkOutput = await collect(check);
  if (check.exitCode !== 0) throw new Error(`nginx -t refused the rendered gateway config:\n${checkOutput}`);
  const child: ChildProcess = spawn(nginx, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}: ${stderr}`);
    const up = await fetch(`${url}/`, { headers: { 'X-Tenant-Id': 'probe' } }).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 100) throw new Error(`nginx did not listen on ${url}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    config,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGQUIT');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(runDir, { recursive: true, force: true });
    },
  };
}

async function collect(child: ChildProcess): Promise<string> {
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => child.once('exit', r));
  return out;
}
