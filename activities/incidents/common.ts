// Incident activities every kind shares: the incidents row, customer notices, the status page, service credits,
// operational overrides, the report file and the operators' mail.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import axios from 'axios';
import type { Pool, PoolClient } from 'pg';
import type { IncidentStatus } from '../../domain/incident';
import type { Money } from '../../domain/money';
import type { Policy } from '../../domain/policy';
import { serviceCreditMinor } from '../../domain/serviceCredits';
import { renderTemplate, type TemplateName, type TemplateVars } from '../../domain/templates';
import { databaseUnavailable } from '../../db/errors';
import { recordOutboundEvent } from '../../db/outboundWebhooks';
import { inTransaction } from '../../db/pool';
import type { createEmailActivities } from '../email';
import type { PagingOptions } from '../paging';

/** Where incidents page people, post status updates, write reports and find their hooks: the worker's settings. */
export interface IncidentDependencies {
  paging: PagingOptions;
  statusPageWebhookUrl?: string;
  opsEmail: string;
  reportsDir: string;
  backupProcessor?: 'stripe' | 'paystack';
  scaleUpHook?: string;
  failoverHook?: string;
  healthUrl?: string;
  /** The value of every configured secret: redacted from what an outage hook prints. */
  secrets?: readonly string[];
}

export interface IncidentActivityOptions {
  pool: Pool;
  email: ReturnType<typeof createEmailActivities>;
  opsEmail: string;
  reportsDir: string;
  /** A URL the status page accepts updates on (Statuspage-style JSON); unset: updates are recorded only. */
  statusPageWebhookUrl?: string;
  timeoutMs?: number;
}

export type StatusPageState = 'investigating' | 'identified' | 'monitoring' | 'resolved';

/** Template variables without `tenant_id`, which is filled per tenant. */
export type TenantNoticeVars<N extends TemplateName> = Omit<TemplateVars<N>, 'tenant_id'>;

export interface NotifyTenantsRequest<N extends TemplateName = TemplateName> {
  /** Workflow id + step; each tenant's message is keyed `<key>/<tenantId>`. */
  idempotencyKey: string;
  tenantIds: string[];
  template: N;
  vars: TenantNoticeVars<N>;
}

export interface ServiceCreditRequest {
  idempotencyKey: string;
  workflowId: string;
  tenantIds: string[];
  outageMinutes: number;
  rule: Policy['serviceCredit'];
  reason: string;
  operator: string;
}

export interface ServiceCreditResult {
  credited: { tenantId: string; amountMinor: number; currency: string }[];
  /** Per currency: the DECISIONS.log CREDITS value is the largest currency's total. */
  total: Money | null;
}

