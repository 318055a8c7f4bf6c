// The metrics billops exports (ingress/metrics.ts) against the alert rules that read them
// (deploy/prometheus/alerts.yml): every metric, label and label value a rule uses is exported, every threshold of
// domain/policy/defaults.ts `monitoring` has its warning and critical rule, and recorded values come out with their labels.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import { buildIngress, type IngressDependencies } from '../../../ingress/server';
import {
  createBillopsMetrics,
  DUNNING_CLOSE_OUTCOMES,
  instrumentRequests,
  PAYMENT_STATUSES,
  WEBHOOK_OUTCOMES,
  WEBHOOK_PROVIDERS,
  type BillopsMetrics,
  type SettledTotals,
} from '../../../ingress/metrics';
import { defaultPolicy, INCIDENT_KINDS, type Policy } from '../../../domain/policy';

const rulesFile = join(resolve(__dirname, '..', '..', '..'), 'deploy', 'prometheus', 'alerts.yml');

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  summary?: string;
}

/**
 * Reads the alerting rules of alerts.yml: just enough YAML for that file's shape (`- alert:` items with `expr` inline
 * or as a `|` block, `for`, `labels`, `annotations`). promtool itself validates the file in test/integration.
 */
function readRules(text: string): AlertRule[] {
  const lines = text.split('\n');
  const rules: AlertRule[] = [];
  let rule: AlertRule | undefined;
  let section: 'labels' | 'annotations' | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^\s*#/.test(line) || line.trim() === '') continue;
    const start = /^\s*- alert:\s*(\S+)\s*$/.exec(line);
    if (start?.[1]) {
      rule = { alert: start[1], expr: '', labels: {} };
      rules.push(rule);
      section = undefined;
      continue;
    }
    if (!rule) continue;
    const field = /^(\s*)(expr|for|labels|annotations|[a-z_]+):\s*(.*)$/.exec(line);
    if (!field) continue;
    const [, indent = '', key = '', rawValue = ''] = field;
    const value = rawValue.replace(/^'(.*)'$/, '$1');
    if (key === 'expr') {
      if (value === '|') {
        const body: string[] = [];
        while (i + 1 < lines.length && (lines[i + 1] ?? '').startsWith(`${indent}  `))
          body.push(lines[++i] ?? '');
        rule.expr = body.map((l) => l.trim()).join('\n');
      } else rule.expr = value;
      section = undefined;
    } else if (key === 'for') rule.for = value;
    else if (key === 'labels' || key === 'annotations') section = key;
    else if (section === 'labels') rule.labels[key] = value;
    else if (section === 'annotations' && key === 'summary') rule.summary = value;
  }
  return rules;
}

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'bool', 'offset']);

/** The metric names a PromQL expression selects (function and keyword names and label names left out). */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\[[^\]]*\]/g, '') // range selectors
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ''); // grouping labels
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = stripped.slice((match.index ?? 0) + match[0].length).trimStart();
    if (after.startsWith('(') || PROMQL_KEYWORDS.has(match[0])) continue; // a function or aggregation
    names.add(match[0]);
  }
  return [...names];
}

/** Each `metric{label="v", label=~"a|b"}` selector of an expression: the label and the values it can match. */
function selectors(expr: string): { metric: string; label: string; values: string[] }[] {
  const found: { metric: string; label: string; values: string[] }[] = [];
  for (const sel of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}/g)) {
    for (const m of (sel[2] ?? '').matchAll(/([a-zA-Z_]+)\s*(=~|=)\s*"([^"]*)"/g)) {
      found.push({ metric: sel[1] ?? '', label: m[1] ?? '', values: (m[3] ?? '').split('|') });
    }
  }
  return found;
}

/** The labels of `by (...)` clauses. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) =>
    (m[1] ?? '').split(',').map((l) => l.trim()),
  );
}

/** The number the rule's condition compares with (`< 0.95`, `> 5`; not the `>= 10` volume guard). */
function threshold(expr: string): { op: '<' | '>'; value: number } {
  const m = /([<>])(?!=)\s*([0-9.]+)/.exec(expr);
  if (!m) throw new Error(`no threshold comparison in: ${expr}`);
  return { op: m[1] as '<' | '>', value: Number(m[2]) };
}

