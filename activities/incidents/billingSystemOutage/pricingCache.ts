// Seed 000 §3 "Use cached pricing data if database unavailable": a snapshot of the rates table in a file, refreshed
// while PostgreSQL answers, and a price lookup that reads the database first and the snapshot when it cannot.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { z } from 'zod';
import { normalizeCurrency } from '../../../domain/money';
import {
  describeLine,
  effectiveRate,
  priceUsage,
  PricingError,
  type Rate,
  type RateSubject,
} from '../../../domain/pricing';
import { BILLING_TIERS, type BillingTier } from '../../../domain/policy';
import { databaseUnavailable } from '../../../db/errors';
import { RATES_SELECT, rateFromRow, type RateRow } from '../../invoicing';

export interface PricingCacheStatus {
  path: string;
  /** ISO-8601; null when no snapshot was ever taken. */
  takenAt: string | null;
  rates: number;
  /** Rates rows left out of the snapshot because their pricing is not valid (invoicing refuses them too). */
  invalid?: number[];
}

export interface PriceQuote {
  meter: string;
  quantity: string;
  amountMinor: number;
  currency: string;
  rateId: number;
  description: string;
  /** Where the rate came from: the database, or the snapshot taken at `cacheTakenAt`. */
  source: 'database' | 'cache';
  cacheTakenAt: string | null;
}

export interface RatesAnswer {
  rates: Rate[];
  source: 'database' | 'cache';
  cacheTakenAt: string | null;
  /** Why the cache was used. */
  reason?: string;
}

const snapshotSchema = z.object({
  takenAt: z.string().datetime(),
  rates: z.array(
    z.object({
      id: z.number().int(),
      meter: z.string(),
      tier: z.enum(BILLING_TIERS).nullable(),
      tenantId: z.string().nullable(),
      currency: z.string().length(3),
      effectiveFrom: z.string().datetime(),
      pricing: z.unknown(),
    }),
  ),
});

/** The cache itself, usable outside activities (a pricing endpoint in the worker or ingress). */
export function createPricingCache(deps: { pool: Pool; cachePath: string; timeoutMs?: number }) {
  const timeoutMs = deps.timeoutMs ?? 5_000;

  async function fromDatabase(where: string, params: unknown[]): Promise<RateRow[]> {
    let timer: NodeJS.Timeout | undefined;
    const query = deps.pool.query<RateRow>(`${RATES_SELECT} ${where}`, params);
    // A database that hangs is as unavailable as one that refuses: the lookup does not wait for it.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error('connection timeout: no answer from the database'), {
              code: 'ETIMEDOUT',
            }),
          ),
        timeoutMs,
      );
    });
    query.catch(() => undefined);
    try {
      const { rows } = await Promise.race([query, timeout]);
      return rows;
    } finally {
      clearTimeout(timer);
    }
  }

  async function read(): Promise<{ takenAt: string; rates: Rate[] } | null> {
    let text: string;
    try {
      text = await readFile(deps.cachePath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const parsed = snapshotSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`the pricing cache at ${deps.cachePath} is not a valid snapshot`);
    return {
      takenAt: parsed.data.takenAt,
      rates: parsed.data.rates.map((r) => ({
        ...r,
        effectiveFrom: new Date(r.effectiveFrom),
        pricing: r.pricing as Rate['pricing'],
      })),
    };
  }

  return {
    /** Writes every rate version to the snapshot (atomically: a reader never sees half a file). */
    async refresh(): Promise<PricingCacheStatus> {
      const rates: Rate[] = [];
      const invalid: number[] = [];
      for (const row of await fromDatabase('ORDER BY r.id', [])) {
        try {
          rates.push(rateFromRow(row));
        } catch (err) {
          if (!(err instanceof PricingError)) throw err;
          invalid.push(row.id);
        }
      }
      const takenAt = new Date().toISOString();
      const snapshot = {
        takenAt,
        rates: rates.map((r) => ({ ...r, effectiveFrom: r.effectiveFrom.toISOString() })),
      };
      await mkdir(dirname(deps.cachePath), { recursive: true });
      const partial = `${deps.cachePath}.${process.pid}.tmp`;
      await writeFile(partial, JSON.stringify(snapshot), 'utf8');
      await rename(partial, deps.cachePath);
      return { path: deps.cachePath, takenAt, rates: rates.length, ...(invalid.length ? { invalid } : {}) };
    },

    async status(): Promise<PricingCacheStatus> {
      const snapshot = await read();
      return { path: deps.cachePath, takenAt: snapshot?.takenAt ?? null, rates: snapshot?.rates.length ?? 0 };
    },

    /** The rates that can price these meters for these subjects: from the database, else from the snapshot. */
    async ratesFor(meters: string[], subjects: RateSubject[]): Promise<RatesAnswer> {
      try {
        const rows = await fromDatabase(
          'WHERE r.meter = ANY($1) AND (r.tenant_id = ANY($2) OR r.tier = ANY($3))',
          [meters, [...new Set(subjects.map((s) => s.tenantId))], [...new Set(subjects.map((s) => s.tier))]],
        );
        return { rates: rows.map(rateFromRow), source: 'database', cacheTakenAt: null };
      } catch (err) {
        const why = databaseUnavailable(err);
        if (!why) throw err;
        const snapshot = await read();
        if (!snapshot) {
          throw new Error(`the database is unavailable (${why}) and no pricing snapshot was ever taken`);
        }
        return {
          rates: snapshot.rates.filter(
            (r) =>
              meters.includes(r.meter) &&
              subjects.some((s) => r.tenantId === s.tenantId || (r.tenantId === null && r.tier === s.tier)),
          ),
          source: 'cache',
          cacheTakenAt: snapshot.takenAt,
          reason: why,
        };
      }
    },
  };
}

export function createPricingCacheActivities(deps: { pool: Pool; cachePath: string }) {
  const cache = createPricingCache(deps);
  return {
    /** Takes a fresh snapshot of the rates; run while the database answers. */
    async refreshPricingCache(): Promise<PricingCacheStatus> {
      return cache.refresh();
    },

    async pricingCacheStatus(): Promise<PricingCacheStatus> {
      return cache.status();
    },

    /** Prices a quantity of one meter for a tenant at `at` (default now), from the database or, when it is
     * unavailable, from the snapshot: the answer says which. */
    async quoteUsagePrice(req: {
      tenantId: string;
      tier: BillingTier;
      currency: string;
      meter: string;
      quantity: string;
      at?: string;
    }): Promise<PriceQuote> {
      const subject: RateSubject = {
        tenantId: req.tenantId,
        tier: req.tier,
        currency: normalizeCurrency(req.currency),
      };
      const answer = await cache.ratesFor([req.meter], [subject]);
      const rate = effectiveRate(answer.rates, req.meter, req.at ? new Date(req.at) : new Date(), subject);
      if (!rate) {
        throw ApplicationFailure.nonRetryable(
          `no ${subject.currency} rate for ${req.meter} applies to tenant ${req.tenantId} (${req.tier})` +
            (answer.source === 'cache' ? ` in the pricing snapshot of ${answer.cacheTakenAt}` : ''),
          'RateUnknown',
        );
      }
      const priced = priceUsage(req.quantity, rate);
      return {
        meter: req.meter,
        quantity: req.quantity,
        amountMinor: Number(priced.amountMinor),
        currency: rate.currency,
        rateId: rate.id,
        description: describeLine(req.meter, priced),
        source: answer.source,
        cacheTakenAt: answer.cacheTakenAt,
      };
    },
  };
}
export type PricingCacheActivities = ReturnType<typeof createPricingCacheActivities>;
