// Paging the people an escalation level names: PagerDuty Events API v2 and a Slack incoming webhook, each when configured.
import { ApplicationFailure } from '@temporalio/activity';
import axios, { type AxiosInstance } from 'axios';
import { z } from 'zod';
import type { EscalationLevel } from '../domain/escalation';
import type { IncidentKind, Severity } from '../domain/policy';

export const PAGER_DUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** Events API v2 severities, from the runbook's P1..P4. */
export const PAGER_DUTY_SEVERITY = {
  P1: 'critical',
  P2: 'error',
  P3: 'warning',
  P4: 'info',
} as const satisfies Record<Severity, string>;

export type PageAction = 'trigger' | 'acknowledge' | 'resolve';

export interface PagingOptions {
  /** The Events API v2 integration key of the service; a secret: never in a message or log. */
  pagerDutyRoutingKey?: string;
  pagerDutyEventsUrl?: string;
  /** The incoming-webhook URL carries its token in the path; a secret too. */
  slackWebhookUrl?: string;
  timeoutMs: number;
}

export interface PageRequest {
  /** One per incident (e.g. the workflow id): PagerDuty keeps one alert per dedup_key. */
  dedupKey: string;
  /** needs_attention: a workflow step waiting for a person (activities/attention.ts), not an incident. */
  incidentKind: IncidentKind | 'needs_attention';
  severity: Severity;
  level: EscalationLevel['level'];
  summary: string;
  contacts: string[];
  workflowId: string;
  action: PageAction;
}

export interface PageResult {
  dedupKey: string;
  pagerDuty: 'accepted' | 'not_configured';
  slack: 'posted' | 'not_configured';
}

const pageRequestSchema = z.object({
  // PagerDuty's limit on dedup_key.
  dedupKey: z.string().min(1).max(255),
  incidentKind: z.string().min(1),
  severity: z.enum(['P1', 'P2', 'P3', 'P4']),
  level: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  summary: z.string().min(1),
  contacts: z.array(z.string()),
  workflowId: z.string().min(1),
  action: z.enum(['trigger', 'acknowledge', 'resolve']),
});

/** What PagerDuty answers an accepted event: 202 { status: 'success', message, dedup_key }. */
const pagerDutyAcceptedSchema = z.object({ status: z.literal('success'), dedup_key: z.string().min(1) });
const pagerDutyErrorSchema = z.object({
  status: z.string().optional(),
  message: z.string().optional(),
  errors: z.array(z.string()).optional(),
});

// PagerDuty caps the summary at 1024 characters.
const SUMMARY_MAX = 1024;