/** Which policy threshold each alert implements, and the factor from the rule's unit to the policy's. */
const POLICY_OF: Record<string, { key: keyof Policy['monitoring']; scale: number }> = {
  PaymentSuccessRateLow: { key: 'paymentSuccessRatePercent', scale: 100 },
  WebhookProcessingDelayed: { key: 'webhookProcessingSeconds', scale: 1 },
  FailedWebhookRateHigh: { key: 'failedWebhookRatePercent', scale: 100 },
  DunningConversionRateLow: { key: 'dunningConversionRatePercent', scale: 100 },
  BillingApiLatencyHigh: { key: 'billingApiLatencyMs', scale: 1000 },
};

const rules = readRules(readFileSync(rulesFile, 'utf8'));

/** Rules that watch for something that should not happen at all rather than a policy threshold: warnings only. */
const NO_THRESHOLD = new Set(['WebhookTenantUnknown']);
const thresholdRules = rules.filter((r) => !NO_THRESHOLD.has(r.alert));

/** Records one value into every metric, so each shows its label names in the output. */
function observeEverything(metrics: BillopsMetrics): void {
  metrics.recordPayment('stripe', 'success');
  metrics.recordWebhook('stripe', 'processed', 0.2);
  metrics.recordUnknownTenant('paystack');
  metrics.recordDunningClosed('recovered');
  metrics.billingApiRequestDuration.observe({ method: 'GET', route: '/usage/lag', status_code: '200' }, 0.01);
  metrics.setUsageIngestionLag('api_calls', 12);
}

/** Metric name (a histogram's _bucket/_sum/_count included) → its type and the label names its samples carry. */
async function exported(registry: Registry): Promise<Map<string, { type: string; labels: Set<string> }>> {
  const byName = new Map<string, { type: string; labels: Set<string> }>();
  for (const metric of await registry.getMetricsAsJSON()) {
    const entry = { type: String(metric.type), labels: new Set<string>() };
    byName.set(metric.name, entry);
    for (const value of metric.values as { metricName?: string; labels: Record<string, unknown> }[]) {
      for (const label of Object.keys(value.labels)) entry.labels.add(label);
      if (value.metricName) byName.set(value.metricName, entry);
    }
  }
  return byName;
}

describe('deploy/prometheus/alerts.yml against domain/policy/defaults.ts', () => {
  it('has a warning and a critical rule for every monitoring threshold, and nothing else', () => {
    expect(thresholdRules).toHaveLength(10);
    const pairs = thresholdRules
      .map((r) => `${POLICY_OF[r.alert]?.key ?? r.alert}/${r.labels.severity}`)
      .sort();
    const wanted = Object.keys(defaultPolicy.monitoring).flatMap((key) => [
      `${key}/critical`,
      `${key}/warning`,
    ]);
    expect(pairs).toEqual(wanted.sort());
  });

  it.each(thresholdRules.map((r) => [`${r.alert} (${r.labels.severity})`, r] as const))(
    '%s compares with the policy threshold and has for, summary and an incident kind',
    (_name, rule) => {
      const policy = POLICY_OF[rule.alert];
      if (!policy) throw new Error(`${rule.alert} maps to no domain/policy/defaults.ts monitoring threshold`);
      const levels = defaultPolicy.monitoring[policy.key] as Record<string, number>;
      const { op, value } = threshold(rule.expr);
      const level = rule.labels.severity === 'critical' ? 'critical' : 'warn';
      const bound = 'warnBelow' in levels ? 'Below' : 'Above';
      expect(op).toBe(bound === 'Below' ? '<' : '>');
      expect(value * policy.scale).toBeCloseTo(levels[`${level}${bound}`] ?? NaN, 9);
      expect(['warning', 'critical']).toContain(rule.labels.severity);
      expect(INCIDENT_KINDS).toContain(rule.labels.incident_kind);
      expect(rule.for).toMatch(/^\d+[smhd]$/);
      expect(rule.summary).toBeTruthy();
    },
  );

  it.each([...NO_THRESHOLD])(
    '%s is one warning on any occurrence, with for, summary and an incident kind',
    (name) => {
      const shipped = rules.filter((r) => r.alert === name);
      expect(shipped.map((r) => r.labels.severity)).toEqual(['warning']);
      const [rule] = shipped;
      expect(threshold(rule!.expr)).toEqual({ op: '>', value: 0 });
      expect(INCIDENT_KINDS).toContain(rule!.labels.incident_kind);
      expect(rule!.for).toMatch(/^\d+[smhd]$/);
      expect(rule!.summary).toBeTruthy();
    },
  );
});

