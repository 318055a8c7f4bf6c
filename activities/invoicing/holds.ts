// Billing holds on invoice generation: "stop invoice generation" for a tenant, a meter or everyone, and its release.
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { z } from 'zod';
import {
  holdPlacedUnder,
  holdsReleasedUnder,
  insertHold,
  releaseHolds,
  type HoldRow,
} from '../../db/billingHolds';
import { meterName, parseRequest, present } from './requests';

export interface GenerationHoldRequest {
  /** Left out: every tenant. */
  tenantId?: string | null;
  /** Left out: every meter. */
  meter?: string | null;
  reason: string;
  operator: string;
  idempotencyKey: string;
  workflowId?: string;
}

export interface GenerationHold {
  holdId: number;
  tenantId: string | null;
  meter: string | null;
  reason: string;
  heldBy: string;
  /** ISO-8601 UTC. */
  heldAt: string;
  releasedAt: string | null;
  releasedBy: string | null;
  releaseReason: string | null;
}

const generationHoldSchema = z.object({
  tenantId: present.nullish(),
  meter: meterName.nullish(),
  reason: present,
  operator: present,
  idempotencyKey: present,
  workflowId: present.optional(),
});

function toHold(row: HoldRow): GenerationHold {
  return {
    holdId: row.id,
    tenantId: row.tenant_id,
    meter: row.meter,
    reason: row.reason,
    heldBy: row.held_by,
    heldAt: row.created_at.toISOString(),
    releasedAt: row.released_at?.toISOString() ?? null,
    releasedBy: row.released_by,
    releaseReason: row.release_reason,
  };
}

function isForeignKeyViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23503';
}

export function createGenerationHoldActivities(deps: { pool: Pool }) {
  const { pool } = deps;
  return {
    /** "Stop invoice generation" / "stop further billing for affected meter/tenant": a billing hold, once per key. */
    async holdInvoiceGeneration(input: GenerationHoldRequest): Promise<GenerationHold> {
      const req = parseRequest(generationHoldSchema, input, 'generation hold');
      const tenantId = req.tenantId ?? null;
      const meter = req.meter ?? null;
      try {
        const placed = await insertHold(pool, {
          tenantId,
          meter,
          reason: req.reason,
          workflowId: req.workflowId ?? null,
          idempotencyKey: req.idempotencyKey,
          operator: req.operator,
        });
        if (placed) return toHold(placed);
      } catch (err) {
        if (!isForeignKeyViolation(err)) throw err;
        throw ApplicationFailure.nonRetryable(
          `tenant ${tenantId} is not in the tenants table`,
          'TenantUnknown',
        );
      }
      const hold = (await holdPlacedUnder(pool, req.idempotencyKey))!;
      if (hold.tenant_id !== tenantId || hold.meter !== meter) {
        throw ApplicationFailure.nonRetryable(
          `idempotency key ${req.idempotencyKey} already placed a hold on tenant ${hold.tenant_id ?? '(all)'}, ` +
            `meter ${hold.meter ?? '(all)'}`,
          'IdempotencyKeyReused',
        );
      }
      return toHold(hold);
    },

    /**
     * Releases the active holds with exactly this scope (tenant and meter, either possibly "all"). A retry with the
     * same key answers the holds the first call released and releases nothing placed since.
     */
    async releaseInvoiceGeneration(input: GenerationHoldRequest): Promise<{ released: GenerationHold[] }> {
      const req = parseRequest(generationHoldSchema, input, 'generation release');
      const earlier = await holdsReleasedUnder(pool, req.idempotencyKey);
      if (earlier.length > 0) return { released: earlier.map(toHold) };
      const rows = await releaseHolds(pool, {
        tenantId: req.tenantId ?? null,
        meter: req.meter ?? null,
        operator: req.operator,
        reason: req.reason,
        idempotencyKey: req.idempotencyKey,
      });
      return { released: rows.sort((a, b) => a.id - b.id).map(toHold) };
    },
  };
}
