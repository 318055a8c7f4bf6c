// Customer notice: email a tenant's billing contact from a runbook template and post the same notice to their dashboard.
import { proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BillopsActivities } from '../activities';
import { renderTemplate, type TemplateName, type TemplateVars } from '../domain/templates';
import { noticeStatusQuery, type NoticeStatus } from './definitions';

export interface CustomerNoticeInput<T extends TemplateName = TemplateName> {
  tenantId: string;
  template: T;
  vars: TemplateVars<T>;
}

const { getTenantContact, sendEmail, addDashboardNotification } = proxyActivities<BillopsActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '60s' },
});

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
  const contact = await getTenantContact(input.tenantId);
  // 2. Render the runbook template and email it, once.
  const message = renderTemplate(input.template, input.vars);
  await sendEmail({
    idempotencyKey: `${key}/email`,
    tenantId: input.tenantId,
    to: contact.billingEmail,
    ...message,
    template: input.template,
  });
  status.emailed = true;
  // 3. The same notice on the tenant's dashboard.
  await addDashboardNotification({
    idempotencyKey: `${key}/dashboard`,
    tenantId: input.tenantId,
    kind: input.template,
    message: message.subject,
  });
  status.dashboardNotified = true;
  return status;
}
