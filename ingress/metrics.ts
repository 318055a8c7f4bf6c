// The Prometheus metrics billops exports on GET /metrics, named as deploy/prometheus/alerts.yml (after seed 004's
// "Monitoring & Alerts") reads them, plus a Fastify hook that times every billing API request.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client';
import type { DunningCloseOutcome, PaymentStatus, SettledTotals } from '../db/settledTotals';
import type { Processor, ProcessorOrNone } from '../domain/vocabulary';

export type PaymentProcessorLabel = ProcessorOrNone;
/** The settled totals' vocabulary is the database's (db/settledTotals.ts); the metrics re-export it. */
export type { DunningCloseOutcome, PaymentStatus, SettledTotals };
export type WebhookProvider = Processor;
/**
 * What became of one received webhook event:
 * processed: acted on; duplicate: a replay, answered 2xx with no second effect; ignored: an event type billops does
 * not act on, or an unknown tenant; rejected: bad signature or malformed body (400); failed: our own error (5xx, the
 * provider retries). The failed-webhook alerts count rejected + failed: a rotated signing secret rejects every event.
 */
export type WebhookOutcome = 'processed' | 'duplicate' | 'ignored' | 'rejected' | 'failed';

export const PAYMENT_STATUSES: readonly PaymentStatus[] = ['success', 'failed'];
export const WEBHOOK_PROVIDERS: readonly WebhookProvider[] = ['stripe', 'paystack'];
export const WEBHOOK_OUTCOMES: readonly WebhookOutcome[] = [
  'processed',
  'duplicate',
  'ignored',
  'rejected',
  'failed',
];
export const DUNNING_CLOSE_OUTCOMES: readonly DunningCloseOutcome[] = ['recovered', 'deleted', 'canceled'];

/** Bucket bounds hold each alert threshold exactly (5 s and 15 s), so histogram_quantile is exact there. */
export const WEBHOOK_PROCESSING_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 20, 30];
/** Likewise 0.5 s and 2 s for the billing API latency alerts. */
export const BILLING_API_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/** The route label of a request that matched no route (a 404), so unknown URLs cannot grow the label set. */
export const UNMATCHED_ROUTE = 'unmatched';

export interface UsageLagReading {
  meter: string;
  lagSeconds: number;
}

export interface BillopsMetricsOptions {
  /**
   * Read on every scrape to set usage_ingestion_lag_seconds{meter}, e.g.
   * `async () => (await ingestionLag(pool)).meters` from db/usage. When it throws, the last values stay.
   * Only the call that creates the gauge on a registry installs it.
   */
  usageLag?: () => Promise<Iterable<UsageLagReading>>;
  /**
   * Read on every scrape: running totals of settled payments and closed dunning lifecycles as the database holds them
   * (the worker's activities write those rows; this process serves /metrics). The counters advance by the growth
   * since the last scrape, so they stay monotonic; when it throws, they stay where they were.
   */
  settledTotals?: () => Promise<SettledTotals>;
}

export interface BillopsMetrics {
  registry: Registry;
  /** payment_transactions_total{processor,status}: the payment success rate alerts. */
  paymentTransactions: Counter<'processor' | 'status'>;
  /** webhook_processing_seconds{provider}: from receipt to answer; the webhook processing time alerts (p95). */
  webhookProcessingSeconds: Histogram<'provider'>;
  /** webhook_events_total{provider,outcome}: the failed webhook rate alerts. */
  webhookEvents: Counter<'provider' | 'outcome'>;
  /** webhook_events_unknown_tenant_total{provider}: events naming no known tenant (recorded, 2xx, nothing started). */
  webhookEventsUnknownTenant: Counter<'provider'>;
  /** dunning_lifecycles_closed_total{outcome}: the dunning conversion rate alerts (recovered / all closed). */
  dunningLifecyclesClosed: Counter<'outcome'>;
  /** billing_api_request_duration_seconds{method,route,status_code}: the billing API latency alerts (p95). */
  billingApiRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  /** usage_ingestion_lag_seconds{meter}: age of the newest usage event per meter. */
  usageIngestionLag: Gauge<'meter'>;

