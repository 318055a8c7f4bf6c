// Every signal, query and update of billops' workflows, defined once and imported by workflows, workers, CLI and ingress.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { DunningDeadlines, DunningStatus, FailedInvoice, GraceExtension } from '../domain/dunning';

/** A customer notice: a templated email plus a dashboard notification for one tenant. */
export interface NoticeStatus {
  tenantId: string;
  template: string;
  emailed: boolean;
  dashboardNotified: boolean;
}
export const noticeStatusQuery = defineQuery<NoticeStatus>('status');

/** Operator steering shared by dunning and incident workflows (DESIGN.md contracts). */
export interface OperatorAction {
  operator: string;
  reason?: string;
}
export const pauseSignal = defineSignal<[OperatorAction]>('pause');
export const resumeSignal = defineSignal<[OperatorAction]>('resume');

// Dunning lifecycle.
export const paymentFailedSignal = defineSignal<[FailedInvoice]>('paymentFailed');
export const paymentSucceededSignal =
  defineSignal<[{ invoiceId: string; reference?: string }]>('paymentSucceeded');
/** An update, not a signal: the operator needs the new deadlines back, or the reason it was refused. */
export const extendGraceUpdate = defineUpdate<DunningDeadlines, [GraceExtension]>('extendGrace');
/** The same extension as a signal, so a batch operation can reach every lifecycle a visibility query selects. */
export const extendGraceSignal = defineSignal<[GraceExtension]>('extendGraceBatch');
export const dunningStatusQuery = defineQuery<DunningStatus>('status');
