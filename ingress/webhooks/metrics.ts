// The payment webhooks' Prometheus metrics, counted with the labels deploy/prometheus/alerts.yml reads.
import type { Counter, Histogram } from 'prom-client';

/** What became of one delivery, in the ingress's own detail. */
export type DeliveryOutcome =
  | 'processed'
  | 'stored_for_incident'
  | 'ignored'
  | 'duplicate'
  | 'in_progress'
  | 'rejected'
  | 'malformed'
  | 'failed'
  | 'unconfigured';

/** The outcome label of webhook_events_total; the failed-webhook alerts count failed + rejected. */
export type WebhookOutcomeLabel = 'processed' | 'duplicate' | 'ignored' | 'rejected' | 'failed';

/**
 * The metrics the ingress registers (ingress/metrics.ts): webhook_events_unknown_tenant_total{provider},
 * webhook_events_total{provider,outcome} and webhook_processing_seconds{provider}. Each is optional.
 */
export interface WebhookMetrics {
  unknownTenant?: Counter<'provider'>;
  webhookEvents?: Counter<'provider' | 'outcome'>;
  processingSeconds?: Histogram<'provider'>;
}

const LABEL: Record<DeliveryOutcome, WebhookOutcomeLabel> = {
  processed: 'processed',
  // Stored for the incident workflows is all billops does with these today.
  stored_for_incident: 'processed',
  ignored: 'ignored',
  duplicate: 'duplicate',
  // A second delivery arriving while the first is still being acted on.
  in_progress: 'duplicate',
  rejected: 'rejected',
  malformed: 'rejected',
  failed: 'failed',
  // A route without its secret fails every delivery: the provider retries, the alert fires.
  unconfigured: 'failed',
};

export function recordDelivery(
  metrics: WebhookMetrics,
  provider: 'stripe' | 'paystack',
  outcome: DeliveryOutcome,
  seconds: number,
): void {
  metrics.webhookEvents?.inc({ provider, outcome: LABEL[outcome] });
  metrics.processingSeconds?.observe({ provider }, seconds);
}
