// POST /alerts/alertmanager on the real ingress (HTTP on loopback) against the dev server and a worker: routing, the
// incident each alert opens or reaches, alertResolved, and every way a notification is refused.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import {
  AlertRoutesError,
  DEFAULT_ALERT_ROUTES,
  loadAlertRoutes,
  parseAlertRoutes,
  routeAlert,
  type AlertRouting,
} from '../../config/alertRouting';
import { alertFingerprint } from '../../ingress/alerts/payload';
import {
  alertSettingsFromEnvironment,
  registerAlertRoutes,
  type AlertSettings,
} from '../../ingress/alerts/routes';
import { buildIngress } from '../../ingress/server';
import type { IncidentStatus } from '../../domain/incident';
import { defaultPolicy, INCIDENT_KINDS } from '../../domain/policy';
import {
  IncidentKind as IncidentKindKey,
  PaymentProcessor,
  Severity as SeverityKey,
} from '../../domain/searchAttributes';
import { incidentStatusQuery } from '../../workflows/definitions';
import { untilIncident } from '../support/incidentFixtures';
import { testEnv } from '../support/testRuntime';
import { startTestWorker, type TestWorker } from '../support/testWorker';

const TOKEN = 'am-token-0f4c2b9e7d1a43c8b5e6';
const TEST_ALERT = 'BillopsTestStuckPayments';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fingerprint = () => randomBytes(8).toString('hex');

interface TestAlert {
  alertname: string;
  status?: 'firing' | 'resolved';
  fingerprint: string;
  labels?: Record<string, string>;
  summary?: string;
  endsAt?: string;
}

/** Alertmanager's webhook body, version 4, as its notifier writes it. */
function notification(alerts: TestAlert[]): Record<string, unknown> {
  const body = alerts.map((a) => ({
    status: a.status ?? 'firing',
    labels: { alertname: a.alertname, severity: 'warning', ...a.labels },
    annotations: a.summary ? { summary: a.summary } : {},
    startsAt: new Date(Date.now() - 60_000).toISOString(),
    endsAt: a.endsAt ?? '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus.test/graph',
    fingerprint: a.fingerprint,
  }));
  return {
    version: '4',
    groupKey: '{}/{incident_kind=~"^(?:.+)$"}:{alertname="test"}',
    truncatedAlerts: 0,
    status: body.every((a) => a.status === 'resolved') ? 'resolved' : 'firing',
    receiver: 'billops-ingress',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.test',
    alerts: body,
  };
}

interface Answer {
  status: number;
  body: Record<string, unknown> & {
    results?: { outcome: string; workflowId?: string; reason?: string; fingerprint: string }[];
  };
}

