// Customer notice: email a tenant's billing contact from a runbook template and post the same notice to their dashboard.
import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { EmailActivities } from '../activities/email';
import type { NoticeActivities } from '../activities/notices';
import { renderTemplate, type TemplateName, type TemplateVars } from '../domain/templates';
import { noticeStatusQuery, type NoticeStatus } from './definitions';
import { noticeStep } from './shared/activityOptions';

export interface CustomerNoticeInput<T extends TemplateName = TemplateName> {
  tenantId: string;
  template: T;
  vars: TemplateVars<T>;
}

const notices = proxyActivities<NoticeActivities>(noticeStep);
const email = proxyActivities<EmailActivities>(noticeStep);

export async function customerNoticeWorkflow(input: CustomerNoticeInput): Promise<NoticeStatus> {
  const status: NoticeStatus = {
    tenantId: input.tenantId,
    template: input.template,
    emailed: false,
    dashboardNotified: false,
  };
  setHandler(noticeStatusQuery, () => status);
  const key = workflowInfo().workflowId;

  // 1. Find the tenant's billing contact.
  const contact = await notices.getTenantContact(input.tenantId);
  // 2. Render the runbook template and email it, once.
  const message = renderTemplate(input.template, input.vars);
  await email.sendEmail({
    idempotencyKey: `${key}/email`,
    tenantId: input.tenantId,
    to: contact.billingEmail,
    ...message,
    template: input.template,
  });
  status.emailed = true;
  // 3. The same notice on the tenant's dashboard.
  await notices.addDashboardNotification({
    idempotencyKey: `${key}/dashboard`,
    tenantId: input.tenantId,
    kind: input.template,
    message: message.subject,
  });
  status.dashboardNotified = true;
  return status;
}
