// Every signal, query and update of billops' workflows, defined once and imported by workflows, workers, CLI and ingress.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** A customer notice: a templated email plus a dashboard notification for one tenant. */
export interface NoticeStatus {
  tenantId: string;
  template: string;
  emailed: boolean;
  dashboardNotified: boolean;
}
export const noticeStatusQuery = defineQuery<NoticeStatus>('status');

/** Operator steering shared by dunning and incident workflows (DESIGN.md contracts). */
export const pauseSignal = defineSignal<[{ operator: string; reason?: string }]>('pause');
export const resumeSignal = defineSignal<[{ operator: string }]>('resume');