export function createPagingActivities(options: PagingOptions) {
  const http: AxiosInstance = axios.create({
    timeout: options.timeoutMs,
    headers: { 'Content-Type': 'application/json' },
    // Every status is answered here, so no AxiosError carrying the URL or the body reaches a caller.
    validateStatus: () => true,
    maxRedirects: 0,
  });
  const secrets = [options.pagerDutyRoutingKey, options.slackWebhookUrl].filter(
    (s): s is string => typeof s === 'string' && s.length > 0,
  );
  const redact = (text: string) => secrets.reduce((t, secret) => t.split(secret).join('[redacted]'), text);

  async function post(target: 'PagerDuty' | 'Slack', url: string, body: object) {
    try {
      return await http.post<unknown>(url, body);
    } catch (error) {
      // Only the code and message: the error object also holds the request, routing key and webhook URL included.
      const detail = axios.isAxiosError(error)
        ? `${error.code ?? 'network error'}: ${error.message}`
        : error instanceof Error
          ? error.message
          : String(error);
      throw ApplicationFailure.retryable(`${target} did not answer (${redact(detail)})`, 'PagerUnavailable');
    }
  }

  /** 429 and 5xx are worth a retry; any other non-2xx (a 4xx, a redirect) is a request a retry cannot fix. */
  function failOnStatus(target: 'PagerDuty' | 'Slack', status: number, reason: string): void {
    if (status === 429 || status >= 500) {
      throw ApplicationFailure.retryable(
        `${target} answered HTTP ${status} (${redact(reason)})`,
        'PagerUnavailable',
      );
    }
    if (status < 200 || status >= 300) {
      throw ApplicationFailure.nonRetryable(
        `${target} rejected the page (HTTP ${status}: ${redact(reason)})`,
        'PagerRejected',
      );
    }
  }

  async function sendToPagerDuty(routingKey: string, req: PageRequest): Promise<void> {
    // Acknowledge and resolve name the alert by dedup_key only; the Events v2 format wants no payload for them.
    const event =
      req.action === 'trigger'
        ? {
            routing_key: routingKey,
            event_action: 'trigger',
            dedup_key: req.dedupKey,
            payload: {
              summary: req.summary.slice(0, SUMMARY_MAX),
              source: 'billops',
              severity: PAGER_DUTY_SEVERITY[req.severity],
              custom_details: {
                incident_kind: req.incidentKind,
                severity: req.severity,
                escalation_level: req.level,
                contacts: req.contacts,
                workflow_id: req.workflowId,
              },
            },
          }
        : { routing_key: routingKey, event_action: req.action, dedup_key: req.dedupKey };

    const response = await post('PagerDuty', options.pagerDutyEventsUrl ?? PAGER_DUTY_EVENTS_URL, event);
    const error = pagerDutyErrorSchema.safeParse(response.data);
    const reason = error.success
      ? [error.data.message, ...(error.data.errors ?? [])].filter(Boolean).join('; ') || 'no message'
      : 'no message';
    failOnStatus('PagerDuty', response.status, reason);
    if (!pagerDutyAcceptedSchema.safeParse(response.data).success) {
      // Safe to retry: PagerDuty merges a repeated event into the alert with the same dedup_key.
      throw ApplicationFailure.retryable(
        `PagerDuty answered HTTP ${response.status} without { status: 'success', dedup_key }`,
        'PagerResponseInvalid',
      );
    }
  }

  async function sendToSlack(webhookUrl: string, req: PageRequest): Promise<void> {
    const text = slackText(req);
    const response = await post('Slack', webhookUrl, {
      text,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text } },
        {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text: `contacts: ${req.contacts.join(', ') || '-'} · workflow ${req.workflowId} · dedup ${req.dedupKey}`,
            },
          ],
        },
      ],
    });
    // Slack answers errors as plain text: invalid_payload, no_service, channel_is_archived, ...
    const reason = typeof response.data === 'string' && response.data ? response.data : 'no message';
    failOnStatus('Slack', response.status, reason);
  }

  return {
    /**
     * Sends one page for an incident's escalation step. Idempotent by dedup_key: PagerDuty itself deduplicates
     * events with the same dedup_key into one alert, so a retried activity re-sends safely. Slack has no such key,
     * so it is posted last, only after PagerDuty accepted; only a Slack reply lost after delivery can repeat it.
     */
    async page(request: PageRequest): Promise<PageResult> {
      const parsed = pageRequestSchema.safeParse(request);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw ApplicationFailure.nonRetryable(
          `page request is invalid: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim(),
          'InvalidPageRequest',
        );
      }
      const result: PageResult = {
        dedupKey: request.dedupKey,
        pagerDuty: 'not_configured',
        slack: 'not_configured',
      };
      if (options.pagerDutyRoutingKey) {
        await sendToPagerDuty(options.pagerDutyRoutingKey, request);
        result.pagerDuty = 'accepted';
      }
      if (options.slackWebhookUrl) {
        await sendToSlack(options.slackWebhookUrl, request);
        result.slack = 'posted';
      }
      return result;
    },
  };
}

export type PagingActivities = ReturnType<typeof createPagingActivities>;

const ACTION_WORDS: Record<PageAction, string> = {
  trigger: 'Incident',
  acknowledge: 'Acknowledged',
  resolve: 'Resolved',
};

/** One line a person reads in the channel: severity first, then what happened. */
export function slackText(req: PageRequest): string {
  const level = req.action === 'trigger' ? ` (escalation level ${req.level})` : '';
  return `[${req.severity} ${PAGER_DUTY_SEVERITY[req.severity]}] ${ACTION_WORDS[req.action]} ${req.incidentKind}${level}: ${req.summary}`;
}