describe('createBillopsMetrics', () => {
  it('exports every metric, label and label value the alert rules use', async () => {
    const metrics = createBillopsMetrics();
    observeEverything(metrics);
    const text = await metrics.registry.metrics();
    const byName = await exported(metrics.registry);

    const used = new Set(rules.flatMap((r) => metricNames(r.expr)));
    expect([...used].sort()).toEqual([
      'billing_api_request_duration_seconds_bucket',
      'dunning_lifecycles_closed_total',
      'payment_transactions_total',
      'webhook_events_total',
      'webhook_events_unknown_tenant_total',
      'webhook_processing_seconds_bucket',
    ]);
    for (const name of used) {
      const base = name.replace(/_bucket$/, '');
      expect(text).toContain(`# TYPE ${base} ${name.endsWith('_bucket') ? 'histogram' : 'counter'}`);
      expect(text).toMatch(new RegExp(`^${name}\\{`, 'm'));
    }

    const allowed: Record<string, readonly string[]> = {
      status: PAYMENT_STATUSES,
      outcome: [...WEBHOOK_OUTCOMES, ...DUNNING_CLOSE_OUTCOMES],
      provider: WEBHOOK_PROVIDERS,
    };
    for (const rule of rules) {
      for (const { metric, label, values } of selectors(rule.expr)) {
        expect(byName.get(metric)?.labels).toContain(label);
        for (const v of values) expect(allowed[label]).toContain(v);
      }
      // Every `by` label is carried by a metric the rule reads (le by the histograms).
      const carried = new Set(metricNames(rule.expr).flatMap((n) => [...(byName.get(n)?.labels ?? [])]));
      for (const label of groupingLabels(rule.expr)) expect(carried).toContain(label);
    }
  });

  it('also exports unknown-tenant webhooks, API latency and usage ingestion lag', async () => {
    const metrics = createBillopsMetrics();
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE webhook_events_unknown_tenant_total counter');
    expect(text).toContain('# TYPE billing_api_request_duration_seconds histogram');
    expect(text).toContain('# TYPE usage_ingestion_lag_seconds gauge');
  });

  it('starts every alerting counter series at 0, so a ratio never loses its numerator', async () => {
    const text = await createBillopsMetrics().registry.metrics();
    expect(text).toContain('payment_transactions_total{processor="stripe",status="success"} 0');
    expect(text).toContain('payment_transactions_total{processor="paystack",status="failed"} 0');
    expect(text).toContain('webhook_events_total{provider="paystack",outcome="rejected"} 0');
    expect(text).toContain('dunning_lifecycles_closed_total{outcome="recovered"} 0');
    expect(text).toContain('webhook_events_unknown_tenant_total{provider="stripe"} 0');
  });

  it('turns the database totals of settled payments and closed lifecycles into counters that only grow', async () => {
    const reads: (SettledTotals | Error)[] = [
      {
        payments: [
          { processor: 'stripe', status: 'success', count: 40 },
          { processor: 'stripe', status: 'failed', count: 3 },
        ],
        dunningClosed: [{ outcome: 'recovered', count: 5 }],
      },
      new Error('database unreachable'),
      {
        payments: [
          { processor: 'stripe', status: 'success', count: 45 },
          { processor: 'stripe', status: 'failed', count: 3 },
        ],
        dunningClosed: [
          { outcome: 'recovered', count: 6 },
          { outcome: 'deleted', count: 1 },
        ],
      },
    ];
    let scrape = 0;
    let queries = 0;
    const metrics = createBillopsMetrics(new Registry(), {
      settledTotals: async () => {
        queries += 1;
        const read = reads[Math.min(scrape, reads.length - 1)]!;
        if (read instanceof Error) throw read;
        return read;
      },
    });
    const show = async () => {
      const text = await metrics.registry.metrics();
      scrape += 1;
      return text;
    };
    let text = await show();
    expect(text).toContain('payment_transactions_total{processor="stripe",status="success"} 40');
    expect(text).toContain('dunning_lifecycles_closed_total{outcome="recovered"} 5');
    // A failed read keeps the counters where they were.
    text = await show();
    expect(text).toContain('payment_transactions_total{processor="stripe",status="success"} 40');
    text = await show();
    expect(text).toContain('payment_transactions_total{processor="stripe",status="success"} 45');
    expect(text).toContain('payment_transactions_total{processor="stripe",status="failed"} 3');
    expect(text).toContain('dunning_lifecycles_closed_total{outcome="recovered"} 6');
    expect(text).toContain('dunning_lifecycles_closed_total{outcome="deleted"} 1');
    // One database read per scrape serves both counters.
    expect(queries).toBe(3);
  });

  it('shows recorded values with their labels', async () => {
    const metrics = createBillopsMetrics();
    metrics.recordPayment('stripe', 'failed');
    metrics.recordPayment('stripe', 'failed');
    metrics.recordPayment('paystack', 'success');
    metrics.recordWebhook('paystack', 'failed', 7);
    metrics.recordWebhook('paystack', 'duplicate');
    metrics.recordUnknownTenant('stripe');
    metrics.recordDunningClosed('recovered');
    metrics.recordDunningClosed('deleted');
    metrics.recordDunningClosed('deleted');
    metrics.setUsageIngestionLag('api_calls', 42.5);
    const text = await metrics.registry.metrics();

    expect(text).toContain('payment_transactions_total{processor="stripe",status="failed"} 2');
    expect(text).toContain('payment_transactions_total{processor="paystack",status="success"} 1');
    expect(text).toContain('webhook_events_total{provider="paystack",outcome="failed"} 1');
    expect(text).toContain('webhook_events_total{provider="paystack",outcome="duplicate"} 1');
    // 7 s lands above the 5 s bucket and within 7.5 s; the duplicate had no duration, so one observation.
    expect(text).toContain('webhook_processing_seconds_bucket{le="5",provider="paystack"} 0');
    expect(text).toContain('webhook_processing_seconds_bucket{le="7.5",provider="paystack"} 1');
    expect(text).toContain('webhook_processing_seconds_count{provider="paystack"} 1');
    expect(text).toContain('webhook_processing_seconds_sum{provider="paystack"} 7');
    expect(text).toContain('webhook_events_unknown_tenant_total{provider="stripe"} 1');
    expect(text).toContain('dunning_lifecycles_closed_total{outcome="recovered"} 1');
    expect(text).toContain('dunning_lifecycles_closed_total{outcome="deleted"} 2');
    expect(text).toContain('usage_ingestion_lag_seconds{meter="api_calls"} 42.5');
  });

  it('has histogram buckets at each alert threshold', async () => {
    const metrics = createBillopsMetrics();
    metrics.recordWebhook('stripe', 'processed', 0.01);
    metrics.billingApiRequestDuration.observe({ method: 'GET', route: '/x', status_code: '200' }, 0.001);
    const out = await metrics.registry.metrics();
    const bounds = (name: string): number[] =>
      [...out.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"`, 'gm'))]
        .map((m) => m[1] ?? '')
        .filter((le) => le !== '+Inf')
        .map(Number);
    const webhook = bounds('webhook_processing_seconds');
    expect(webhook[0]).toBe(0.05);
    expect(webhook[webhook.length - 1]).toBe(30);
    expect(webhook).toEqual(expect.arrayContaining([5, 15]));
    expect(bounds('billing_api_request_duration_seconds')).toEqual(expect.arrayContaining([0.5, 2]));
  });

  it('reuses the metrics already on a registry, and refuses a same-named metric of another kind', () => {
    const registry = new Registry();
    const first = createBillopsMetrics(registry);
    const second = createBillopsMetrics(registry);
    expect(second.registry).toBe(registry);
    expect(second.paymentTransactions).toBe(first.paymentTransactions);
    expect(second.billingApiRequestDuration).toBe(first.billingApiRequestDuration);

    const clash = new Registry();
    new Gauge({ name: 'payment_transactions_total', help: 'not a counter', registers: [clash] });
    expect(() => createBillopsMetrics(clash)).toThrow(/payment_transactions_total.*different kind/);
  });

  it('reads usage ingestion lag on each scrape, keeping the last values when the read fails', async () => {
    const answers: (() => { meter: string; lagSeconds: number }[])[] = [
      () => [
        { meter: 'api_calls', lagSeconds: 30 },
        { meter: 'storage_gb', lagSeconds: 7200 },
      ],
      () => {
        throw new Error('database unavailable');
      },
      () => [{ meter: 'api_calls', lagSeconds: 5 }],
    ];
    const metrics = createBillopsMetrics(new Registry(), {
      usageLag: async () => (answers.shift() ?? (() => []))(),
    });
    const scrape = async (): Promise<string> =>
      metrics.registry.getSingleMetricAsString('usage_ingestion_lag_seconds');

    let text = await scrape();
    expect(text).toContain('usage_ingestion_lag_seconds{meter="api_calls"} 30');
    expect(text).toContain('usage_ingestion_lag_seconds{meter="storage_gb"} 7200');
    text = await scrape(); // the read failed: the scrape still succeeds with the last values
    expect(text).toContain('usage_ingestion_lag_seconds{meter="storage_gb"} 7200');
    text = await scrape(); // a meter no longer reported drops out
    expect(text).toContain('usage_ingestion_lag_seconds{meter="api_calls"} 5');
    expect(text).not.toContain('storage_gb');
  });
});

/** Listens on a loopback port and returns a GET/POST helper: real HTTP, because app.inject's light-my-request needs
 * the ESM-only `cookie` 2, which Jest on Node 20 cannot require. */
async function serve(app: FastifyInstance): Promise<(method: string, path: string) => Promise<Response>> {
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return (method, path) =>
    fetch(`${address}${path}`, {
      method,
      ...(method === 'POST' && { body: '{}', headers: { 'content-type': 'application/json' } }),
    });
}

describe('instrumentRequests', () => {
  it('times each request by route pattern, method and status; skips /metrics and /healthz; buckets 404s', async () => {
    const app = Fastify();
    app.get('/invoices/:id', async (request) => {
      await new Promise((r) => setTimeout(r, 30));
      return { id: (request.params as { id: string }).id };
    });
    app.post('/refunds', async (_request, reply) => reply.code(422).send({ error: 'not refundable' }));
    app.get('/metrics', async () => 'metrics');
    app.get('/healthz', async () => 'ok');
    const metrics = createBillopsMetrics();
    instrumentRequests(app, metrics); // after the routes: a hook added before ready() applies to every route

    const request = await serve(app);
    try {
      for (const path of ['/invoices/1', '/invoices/2', '/metrics', '/healthz', '/nope']) {
        await (await request('GET', path)).text();
      }
      await (await request('POST', '/refunds')).text();
    } finally {
      await app.close();
    }

    const text = await metrics.registry.getSingleMetricAsString('billing_api_request_duration_seconds');
    expect(text).toContain(
      'billing_api_request_duration_seconds_count{method="GET",route="/invoices/:id",status_code="200"} 2',
    );
    expect(text).toContain(
      'billing_api_request_duration_seconds_count{method="POST",route="/refunds",status_code="422"} 1',
    );
    expect(text).toContain(
      'billing_api_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"} 1',
    );
    expect(text).not.toContain('/metrics');
    expect(text).not.toContain('/healthz');
    // Two requests of at least 30 ms each: the observed time is the handler's, in seconds.
    const sum =
      /billing_api_request_duration_seconds_sum\{method="GET",route="\/invoices\/:id",status_code="200"\} ([\d.e-]+)/.exec(
        text,
      );
    expect(Number(sum?.[1])).toBeGreaterThanOrEqual(0.055);
    expect(Number(sum?.[1])).toBeLessThan(5);
  });

  it('wires into buildIngress through its registry: GET /metrics serves the billops metrics', async () => {
    const registry = new Registry();
    const metrics = createBillopsMetrics(registry);
    // GET /metrics touches neither Temporal nor the database.
    // buildIngress instruments its own requests with the metrics on this registry.
    const app = buildIngress({ registry } as unknown as IngressDependencies);
    metrics.recordPayment('stripe', 'success');

    const request = await serve(app);
    let first: { status: number; body: string };
    let second: string;
    try {
      const response = await request('GET', '/metrics');
      first = { status: response.status, body: await response.text() };
      await (await request('GET', '/no-such-route')).text();
      second = await (await request('GET', '/metrics')).text();
    } finally {
      await app.close();
    }

    expect(first.status).toBe(200);
    expect(first.body).toContain('payment_transactions_total{processor="stripe",status="success"} 1');
    for (const name of [
      'payment_transactions_total',
      'webhook_processing_seconds',
      'webhook_events_total',
      'webhook_events_unknown_tenant_total',
      'dunning_lifecycles_closed_total',
      'billing_api_request_duration_seconds',
      'usage_ingestion_lag_seconds',
    ]) {
      expect(first.body).toContain(`# TYPE ${name} `);
    }
    expect(second).toContain(
      'billing_api_request_duration_seconds_count{method="GET",route="unmatched",status_code="404"} 1',
    );
  });
});