  // Typed recorders: a label value the alert rules do not know is a compile error here, not a silent gap there.
  recordPayment(processor: PaymentProcessorLabel, status: PaymentStatus): void;
  /** Counts the event by outcome and, given its duration, observes the processing time. */
  recordWebhook(provider: WebhookProvider, outcome: WebhookOutcome, seconds?: number): void;
  recordUnknownTenant(provider: WebhookProvider): void;
  recordDunningClosed(outcome: DunningCloseOutcome): void;
  setUsageIngestionLag(meter: string, lagSeconds: number): void;
}

/** The registered metric of that name, or a new one from `create`; refuses a same-named metric of another kind. */
function reuseOrCreate<T extends Metric>(
  registry: Registry,
  name: string,
  kind: new (...args: never[]) => T,
  create: () => T,
): T {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return create();
  if (!(existing instanceof kind)) {
    throw new Error(`metric ${name} is already registered as a different kind than ${kind.name}`);
  }
  return existing;
}

/**
 * Registers billops' metrics on `registry` (a new one if none is given) and returns them. Calling it again with the
 * same registry returns the metrics already there, so parts of the ingress can each call it.
 */
export function createBillopsMetrics(
  registry: Registry = new Registry(),
  options: BillopsMetricsOptions = {},
): BillopsMetrics {
  const registers = [registry];

  const settledTotals = options.settledTotals;
  // What the database said at the last scrape, per series; a read that fails leaves it (and the counters) as it was.
  const lastSeen = new Map<string, number>();
  // Both counters collect in the same scrape: they share one read of the database, not two.
  let reading: Promise<SettledTotals | null> | null = null;
  const readTotals = () => {
    reading ??= (settledTotals ? settledTotals().catch(() => null) : Promise.resolve(null)).finally(() => {
      reading = null;
    });
    return reading;
  };
  const advance = (series: string, total: number, inc: (by: number) => void) => {
    const grown = total - (lastSeen.get(series) ?? 0);
    if (grown > 0) inc(grown);
    lastSeen.set(series, Math.max(total, lastSeen.get(series) ?? 0));
  };

  const paymentTransactions = reuseOrCreate(registry, 'payment_transactions_total', Counter, () => {
    const c = new Counter({
      name: 'payment_transactions_total',
      help: 'Payment attempts by processor and outcome (success, failed), counted once each when settled.',
      labelNames: ['processor', 'status'] as const,
      registers,
      ...(settledTotals && {
        async collect(this: Counter<'processor' | 'status'>) {
          const totals = await readTotals();
          for (const p of totals?.payments ?? []) {
            advance(`payment/${p.processor}/${p.status}`, p.count, (by) =>
              this.inc({ processor: p.processor, status: p.status }, by),
            );
          }
        },
      }),
    });
    // Series exist from the start, so a processor failing every payment still has a success series (at 0).
    for (const processor of ['stripe', 'paystack'] as const)
      for (const status of PAYMENT_STATUSES) c.inc({ processor, status }, 0);
    return c;
  });

  const webhookProcessingSeconds = reuseOrCreate(registry, 'webhook_processing_seconds', Histogram, () => {
    return new Histogram({
      name: 'webhook_processing_seconds',
      help: 'Time from receiving a payment provider webhook to answering it, in seconds.',
      labelNames: ['provider'] as const,
      buckets: WEBHOOK_PROCESSING_BUCKETS,
      registers,
    });
  });

  const webhookEvents = reuseOrCreate(registry, 'webhook_events_total', Counter, () => {
    const c = new Counter({
      name: 'webhook_events_total',
      help: 'Payment provider webhook events received, by provider and outcome (processed, duplicate, ignored, rejected, failed).',
      labelNames: ['provider', 'outcome'] as const,
      registers,
    });
    for (const provider of WEBHOOK_PROVIDERS)
      for (const outcome of WEBHOOK_OUTCOMES) c.inc({ provider, outcome }, 0);
    return c;
  });

  const webhookEventsUnknownTenant = reuseOrCreate(
    registry,
    'webhook_events_unknown_tenant_total',
    Counter,
    () => {
      const c = new Counter({
        name: 'webhook_events_unknown_tenant_total',
        help: 'Webhook events whose tenant billops does not know: recorded, answered 2xx, nothing started.',
        labelNames: ['provider'] as const,
        registers,
      });
      for (const provider of WEBHOOK_PROVIDERS) c.inc({ provider }, 0);
      return c;
    },
  );

  const dunningLifecyclesClosed = reuseOrCreate(registry, 'dunning_lifecycles_closed_total', Counter, () => {
    const c = new Counter({
      name: 'dunning_lifecycles_closed_total',
      help: 'Dunning lifecycles that ended, by outcome (recovered, deleted, canceled).',
      labelNames: ['outcome'] as const,
      registers,
      ...(settledTotals && {
        async collect(this: Counter<'outcome'>) {
          const totals = await readTotals();
          for (const d of totals?.dunningClosed ?? []) {
            advance(`dunning/${d.outcome}`, d.count, (by) => this.inc({ outcome: d.outcome }, by));
          }
        },
      }),
    });
    for (const outcome of DUNNING_CLOSE_OUTCOMES) c.inc({ outcome }, 0);
    return c;
  });

  const billingApiRequestDuration = reuseOrCreate(
    registry,
    'billing_api_request_duration_seconds',
    Histogram,
    () =>
      new Histogram({
        name: 'billing_api_request_duration_seconds',
        help: 'Billing API (ingress) request duration in seconds, by method, route pattern and status code.',
        labelNames: ['method', 'route', 'status_code'] as const,
        buckets: BILLING_API_BUCKETS,
        registers,
      }),
  );

  const usageLag = options.usageLag;
  const usageIngestionLag = reuseOrCreate(registry, 'usage_ingestion_lag_seconds', Gauge, () => {
    return new Gauge({
      name: 'usage_ingestion_lag_seconds',
      help: 'Seconds since the newest usage event of each meter occurred.',
      labelNames: ['meter'] as const,
      registers,
      ...(usageLag && {
        async collect(this: Gauge<'meter'>) {
          let readings: UsageLagReading[];
          try {
            readings = [...(await usageLag())];
          } catch {
            return; // keep the last values: one failed read must not fail the whole scrape
          }
          this.reset(); // a meter that no longer reports drops out
          for (const r of readings) this.set({ meter: r.meter }, r.lagSeconds);
        },
      }),
    });
  });

  return {
    registry,
    paymentTransactions,
    webhookProcessingSeconds,
    webhookEvents,
    webhookEventsUnknownTenant,
    dunningLifecyclesClosed,
    billingApiRequestDuration,
    usageIngestionLag,
    recordPayment: (processor, status) => paymentTransactions.inc({ processor, status }),
    recordWebhook: (provider, outcome, seconds) => {
      webhookEvents.inc({ provider, outcome });
      if (seconds !== undefined) webhookProcessingSeconds.observe({ provider }, seconds);
    },
    recordUnknownTenant: (provider) => webhookEventsUnknownTenant.inc({ provider }),
    recordDunningClosed: (outcome) => dunningLifecyclesClosed.inc({ outcome }),
    setUsageIngestionLag: (meter, lagSeconds) => usageIngestionLag.set({ meter }, lagSeconds),
  };
}

export interface InstrumentOptions {
  /** Route patterns not timed; by default the ones Prometheus and probes call. */
  skipRoutes?: readonly string[];
}

/**
 * Times every request answered by `app` into billing_api_request_duration_seconds, labelled by the route's pattern
 * (`/webhooks/:provider`, not the URL) so the label set stays bounded. Call it before `app.ready()`/`listen()`.
 */
export function instrumentRequests(
  app: FastifyInstance,
  metrics: Pick<BillopsMetrics, 'billingApiRequestDuration'>,
  options: InstrumentOptions = {},
): void {
  const skip = new Set(options.skipRoutes ?? ['/metrics', '/healthz']);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    if (skip.has(route)) return;
    metrics.billingApiRequestDuration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
}