describe('POST /alerts/alertmanager', () => {
  const taskQueue = `alerts-${randomBytes(4).toString('hex')}`;
  // Incidents whose workflow type this suite does not run: started here, never picked up.
  const idleQueue = `alerts-idle-${randomBytes(4).toString('hex')}`;
  const routing: AlertRouting = parseAlertRoutes({
    [TEST_ALERT]: { kind: 'stuck_transactions', params: { references: [] } },
    BillopsTestUsageLag: 'usage_metering_failure',
    DunningConversionRateLow: null,
  });
  const settings: AlertSettings = {
    taskQueue,
    policy: defaultPolicy,
    token: TOKEN,
    routing,
    maxBodyBytes: 16 * 1024,
  };
  let testWorker: TestWorker;
  let client: Client;
  const registry = new Registry();
  const apps: FastifyInstance[] = [];
  const started = new Set<string>();
  let base: string;
  let idleBase: string;

  async function listen(app: FastifyInstance): Promise<string> {
    apps.push(app);
    return app.listen({ host: '127.0.0.1', port: 0 });
  }

  async function post(
    url: string,
    body: unknown,
    headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  ): Promise<Answer> {
    const response = await fetch(`${url}/alerts/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const answer = { status: response.status, body: (await response.json()) as Answer['body'] };
    for (const r of answer.body.results ?? []) if (r.workflowId) started.add(r.workflowId);
    return answer;
  }

  async function exists(workflowId: string): Promise<boolean> {
    try {
      await client.workflow.getHandle(workflowId).describe();
      return true;
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  const statusWhen = (workflowId: string, done: (s: IncidentStatus) => boolean) =>
    untilIncident(client.workflow.getHandle(workflowId), done, `status of ${workflowId} matching`);

  beforeAll(async () => {
    testWorker = await startTestWorker(taskQueue);
    client = testWorker.client;
    base = await listen(buildIngress({ client, pool: testWorker.deps.pool, registry, alerts: settings }));
    idleBase = await listen(
      buildIngress({
        client,
        pool: testWorker.deps.pool,
        registry: new Registry(),
        alerts: { ...settings, taskQueue: idleQueue },
      }),
    );
  });

  afterAll(async () => {
    for (const app of apps) await app.close();
    for (const id of started) {
      await client.workflow
        .getHandle(id)
        .terminate('alerts test done')
        .catch(() => undefined);
    }
    await testWorker?.stop();
  });

  it('routes every rule shipped in deploy/prometheus/alerts.yml to the incident kind its rule names', () => {
    const rules = readFileSync(join(__dirname, '../../deploy/prometheus/alerts.yml'), 'utf8');
    const shipped = [...rules.matchAll(/- alert: (\w+)[\s\S]*?incident_kind: (\w+)/g)].map(
      ([, name, kind]) => ({
        name: name!,
        kind: kind!,
      }),
    );
    expect(shipped.length).toBeGreaterThanOrEqual(10);
    for (const { name, kind } of shipped) {
      expect(INCIDENT_KINDS).toContain(kind);
      expect({ name, kind: DEFAULT_ALERT_ROUTES[name]?.kind }).toEqual({ name, kind });
    }
    expect(Object.keys(DEFAULT_ALERT_ROUTES).sort()).toEqual([...new Set(shipped.map((s) => s.name))].sort());
    // An alertname without a route still opens the kind its incident_kind label names; without either, nothing.
    expect(routeAlert(DEFAULT_ALERT_ROUTES, { alertname: 'New', incident_kind: 'refund' })).toEqual({
      route: { kind: 'refund' },
      via: 'incident_kind label',
    });
    expect(routeAlert(DEFAULT_ALERT_ROUTES, { alertname: 'New' })).toEqual({
      ignored: 'no route for alertname New',
    });
  });

  it('reads BILLOPS_ALERT_ROUTES over the defaults, and refuses a bad file listing every problem', () => {
    const dir = mkdtempSync(join(tmpdir(), 'billops-alert-routes-'));
    try {
      const good = join(dir, 'routes.json');
      writeFileSync(
        good,
        JSON.stringify({
          LedgerDrift: 'overbilling_dispute',
          BillingApiLatencyHigh: { kind: 'billing_dashboard_down', severity: 'P3' },
          FailedWebhookRateHigh: null,
        }),
      );
      const routes = loadAlertRoutes(good);
      expect(routes.LedgerDrift).toEqual({ kind: 'overbilling_dispute' });
      expect(routes.BillingApiLatencyHigh).toEqual({ kind: 'billing_dashboard_down', severity: 'P3' });
      expect(routes.PaymentSuccessRateLow).toEqual({ kind: 'payment_processor_outage' });
      expect(
        routeAlert(routes, { alertname: 'FailedWebhookRateHigh', incident_kind: 'webhook_failure' }),
      ).toEqual({
        ignored: 'alertname FailedWebhookRateHigh is switched off in the routes',
      });
      expect(loadAlertRoutes(undefined)).toBe(DEFAULT_ALERT_ROUTES);

      const bad = join(dir, 'bad.json');
      writeFileSync(
        bad,
        JSON.stringify({ A: 'no_such_kind', B: { kind: 'refund', severity: 'P9' }, '': 'refund' }),
      );
      let message = '';
      try {
        loadAlertRoutes(bad);
      } catch (err) {
        expect(err).toBeInstanceOf(AlertRoutesError);
        message = (err as Error).message;
      }
      expect(message).toContain(`BILLOPS_ALERT_ROUTES=${bad}`);
      expect(message).toContain('3 problems');
      expect(message).toMatch(/ - A: must be an incident kind \(payment_processor_outage, /);
      expect(message).toMatch(/ - B: /);

      // npm start and ingress/main.ts build the ingress without alert settings: the environment gives them.
      const env = {
        ALERTMANAGER_TOKEN: 'env-token',
        BILLOPS_ALERT_ROUTES: good,
        BILLOPS_TASK_QUEUE: 'ignored',
      };
      const fromEnv = alertSettingsFromEnvironment({ taskQueue: 'q1', policy: defaultPolicy }, env);
      expect(fromEnv).toMatchObject({ taskQueue: 'q1', token: 'env-token', policy: defaultPolicy });
      expect(fromEnv?.routing.LedgerDrift).toEqual({ kind: 'overbilling_dispute' });
      expect(alertSettingsFromEnvironment(undefined, env)).toBeUndefined();
      expect(() =>
        alertSettingsFromEnvironment(
          { taskQueue: 'q1', policy: defaultPolicy },
          { ...env, BILLOPS_ALERT_ROUTES: bad },
        ),
      ).toThrow(AlertRoutesError);

      writeFileSync(bad, '{"A": ');
      expect(() => loadAlertRoutes(bad)).toThrow(/are not valid JSON/);
      expect(() => loadAlertRoutes(join(dir, 'missing.json'))).toThrow(/cannot read .*: no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a firing alert starts incident-<kind>-<fingerprint>: its workflow type, search attributes and summary', async () => {
    const fp = fingerprint();
    const answer = await post(
      idleBase,
      notification([
        {
          alertname: 'PaymentSuccessRateLow',
          fingerprint: fp,
          labels: { processor: 'stripe', severity: 'critical', incident_kind: 'payment_processor_outage' },
          summary: 'Payment success rate below 90%',
        },
      ]),
    );
    const workflowId = `incident-payment_processor_outage-${fp}`;
    expect(answer).toEqual({
      status: 200,
      body: {
        received: 1,
        results: [
          {
            alertname: 'PaymentSuccessRateLow',
            fingerprint: fp,
            status: 'firing',
            outcome: 'incident',
            workflowId,
          },
        ],
      },
    });
    const handle = client.workflow.getHandle(workflowId);
    const description = await handle.describe();
    expect(description.type).toBe('paymentProcessorOutageWorkflow');
    expect(description.taskQueue).toBe(idleQueue);
    expect(description.status.name).toBe('RUNNING');
    // The policy's severity for the kind (P1), whatever the rule's warning/critical label.
    expect(description.typedSearchAttributes.get(IncidentKindKey)).toBe('payment_processor_outage');
    expect(description.typedSearchAttributes.get(SeverityKey)).toBe('P1');
    expect(description.typedSearchAttributes.get(PaymentProcessor)).toBe('stripe');
    expect(await description.staticSummary()).toBe(
      'P1 payment processor outage · Payment success rate below 90% (stripe)',
    );
  });

  it('fills the params a kind needs from the alert, and refuses (2xx, ignored) an incident its workflow would refuse', async () => {
    const [usageFp, noProcessorFp] = [fingerprint(), fingerprint()];
    const answer = await post(
      idleBase,
      notification([
        { alertname: 'BillopsTestUsageLag', fingerprint: usageFp, labels: { meter: 'api_calls' } },
        { alertname: 'PaymentSuccessRateLow', fingerprint: noProcessorFp },
      ]),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.results).toEqual([
      expect.objectContaining({
        outcome: 'incident',
        workflowId: `incident-usage_metering_failure-${usageFp}`,
      }),
      expect.objectContaining({
        fingerprint: noProcessorFp,
        outcome: 'ignored',
        reason:
          'a payment processor outage needs its processor: the alert has no processor label (stripe or paystack) ' +
          'and its route no params.processor (BILLOPS_ALERT_ROUTES)',
      }),
    ]);
    expect(await exists(`incident-payment_processor_outage-${noProcessorFp}`)).toBe(false);

    // The usage incident's window runs from the alert's start to when it arrived, for the meter it names.
    const history = await client.workflow
      .getHandle(`incident-usage_metering_failure-${usageFp}`)
      .fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
    const input = JSON.parse(Buffer.from(payload!).toString('utf8')) as { params: Record<string, unknown> };
    expect(input.params).toEqual({ from: expect.any(String), to: expect.any(String), meters: ['api_calls'] });
    expect(
      Date.parse(input.params.to as string) - Date.parse(input.params.from as string),
    ).toBeGreaterThanOrEqual(60_000);
  });

  it('a re-fired alert reaches the same incident, and its resolution sends alertResolved', async () => {
    const fp = fingerprint();
    const workflowId = `incident-stuck_transactions-${fp}`;
    const firing = notification([{ alertname: TEST_ALERT, fingerprint: fp, summary: 'Payments stuck' }]);

    const first = await post(base, firing);
    expect(first.status).toBe(200);
    expect(first.body.results?.[0]).toMatchObject({ outcome: 'incident', workflowId });
    const opened = await statusWhen(workflowId, (s) => s.timeline.some((e) => e.event === 'opened'));
    expect(opened).toMatchObject({
      kind: 'stuck_transactions',
      source: 'alertmanager',
      openedBy: 'alertmanager',
    });
    expect(opened.summary).toBe('Payments stuck');
    const { runId } = await client.workflow.getHandle(workflowId).describe();

    const again = await post(base, firing);
    expect(again.body.results?.[0]).toMatchObject({ outcome: 'incident', workflowId });
    const refired = await statusWhen(workflowId, (s) =>
      s.timeline.some((e) => e.event === 'alert_fired_again'),
    );
    expect(refired.timeline.filter((e) => e.event === 'opened')).toHaveLength(1);
    expect((await client.workflow.getHandle(workflowId).describe()).runId).toBe(runId);

    const endsAt = new Date(Date.now() - 5_000).toISOString();
    const resolved = await post(
      base,
      notification([{ alertname: TEST_ALERT, fingerprint: fp, status: 'resolved', endsAt }]),
    );
    expect(resolved).toEqual({
      status: 200,
      body: {
        received: 1,
        results: [
          {
            alertname: TEST_ALERT,
            fingerprint: fp,
            status: 'resolved',
            outcome: 'alert_resolved',
            workflowId,
          },
        ],
      },
    });
    const after = await statusWhen(workflowId, (s) => s.alertResolvedAt !== null);
    expect(Date.parse(after.alertResolvedAt!)).toBeGreaterThan(Date.parse(opened.openedAt));
    expect(after.timeline.find((e) => e.event === 'alert_resolved')?.detail).toBe(`alert ended at ${endsAt}`);
  });

  it('a critical alert whose warning twin has a running incident joins it instead of opening a second one', async () => {
    const pair = { run: randomBytes(4).toString('hex') };
    const warning = { alertname: TEST_ALERT, severity: 'warning', ...pair };
    const critical = { ...warning, severity: 'critical' };
    const [warningFp, criticalFp] = [alertFingerprint(warning), alertFingerprint(critical)];
    const warningIncident = `incident-stuck_transactions-${warningFp}`;
    const criticalIncident = `incident-stuck_transactions-${criticalFp}`;

    await post(base, notification([{ alertname: TEST_ALERT, fingerprint: warningFp, labels: warning }]));
    await statusWhen(warningIncident, (s) => s.timeline.some((e) => e.event === 'opened'));
    const joined = await post(
      base,
      notification([{ alertname: TEST_ALERT, fingerprint: criticalFp, labels: critical }]),
    );
    expect(joined.body.results).toEqual([
      {
        alertname: TEST_ALERT,
        fingerprint: criticalFp,
        status: 'firing',
        outcome: 'incident',
        workflowId: warningIncident,
        reason: 'critical twin: joined the warning incident',
      },
    ]);
    const status = await statusWhen(warningIncident, (s) =>
      s.timeline.some((e) => e.event === 'alert_fired_again' && e.detail === criticalFp),
    );
    expect(status.alertResolvedAt).toBeNull();
    expect(await exists(criticalIncident)).toBe(false);

    // The critical one ending first does not end the incident: the warning, still firing, owns it.
    const criticalEnds = await post(
      base,
      notification([
        {
          alertname: TEST_ALERT,
          fingerprint: criticalFp,
          labels: critical,
          status: 'resolved',
          endsAt: new Date().toISOString(),
        },
      ]),
    );
    expect(criticalEnds.body.results?.[0]).toMatchObject({
      outcome: 'no_incident',
      workflowId: criticalIncident,
    });
    expect(
      (await client.workflow.getHandle(warningIncident).query(incidentStatusQuery)).alertResolvedAt,
    ).toBeNull();
  });

  it('answers 2xx for alerts it does not act on: unknown or switched-off names, resolved without an incident', async () => {
    const [unknown, off, orphan, labelled] = [fingerprint(), fingerprint(), fingerprint(), fingerprint()];
    const before = await registry.getSingleMetricAsString('billops_alerts_received_total');
    const answer = await post(
      base,
      notification([
        { alertname: 'SomebodyElsesAlert', fingerprint: unknown },
        {
          alertname: 'DunningConversionRateLow',
          fingerprint: off,
          labels: { incident_kind: 'payment_processor_outage' },
        },
        { alertname: TEST_ALERT, fingerprint: orphan, status: 'resolved', endsAt: new Date().toISOString() },
        {
          alertname: 'StuckPaymentsByLabel',
          fingerprint: labelled,
          labels: { incident_kind: 'stuck_transactions' },
          status: 'resolved',
          endsAt: new Date().toISOString(),
        },
      ]),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.results).toEqual([
      expect.objectContaining({
        fingerprint: unknown,
        outcome: 'ignored',
        reason: 'no route for alertname SomebodyElsesAlert',
      }),
      expect.objectContaining({
        fingerprint: off,
        outcome: 'ignored',
        reason: 'alertname DunningConversionRateLow is switched off in the routes',
      }),
      expect.objectContaining({
        fingerprint: orphan,
        outcome: 'no_incident',
        workflowId: `incident-stuck_transactions-${orphan}`,
      }),
      expect.objectContaining({
        fingerprint: labelled,
        outcome: 'no_incident',
        workflowId: `incident-stuck_transactions-${labelled}`,
      }),
    ]);
    for (const id of [`incident-stuck_transactions-${orphan}`, `incident-stuck_transactions-${labelled}`]) {
      expect(await exists(id)).toBe(false);
    }
    const after = await registry.getSingleMetricAsString('billops_alerts_received_total');
    const count = (text: string, outcome: string) =>
      Number(
        new RegExp(`billops_alerts_received_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0,
      );
    expect(count(after, 'ignored') - count(before, 'ignored')).toBe(2);
    expect(count(after, 'no_incident') - count(before, 'no_incident')).toBe(2);
  });

  it('refuses a missing or wrong bearer token with 401 and starts nothing; unset token is 503 saying what to set', async () => {
    const fp = fingerprint();
    const body = notification([{ alertname: TEST_ALERT, fingerprint: fp }]);
    const none = await post(base, body, {});
    expect(none).toEqual({
      status: 401,
      body: {
        statusCode: 401,
        error: 'Unauthorized',
        message: 'send Authorization: Bearer <ALERTMANAGER_TOKEN>',
      },
    });
    const wrong = await post(base, body, { authorization: `Bearer ${TOKEN}x` });
    expect(wrong.status).toBe(401);
    expect(wrong.body.message).toBe('the bearer token is not ALERTMANAGER_TOKEN');
    const basic = await post(base, body, {
      authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
    });
    expect(basic.status).toBe(401);
    // Refused before the body is read: an oversized body from a stranger is 401, not 413.
    const huge = await post(base, 'x'.repeat(64 * 1024), { authorization: 'Bearer nope' });
    expect(huge.status).toBe(401);
    expect(await exists(`incident-stuck_transactions-${fp}`)).toBe(false);

    const unconfigured = await listen(
      buildIngress({
        client,
        pool: testWorker.deps.pool,
        registry: new Registry(),
        alerts: { ...settings, token: undefined },
      }),
    );
    const answer = await post(unconfigured, body);
    expect(answer.status).toBe(503);
    expect(answer.body.message).toMatch(/^Alertmanager alerts are not configured: set ALERTMANAGER_TOKEN/);
    expect(await exists(`incident-stuck_transactions-${fp}`)).toBe(false);
  });

  it('answers 400 with the reason for malformed JSON or a body that is not a version 4 notification, 413 when too large', async () => {
    const fp = fingerprint();
    const malformed = await post(base, '{"version": "4", "alerts": [');
    expect(malformed.status).toBe(400);
    expect(malformed.body.message).toMatch(/JSON/);

    const v3 = { ...notification([{ alertname: TEST_ALERT, fingerprint: fp }]), version: '3' };
    const wrongVersion = await post(base, v3);
    expect(wrongVersion.status).toBe(400);
    expect(wrongVersion.body.message).toBe(
      'not an Alertmanager webhook notification (version 4): version: must be "4" (Alertmanager webhook version 4)',
    );

    const body = notification([{ alertname: TEST_ALERT, fingerprint: fp }]) as {
      alerts: Record<string, unknown>[];
    };
    delete body.alerts[0]!.fingerprint;
    (body.alerts[0]!.labels as Record<string, string>).alertname = '';
    const missing = await post(base, body);
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain('alerts.0.labels: must carry an alertname');
    // zod 4's own message for a missing field (zod 3 said "Required").
    expect(missing.body.message).toContain(
      'alerts.0.fingerprint: Invalid input: expected string, received undefined',
    );

    const many = notification(
      Array.from({ length: 60 }, (_, i) => ({
        alertname: TEST_ALERT,
        fingerprint: fp,
        summary: `alert ${i} ${'x'.repeat(300)}`,
      })),
    );
    const tooLarge = await post(base, many);
    expect(tooLarge.status).toBe(413);
    expect(await exists(`incident-stuck_transactions-${fp}`)).toBe(false);
  });

  describe('hostile input', () => {
    /** A notification of one firing alert of the test rule, to be spoiled. */
    const hostile = () =>
      notification([{ alertname: TEST_ALERT, fingerprint: fingerprint() }]) as {
        alerts: Record<string, unknown>[];
      };

    function withAlert(change: (alert: Record<string, unknown>) => void): Record<string, unknown> {
      const body = hostile();
      change(body.alerts[0]!);
      return body;
    }

    it.each([
      ['a NUL escape in a label value', String.raw`"labels":{"alertname":"${TEST_ALERT}","team":"a\u0000b"`],
      [
        'a lone surrogate escape in a label value',
        String.raw`"labels":{"alertname":"${TEST_ALERT}","team":"x\ud800"`,
      ],
      [
        'a lone surrogate escape in a label name',
        String.raw`"labels":{"alertname":"${TEST_ALERT}","\udc00":"x"`,
      ],
      [
        'a NUL escape in the tenant label',
        String.raw`"labels":{"alertname":"${TEST_ALERT}","tenant_id":"t\u0000"`,
      ],
    ])('answers an alert with %s 2xx, per alert', async (_name, labels) => {
      const fp = fingerprint();
      const text = JSON.stringify(notification([{ alertname: TEST_ALERT, fingerprint: fp }])).replace(
        `"labels":{"alertname":"${TEST_ALERT}"`,
        labels,
      );

      const answer = await post(idleBase, text);

      expect(answer.status).toBe(200);
      expect(answer.body.results).toEqual([expect.objectContaining({ fingerprint: fp })]);
    });

    it('answers an alert whose summary carries a NUL and a lone surrogate escape 2xx, opening its incident', async () => {
      const fp = fingerprint();
      const text = JSON.stringify(
        notification([{ alertname: TEST_ALERT, fingerprint: fp, summary: 'stuck SUMMARY' }]),
      ).replace('SUMMARY', String.raw`\u0000 \ud800 payments`);

      const answer = await post(idleBase, text);

      expect(answer.status).toBe(200);
      expect(answer.body.results).toEqual([
        expect.objectContaining({ fingerprint: fp, outcome: 'incident' }),
      ]);
      const summary = await client.workflow.getHandle(answer.body.results![0]!.workflowId!).describe();
      expect(await summary.staticSummary()).toMatch(/ · stuck \ufffd \ufffd payments$/);
    });

    it.each([
      ['a tenant label of 8 KiB', { tenant_id: 't'.repeat(8 * 1024) }],
      ['a label value of 8 KiB', { team: 'x'.repeat(8 * 1024) }],
      ['a label name of 2 KiB', { ['n'.repeat(2 * 1024)]: 'x' }],
    ])('answers an alert with %s 2xx, ignored with the reason, and opens nothing', async (_name, labels) => {
      const fp = fingerprint();
      const answer = await post(idleBase, notification([{ alertname: TEST_ALERT, fingerprint: fp, labels }]));

      expect(answer.status).toBe(200);
      expect(answer.body.results).toEqual([
        expect.objectContaining({
          fingerprint: fp,
          outcome: 'ignored',
          reason: expect.stringMatching(/label/),
        }),
      ]);
      expect(await exists(`incident-stuck_transactions-${fp}`)).toBe(false);
    });

    it.each([
      ['labels with a number', withAlert((a) => ((a.labels as Record<string, unknown>).team = 42))],
      ['labels with an object', withAlert((a) => ((a.labels as Record<string, unknown>).team = { a: 1 }))],
      ['labels an array', withAlert((a) => (a.labels = ['alertname']))],
      ['annotations a string', withAlert((a) => (a.annotations = 'summary'))],
      ['a fingerprint with a NUL', withAlert((a) => (a.fingerprint = 'ab\u0000cd'))],
      ['startsAt a number', withAlert((a) => (a.startsAt = 12))],
      ['an alert that is null', { ...hostile(), alerts: [null] }],
      ['alerts an object', { ...hostile(), alerts: { 0: {} } }],
      ['a body that is null', null],
      ['a body that is a string', 'alerts'],
      ['a body that is an array', [hostile()]],
    ])('refuses a notification with %s with 400 and the reason', async (_name, body) => {
      const answer = await post(base, JSON.stringify(body));

      expect(answer.status).toBe(400);
      expect(String(answer.body.message)).toMatch(
        /^not an Alertmanager webhook notification \(version 4\): /,
      );
    });

    it('refuses a body nested too deeply with 4xx', async () => {
      const answer = await post(base, `{"version":"4","alerts":${'['.repeat(5000)}${']'.repeat(5000)}}`);

      expect(answer.status).toBeGreaterThanOrEqual(400);
      expect(answer.status).toBeLessThan(500);
    });
  });

  it('answers 500 when Temporal refuses (so Alertmanager retries), and never logs the token', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const broken = new Client({
      connection: await Connection.connect({ address: testEnv('temporalAddress') }),
      namespace: `no-such-namespace-${randomBytes(4).toString('hex')}`,
    });
    const app = Fastify({ logger: { level: 'trace', stream } });
    registerAlertRoutes(app, { settings: { ...settings, temporalTimeoutMs: 5_000 }, client: broken });
    try {
      const url = await listen(app);
      const fp = fingerprint();
      const answer = await post(url, notification([{ alertname: TEST_ALERT, fingerprint: fp }]));
      expect(answer.status).toBe(500);
      expect(answer.body.message).toBe(
        '1 of 1 alerts could not be handed to Temporal; send the notification again',
      );
      expect(answer.body.results?.[0]).toMatchObject({ fingerprint: fp, outcome: 'failed' });
      expect((await post(url, {}, { authorization: 'Bearer wrong-token-value' })).status).toBe(401);
      await sleep(100);
      const log = lines.join('');
      expect(log).toContain('an alert could not be handed to Temporal');
      expect(log).toContain(fp);
      expect(log).not.toContain(TOKEN);
      expect(log).not.toContain('wrong-token-value');
    } finally {
      await broken.connection.close();
    }
  });

  it('is described at /docs/json with its body schema and bearer authentication', async () => {
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as {
      paths: Record<
        string,
        { post?: { security?: unknown; requestBody?: { content: Record<string, { schema: unknown }> } } }
      >;
    };
    const route = doc.paths['/alerts/alertmanager']?.post;
    expect(route?.security).toEqual([{ bearer: [] }]);
    expect(JSON.stringify(route?.requestBody?.content['application/json']?.schema)).toContain('fingerprint');
  });
});