export function createIncidentActivities(options: IncidentActivityOptions) {
  const { pool } = options;
  const http = axios.create({
    timeout: options.timeoutMs ?? 10_000,
    validateStatus: () => true,
    maxRedirects: 0,
    headers: { 'Content-Type': 'application/json' },
  });

  /** One row per occurrence (workflow id + occurrence); a row written before occurrences existed is adopted. */
  async function upsertIncident(status: IncidentStatus & { occurrence?: string }): Promise<void> {
    await inTransaction(pool, (client) => upsertIncidentIn(client, status));
  }

  /** The row, and `incident.opened` / `incident.resolved` in the webhook outbox when this write opens or resolves it. */
  async function upsertIncidentIn(
    db: PoolClient,
    status: IncidentStatus & { occurrence?: string },
  ): Promise<void> {
    const occurrence = status.occurrence ?? '';
    if (occurrence !== '') {
      await db.query(
        `UPDATE incidents SET occurrence = $2 WHERE workflow_id = $1 AND occurrence = '' AND status <> 'closed'
            AND NOT EXISTS (SELECT 1 FROM incidents WHERE workflow_id = $1 AND occurrence = $2)`,
        [status.workflowId, occurrence],
      );
    }
    const before = await db.query<{ status: string }>(
      'SELECT status FROM incidents WHERE workflow_id = $1 AND occurrence = $2 FOR UPDATE',
      [status.workflowId, occurrence],
    );
    const written = await db.query<{ status: string }>(
      `INSERT INTO incidents AS i (workflow_id, occurrence, kind, incident_key, severity, status, summary, source, opened_at,
                              opened_by, acknowledged_at, acknowledged_by, escalation_level, resolved_at,
                              resolved_by, resolution, tenants_affected, credits_minor, credits_currency, timeline,
                              updated_at)
       VALUES ($1, $20, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19::jsonb,
               now())
       ON CONFLICT (workflow_id, occurrence) DO UPDATE SET
         severity = EXCLUDED.severity, status = EXCLUDED.status, acknowledged_at = EXCLUDED.acknowledged_at,
         acknowledged_by = EXCLUDED.acknowledged_by, escalation_level = EXCLUDED.escalation_level,
         resolved_at = EXCLUDED.resolved_at, resolved_by = EXCLUDED.resolved_by, resolution = EXCLUDED.resolution,
         tenants_affected = EXCLUDED.tenants_affected, credits_minor = EXCLUDED.credits_minor,
         credits_currency = EXCLUDED.credits_currency, timeline = EXCLUDED.timeline, updated_at = now()
       WHERE jsonb_array_length(i.timeline) <= jsonb_array_length(EXCLUDED.timeline)
       RETURNING i.status`,
      [
        status.workflowId,
        status.kind,
        status.key,
        status.severity,
        status.phase,
        status.summary,
        status.source,
        status.openedAt,
        status.openedBy,
        status.acknowledgedAt,
        status.acknowledgedBy,
        status.escalationLevel,
        status.resolution?.at ?? null,
        status.resolution?.by ?? null,
        status.resolution?.summary ?? null,
        status.tenantsAffected,
        status.credits?.amountMinor ?? 0,
        status.credits?.currency ?? null,
        JSON.stringify(status.timeline),
        occurrence,
      ],
    );
    const now = written.rows[0]?.status;
    if (now === undefined) return;
    const was = before.rows[0]?.status;
    const ended = (s: string | undefined) => s === 'resolved' || s === 'closed';
    const data = {
      incidentId: status.workflowId,
      occurrence: occurrence || null,
      kind: status.kind,
      severity: status.severity,
      summary: status.summary,
      openedAt: status.openedAt,
      tenantsAffected: status.tenantsAffected,
    };
    if (was === undefined) await recordOutboundEvent(db, { type: 'incident.opened', tenantId: null, data });
    if (ended(now) && !ended(was)) {
      await recordOutboundEvent(db, {
        type: 'incident.resolved',
        tenantId: null,
        data: { ...data, resolution: status.resolution },
      });
    }
  }

  return {
    /**
     * Keeps the incidents row in step with the workflow (upsert; the newest status wins). While the database itself is
     * down (a billing system outage) the write is skipped rather than retried, so the incident goes on; the next
     * write carries the whole timeline.
     */
    async recordIncident(
      status: IncidentStatus & { occurrence?: string },
    ): Promise<{ recorded: boolean; skipped?: string }> {
      try {
        await upsertIncident(status);
        return { recorded: true };
      } catch (err) {
        const why = databaseUnavailable(err);
        if (why) return { recorded: false, skipped: `database ${why}` };
        throw err;
      }
    },

    /** Stores the report with the row and writes it to `<reportsDir>/<workflowId>.md`; returns the file's path. */
    async storeIncidentReport(req: {
      workflowId: string;
      occurrence?: string;
      markdown: string;
    }): Promise<string> {
      await pool.query(
        `UPDATE incidents SET report_md = $2, updated_at = now()
          WHERE workflow_id = $1 AND ($3::text IS NULL OR occurrence = $3)`,
        [req.workflowId, req.markdown, req.occurrence ?? null],
      );
      await mkdir(options.reportsDir, { recursive: true });
      const path = join(options.reportsDir, `${req.workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}.md`);
      await writeFile(path, req.markdown, 'utf8');
      return path;
    },

    async recordRootCause(req: {
      workflowId: string;
      occurrence?: string;
      summary: string;
      operator: string;
      at: string;
    }): Promise<void> {
      await pool.query(
        `UPDATE incidents SET rca_summary = $2, rca_by = $3, rca_at = $4, updated_at = now()
          WHERE workflow_id = $1 AND ($5::text IS NULL OR occurrence = $5)`,
        [req.workflowId, req.summary, req.operator, req.at, req.occurrence ?? null],
      );
    },

    /** The 48-hour root-cause reminder to the operators' address (BILLOPS_OPS_EMAIL), once per incident. */
    async sendRootCauseReminder(req: {
      idempotencyKey: string;
      workflowId: string;
      occurrence?: string;
      incidentType: string;
      resolvedAt: string;
      hours: number;
    }): Promise<string> {
      const message = renderTemplate('rootCauseReminder', {
        incident_id: req.workflowId,
        incident_type: req.incidentType,
        resolved_at: req.resolvedAt,
        hours: req.hours,
      });
      const sent = await options.email.sendEmail({
        idempotencyKey: req.idempotencyKey,
        tenantId: null,
        to: options.opsEmail,
        template: 'rootCauseReminder',
        ...message,
      });
      await pool.query(
        `UPDATE incidents SET rca_reminded_at = now() WHERE workflow_id = $1 AND ($2::text IS NULL OR occurrence = $2)`,
        [req.workflowId, req.occurrence ?? null],
      );
      return sent.messageId;
    },

    /** Emails each tenant's billing contact from a template and posts the same notice to their dashboard. */
    async notifyTenants<N extends TemplateName>(req: NotifyTenantsRequest<N>): Promise<{ notified: number }> {
      if (req.tenantIds.length === 0) return { notified: 0 };
      const { rows } = await pool.query<{ id: string; billing_email: string }>(
        'SELECT id, COALESCE(billing_email, email) AS billing_email FROM tenants WHERE id = ANY($1::text[])',
        [req.tenantIds],
      );
      for (const tenant of rows) {
        const key = `${req.idempotencyKey}/${tenant.id}`;
        const vars = { ...req.vars, tenant_id: tenant.id } as unknown as TemplateVars<N>;
        const message = renderTemplate(req.template, vars);
        await options.email.sendEmail({
          idempotencyKey: key,
          tenantId: tenant.id,
          to: tenant.billing_email,
          template: req.template,
          ...message,
        });
        await pool.query(
          `INSERT INTO dashboard_notifications (idempotency_key, tenant_id, kind, message)
           VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING`,
          [key, tenant.id, req.template, message.subject],
        );
      }
      return { notified: rows.length };
    },

    /** A status-page update through its webhook; recorded either way, posted once per key. */
    async postStatusPage(req: {
      idempotencyKey: string;
      workflowId: string;
      status: StatusPageState;
      message: string;
    }): Promise<'posted' | 'not_configured'> {
      // While the database is down (a billing system outage) the update still goes out; the status page receives
      // the idempotency key, and the record is skipped.
      let databaseDown = false;
      try {
        const { rows } = await pool.query<{ delivered: 'posted' | 'not_configured' }>(
          'SELECT delivered FROM status_page_updates WHERE idempotency_key = $1',
          [req.idempotencyKey],
        );
        if (rows[0]) return rows[0].delivered;
      } catch (err) {
        if (!databaseUnavailable(err)) throw err;
        databaseDown = true;
      }
      let delivered: 'posted' | 'not_configured' = 'not_configured';
      if (options.statusPageWebhookUrl) {
        const res = await http.post(options.statusPageWebhookUrl, {
          incident: { name: req.message, status: req.status, external_id: req.workflowId },
          idempotency_key: req.idempotencyKey,
        });
        if (res.status >= 400 && res.status < 500 && res.status !== 429) {
          throw ApplicationFailure.nonRetryable(
            `the status page refused the update with HTTP ${res.status}; check STATUS_PAGE_WEBHOOK_URL`,
            'StatusPageRefused',
          );
        }
        if (res.status >= 300) throw new Error(`the status page answered HTTP ${res.status}; retrying`);
        delivered = 'posted';
      }
      if (databaseDown) return delivered;
      await pool.query(
        `INSERT INTO status_page_updates (idempotency_key, workflow_id, status, message, delivered)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING`,
        [req.idempotencyKey, req.workflowId, req.status, req.message, delivered],
      );
      return delivered;
    },

    /** Credits each tenant the policy's share of its latest invoice for the outage; one credit per tenant per key. */
    async applyServiceCredits(req: ServiceCreditRequest): Promise<ServiceCreditResult> {
      const credited: ServiceCreditResult['credited'] = [];
      for (const tenantId of req.tenantIds) {
        const { rows } = await pool.query<{ total_minor: string; currency: string }>(
          `SELECT total_minor, currency FROM invoices
           WHERE tenant_id = $1 AND status <> 'void' ORDER BY period_end DESC, created_at DESC LIMIT 1`,
          [tenantId],
        );
        const fee = rows[0];
        if (!fee) continue;
        const amountMinor = serviceCreditMinor(req.rule, Number(fee.total_minor), req.outageMinutes);
        if (amountMinor <= 0) continue;
        await pool.query(
          `INSERT INTO credits_adjustments (tenant_id, kind, amount_minor, currency, reason, processor,
                                            idempotency_key, workflow_id, created_by)
           VALUES ($1, 'credit', $2, $3, $4, 'manual', $5, $6, $7)
           ON CONFLICT (idempotency_key) DO NOTHING`,
          [
            tenantId,
            amountMinor,
            fee.currency,
            req.reason,
            `${req.idempotencyKey}/${tenantId}`,
            req.workflowId,
            req.operator,
          ],
        );
        credited.push({ tenantId, amountMinor, currency: fee.currency });
      }
      return { credited, total: largestCurrencyTotal(credited) };
    },

    /** Seed 000 "Document all manual overrides": sets a named override once; an active one of that name is kept. */
    async setOverride(req: {
      idempotencyKey: string;
      workflowId: string;
      name: string;
      value: Record<string, unknown>;
      reason: string;
      operator: string;
    }): Promise<{ set: boolean }> {
      const inserted = await pool.query(
        `INSERT INTO operational_overrides (name, value, reason, workflow_id, idempotency_key, set_by)
         VALUES ($1, $2::jsonb, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
        [req.name, JSON.stringify(req.value), req.reason, req.workflowId, req.idempotencyKey, req.operator],
      );
      return { set: inserted.rowCount === 1 };
    },

    async clearOverride(req: {
      name: string;
      workflowId: string;
      operator: string;
    }): Promise<{ cleared: boolean }> {
      const updated = await pool.query(
        `UPDATE operational_overrides SET cleared_at = now(), cleared_by = $3
         WHERE name = $1 AND workflow_id = $2 AND cleared_at IS NULL`,
        [req.name, req.workflowId, req.operator],
      );
      return { cleared: (updated.rowCount ?? 0) > 0 };
    },

    async activeOverrides(): Promise<
      { name: string; value: Record<string, unknown>; workflowId: string | null }[]
    > {
      const { rows } = await pool.query<{
        name: string;
        value: Record<string, unknown>;
        workflow_id: string | null;
      }>('SELECT name, value, workflow_id FROM operational_overrides WHERE cleared_at IS NULL ORDER BY name');
      return rows.map((r) => ({ name: r.name, value: r.value, workflowId: r.workflow_id }));
    },
  };
}

function largestCurrencyTotal(credited: ServiceCreditResult['credited']): Money | null {
  const totals = new Map<string, number>();
  for (const c of credited) totals.set(c.currency, (totals.get(c.currency) ?? 0) + c.amountMinor);
  const [currency, amountMinor] = [...totals.entries()].sort((a, b) => b[1] - a[1])[0] ?? [];
  return currency === undefined || amountMinor === undefined ? null : { amountMinor, currency };
}
export type IncidentActivities = ReturnType<typeof createIncidentActivities>;
