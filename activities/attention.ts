// Telling the operators that a workflow step waits for a person: one email to BILLOPS_OPS_EMAIL and one page, each
// once per wait. A refusal by the pager is reported back, never thrown: the workflow is already waiting.
import { ApplicationFailure } from '@temporalio/activity';
import { renderTemplate } from '../domain/templates';
import type { EmailActivities } from './email';
import type { PagingActivities } from './paging';

export interface AttentionRequest {
  /** One per wait (workflow, run, step, since): a retried activity emails and pages once. */
  idempotencyKey: string;
  workflowId: string;
  step: string;
  errorType: string;
  reason: string;
  actions: string;
}

export interface AttentionNotified {
  emailed: string;
  paged: string;
}

export function createAttentionActivities(deps: {
  email: Pick<EmailActivities, 'sendEmail'>;
  paging: Pick<PagingActivities, 'page'>;
  opsEmail: string;
}) {
  return {
    async requestAttention(req: AttentionRequest): Promise<AttentionNotified> {
      const message = renderTemplate('attentionNeeded', {
        workflow_id: req.workflowId,
        step: req.step,
        error_type: req.errorType,
        reason: req.reason,
        actions: req.actions,
      });
      const sent = await deps.email.sendEmail({
        idempotencyKey: `${req.idempotencyKey}/email`,
        // Mail to billops' own operators, not the tenant's: kept when the tenant's data is deleted.
        tenantId: null,
        to: deps.opsEmail,
        template: 'attentionNeeded',
        ...message,
      });
      let paged: string;
      try {
        const result = await deps.paging.page({
          // PagerDuty keeps one alert per dedup key: one per wait.
          dedupKey: req.idempotencyKey.slice(0, 255),
          incidentKind: 'needs_attention',
          severity: 'P3',
          level: 0,
          summary: `${req.workflowId} waits at ${req.step}: ${req.errorType}: ${req.reason}`,
          contacts: [],
          workflowId: req.workflowId,
          action: 'trigger',
        });
        const via = [
          result.pagerDuty === 'accepted' ? 'PagerDuty' : '',
          result.slack === 'posted' ? 'Slack' : '',
        ]
          .filter(Boolean)
          .join(' and ');
        paged = via ? `paged via ${via}` : 'no pager configured';
      } catch (err) {
        // A pager refusing the page (4xx) is itself something to fix, but not a reason to stop: the email went out.
        if (!(err instanceof ApplicationFailure) || !err.nonRetryable) throw err;
        paged = `the pager refused the page (${err.message})`;
      }
      return { emailed: `emailed ${deps.opsEmail} (${sent.messageId})`, paged };
    },
  };
}

export type AttentionActivities = ReturnType<typeof createAttentionActivities>;
