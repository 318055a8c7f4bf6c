// The dev server's Web UI, driven by playwright-core in Debian's Chromium: filter by TenantId, find the lifecycle, screenshot it.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { dunningWorkflowId, startOrJoinDunning } from '../../temporal/dunning';
import { ChildSupervisor, freePort } from '../../runtime/processes';
import { startTemporalDevServer, type DevServer } from '../../runtime/temporalDevServer';
import { findTemporalCli, projectRoot } from '../../runtime/tools';
import { defaultPolicy } from '../../domain/policy';
import { createBillopsWorker } from '../../workers/createWorker';
import type { WorkerDependencies } from '../../workers/dependencies';
import { insertOpenInvoice, insertTenant, type TestTenant } from '../support/dunningFixtures';
import { workflowBundle } from '../support/testRuntime';
import { TEST_PORTAL_URL, testWorkerDependencies } from '../support/workerDeps';

const artifactsDir = join(projectRoot, 'test-artifacts');
const PROVISION_HINT = 'run bash scripts/provision.sh chromium';

/** .tools/chromium-path (written by provision.sh), else Debian's /usr/bin/chromium; fails loudly when neither runs. */
function chromiumPath(): string {
  const recorded = join(projectRoot, '.tools', 'chromium-path');
  const candidates = [
    existsSync(recorded) ? readFileSync(recorded, 'utf8').trim() : undefined,
    '/usr/bin/chromium',
  ];
  const found = candidates.find((p): p is string => !!p && existsSync(p));
  if (!found) {
    throw new Error(`Chromium was not found (.tools/chromium-path, /usr/bin/chromium): ${PROVISION_HINT}`);
  }
  return found;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('Temporal Web UI (dev server, headless Chromium)', () => {
  const supervisor = new ChildSupervisor();
  const workDir = mkdtempSync(join(tmpdir(), 'billops-webui-'));
  const userDataDir = mkdtempSync(join(tmpdir(), 'billops-chromium-'));
  const taskQueue = `webui-${Date.now()}`;
  let server: DevServer;
  let deps: WorkerDependencies;
  let nativeConnection: NativeConnection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;
  let browser: BrowserContext | undefined;
  let page: Page;
  let tenant: TestTenant;
  let otherTenant: TestTenant;
  let tenantName: string;

  beforeAll(async () => {
    const executablePath = chromiumPath();
    const cliPath = findTemporalCli();
    if (!cliPath) throw new Error('the Temporal CLI was not found: run bash scripts/provision.sh temporal');
    server = await startTemporalDevServer(supervisor, {
      cliPath,
      port: await freePort(),
      uiPort: await freePort(),
      logFile: join(workDir, 'temporal.log'),
      namespace: 'default',
    });

    deps = testWorkerDependencies();
    nativeConnection = await NativeConnection.connect({ address: server.address });
    client = new Client({ connection: await Connection.connect({ address: server.address }) });
    worker = await createBillopsWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      deps,
      workflowBundle: workflowBundle(),
    });
    running = worker.run();

    try {
      // A new empty profile (playwright-core takes it as launchPersistentContext's userDataDir, not as --user-data-dir).
      browser = await chromium.launchPersistentContext(userDataDir, {
        executablePath,
        viewport: { width: 1600, height: 1000 },
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    } catch (err) {
      throw new Error(`Chromium at ${executablePath} did not start (${String(err)}): ${PROVISION_HINT}`);
    }
    page = browser.pages()[0] ?? (await browser.newPage());
    mkdirSync(artifactsDir, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    for (const t of [tenant, otherTenant]) {
      if (!t) continue;
      await client?.workflow
        .getHandle(dunningWorkflowId(t.id))
        .terminate('web UI test done')
        .catch(() => undefined);
    }
    await browser?.close().catch(() => undefined);
    worker?.shutdown();
    await running;
    await client?.connection.close();
    await nativeConnection?.close();
    await deps?.close();
    await supervisor.stopAll();
    rmSync(userDataDir, { recursive: true, force: true });
  }, 60_000);

  it('filters the workflow list by TenantId, finds the lifecycle and opens its page', async () => {
    tenant = await insertTenant(deps.pool, 'pro');
    tenantName = `webui-${tenant.id}`;
    // A second tenant in dunning, so the TenantId filter has something to leave out.
    otherTenant = await insertTenant(deps.pool, 'pro');
    const start = async (t: TestTenant, name: string) =>
      startOrJoinDunning(client, taskQueue, {
        tenantId: t.id,
        tenantName: name,
        tier: 'pro',
        processor: 'stripe',
        invoice: await insertOpenInvoice(deps.pool, t.id),
        policy: defaultPolicy,
        billingPortalUrl: TEST_PORTAL_URL,
      });
    const handle = await start(tenant, tenantName);
    await start(otherTenant, `webui-${otherTenant.id}`);
    const workflowId = dunningWorkflowId(tenant.id);
    const otherWorkflowId = dunningWorkflowId(otherTenant.id);
    const query = `TenantId="${tenant.id}"`;

    // Visibility is eventually consistent: the UI lists only what the visibility store already knows.
    await waitFor('visibility to list both lifecycles', 30_000, async () =>
      (await client.workflow.count(`WorkflowType = 'dunningWorkflow'`)).count === 2 &&
      (await client.workflow.count(query)).count === 1
        ? true
        : undefined,
    );

    // Unfiltered, the list shows both lifecycles...
    await page.goto(`${server.uiUrl}/namespaces/default/workflows`, {
      waitUntil: 'domcontentloaded',
      timeout: 30_000,
    });
    for (const id of [workflowId, otherWorkflowId]) {
      await page.getByText(id, { exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
    }

    // ...filtered by TenantId in the URL, only this tenant's.
    const listUrl = `${server.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
    await page.goto(listUrl, { waitUntil: 'domcontentloaded', timeout: 30_000 });
    await page.getByText(workflowId, { exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
    await page.getByText(otherWorkflowId, { exact: true }).waitFor({ state: 'detached', timeout: 10_000 });
    expect(await page.getByText(otherWorkflowId, { exact: true }).count()).toBe(0);
    expect(decodeURIComponent(page.url())).toContain(query);
    await page.screenshot({ path: join(artifactsDir, 'web-ui-list.png'), fullPage: true });

    const { runId } = await handle.describe();
    await page.goto(`${server.uiUrl}/namespaces/default/workflows/${workflowId}/${runId}/history`, {
      waitUntil: 'domcontentloaded',
      timeout: 30_000,
    });
    await page.getByText(workflowId).first().waitFor({ state: 'visible', timeout: 30_000 });
    // The static summary set at start is shown on the workflow's User Metadata tab.
    await page
      .getByRole('tab', { name: 'User Metadata' })
      .or(page.getByRole('link', { name: 'User Metadata' }))
      .first()
      .click();
    const summary = `Dunning · ${tenantName} (Pro) · stripe`;
    // The tab renders the summary (markdown) inside its own frame once the data arrives: look in every frame.
    await waitFor('the summary on the User Metadata tab', 30_000, async () => {
      for (const frame of page.frames()) {
        const shown = await frame
          .getByText(summary)
          .first()
          .isVisible()
          .catch(() => false);
        if (shown) return true;
      }
      return undefined;
    });
    await page.screenshot({ path: join(artifactsDir, 'web-ui-workflow.png'), fullPage: true });
  }, 120_000);
});
