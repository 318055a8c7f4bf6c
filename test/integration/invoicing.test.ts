// Invoicing activities against a real PostgreSQL: invoices from rollups × rates, recalculation, generation and delivery holds.
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import { createInvoicingActivities } from '../../activities/invoicing';
import { createPool } from '../../db/pool';
import { insertTenant } from '../support/dunningFixtures';
import { testEnv } from '../support/testRuntime';

const suffix = () => randomBytes(4).toString('hex');

/** The tiers jsonb of the rates migration: the first million units at 0.05 minor units, the rest at 0.02. */
const STANDARD_TIERS = [
  { up_to: 1000000, unit_price_minor: 0.05 },
  { up_to: null, unit_price_minor: 0.02 },
];
const FEB = { periodStart: '2026-02-01T00:00:00.000Z', periodEnd: '2026-03-01T00:00:00.000Z' };
const MAR = { periodStart: '2026-03-01T00:00:00.000Z', periodEnd: '2026-04-01T00:00:00.000Z' };
const APR = { periodStart: '2026-04-01T00:00:00.000Z', periodEnd: '2026-05-01T00:00:00.000Z' };

let pool: Pool;
let invoicing: ReturnType<typeof createInvoicingActivities>;

beforeAll(() => {
  pool = createPool(testEnv('databaseUrl'), { max: 4 });
  invoicing = createInvoicingActivities({ pool });
});

afterAll(async () => {
  await pool.end();
});

/** A meter of this suite's own, so tier rates never collide with other suites sharing the database. */
const newMeter = (name: string) => `inv_${name}_${suffix()}`;
const newTenant = async () => (await insertTenant(pool, 'pro')).id;

async function insertRate(rate: {
  meter: string;
  effectiveFrom: string;
  tenantId?: string;
  unitPriceMinor?: string;
  tiers?: unknown;
}): Promise<number> {
  const { rows } = await pool.query<{ id: number }>(
    `INSERT INTO rates (meter, tier, tenant_id, effective_from, pricing_model, unit_price_minor, tiers, currency)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 'USD') RETURNING id`,
    [
      rate.meter,
      rate.tenantId ? null : 'pro',
      rate.tenantId ?? null,
      rate.effectiveFrom,
      rate.tiers ? 'graduated' : 'per_unit',
      rate.unitPriceMinor ?? null,
      rate.tiers ? JSON.stringify(rate.tiers) : null,
    ],
  );
  return rows[0]!.id;
}

/** Hourly rollups as the aggregation job writes them; a second write to an hour replaces it (a backfill). */
async function putRollups(tenantId: string, meter: string, hours: Array<[string, string]>): Promise<void> {
  for (const [hour, quantity] of hours) {
    await pool.query(
      `INSERT INTO usage_rollups (tenant_id, meter, hour, quantity, event_count) VALUES ($1, $2, $3, $4, 1)
       ON CONFLICT (tenant_id, meter, hour) DO UPDATE SET quantity = EXCLUDED.quantity, computed_at = now()`,
      [tenantId, meter, hour, quantity],
    );
  }
}

async function invoiceRow(invoiceId: string) {
  const { rows } = await pool.query<{
    status: string;
    currency: string;
    subtotal_minor: number;
    total_minor: number;
    generation_key: string | null;
    generation_held: boolean;
    delivery_held: boolean;
    delivery_hold_reason: string | null;
    delivery_hold_changed_by: string | null;
    delivered_at: Date | null;
  }>(
    `SELECT status, currency, subtotal_minor, total_minor, generation_key, generation_held, delivery_held,
            delivery_hold_reason, delivery_hold_changed_by, delivered_at
     FROM invoices WHERE id = $1`,
    [invoiceId],
  );
  return rows[0]!;
}

async function linesOf(invoiceId: string) {
  const { rows } = await pool.query<{
    meter: string;
    quantity: string;
    rate_id: number;
    amount_minor: number;
  }>(
    'SELECT meter, quantity::text AS quantity, rate_id, amount_minor FROM invoice_lines WHERE invoice_id = $1 ORDER BY meter',
    [invoiceId],
  );
  return rows;
}

async function invoicesOf(tenantId: string) {
  const { rows } = await pool.query<{ id: string; period_start: Date }>(
    'SELECT id, period_start FROM invoices WHERE tenant_id = $1 ORDER BY period_start',
    [tenantId],
  );
  return rows;
}

/** Asserts the promise fails with a non-retryable ApplicationFailure of this type. */
async function expectNonRetryable(promise: Promise<unknown>, type: string): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type, nonRetryable: true });
}

describe('generateInvoices', () => {
  it('builds one draft per tenant whose lines and totals equal the prices computed by hand', async () => {
    const [calls, storage] = [newMeter('calls'), newMeter('storage')];
    const [listed, negotiated] = [await newTenant(), await newTenant()];
    const callsRate = await insertRate({
      meter: calls,
      effectiveFrom: '2026-01-01T00:00:00Z',
      unitPriceMinor: '0.05',
    });
    const storageRate = await insertRate({
      meter: storage,
      effectiveFrom: '2026-01-01T00:00:00Z',
      tiers: STANDARD_TIERS,
    });
    const contract = await insertRate({
      meter: calls,
      tenantId: negotiated,
      effectiveFrom: '2026-01-15T00:00:00Z',
      unitPriceMinor: '0.01',
    });
    await putRollups(listed, calls, [
      ['2026-01-31T23:00:00Z', '999'], // before the period
      ['2026-02-01T00:00:00Z', '600000'],
      ['2026-02-14T13:00:00Z', '634567'],
      ['2026-03-01T00:00:00Z', '999'], // the period end is exclusive
    ]);
    await putRollups(listed, storage, [
      ['2026-02-10T05:00:00Z', '1000000.5'],
      ['2026-02-20T00:00:00Z', '234566.5'],
    ]);
    await putRollups(negotiated, calls, [['2026-02-03T08:00:00Z', '1234567']]);

    const result = await invoicing.generateInvoices({
      ...FEB,
      tenants: [listed, negotiated],
      idempotencyKey: `gen-${suffix()}`,
    });

    // calls: 1,234,567 × 0.05 = 61,728.35 → 61,728; storage: 1,000,000 × 0.05 + 234,567 × 0.02 = 54,691.34 → 54,691.
    // negotiated calls: 1,234,567 × 0.01 = 12,345.67 → 12,346.
    expect(result.skipped).toEqual([]);
    const byTenant = new Map(result.invoices.map((i) => [i.tenantId, i]));
    expect(byTenant.get(listed)).toMatchObject({
      totalMinor: 61728 + 54691,
      status: 'draft',
      outcome: 'created',
    });
    expect(byTenant.get(negotiated)).toMatchObject({
      totalMinor: 12346,
      meters: [calls],
      outcome: 'created',
    });

    const listedId = byTenant.get(listed)!.invoiceId;
    expect(await invoiceRow(listedId)).toMatchObject({
      status: 'draft',
      currency: 'USD',
      subtotal_minor: 116419,
      total_minor: 116419,
      generation_held: false,
    });
    expect(await linesOf(listedId)).toEqual([
      { meter: calls, quantity: '1234567', rate_id: callsRate, amount_minor: 61728 },
      { meter: storage, quantity: '1234567', rate_id: storageRate, amount_minor: 54691 },
    ]);
    expect(await linesOf(byTenant.get(negotiated)!.invoiceId)).toEqual([
      { meter: calls, quantity: '1234567', rate_id: contract, amount_minor: 12346 },
    ]);
  });

  it('prices each period with the rate version in force at its start', async () => {
    const calls = newMeter('calls');
    const tenantId = await newTenant();
    const january = await insertRate({
      meter: calls,
      effectiveFrom: '2026-01-01T00:00:00Z',
      unitPriceMinor: '0.05',
    });
    const march = await insertRate({
      meter: calls,
      effectiveFrom: '2026-03-01T00:00:00Z',
      unitPriceMinor: '0.04',
    });
    // Effective mid-March: March keeps the price in force when it began; April gets this one.
    const midMarch = await insertRate({
      meter: calls,
      effectiveFrom: '2026-03-15T00:00:00Z',
      unitPriceMinor: '0.03',
    });
    await putRollups(tenantId, calls, [
      ['2026-02-15T00:00:00Z', '100000'],
      ['2026-03-20T00:00:00Z', '100000'],
      ['2026-04-02T00:00:00Z', '100000'],
    ]);

    // 100,000 units at 0.05, 0.04 and 0.03 minor units.
    const expected = [
      { period: FEB, rateId: january, totalMinor: 5000 },
      { period: MAR, rateId: march, totalMinor: 4000 },
      { period: APR, rateId: midMarch, totalMinor: 3000 },
    ];
    for (const { period, rateId, totalMinor } of expected) {
      const { invoices } = await invoicing.generateInvoices({
        ...period,
        tenants: [tenantId],
        idempotencyKey: suffix(),
      });
      expect(invoices).toMatchObject([{ totalMinor }]);
      expect(await linesOf(invoices[0]!.invoiceId)).toMatchObject([
        { rate_id: rateId, amount_minor: totalMinor },
      ]);
    }
  });

  it('is idempotent per tenant and period, whatever the key, also when two runs race', async () => {
    const calls = newMeter('calls');
    const tenantId = await newTenant();
    await insertRate({ meter: calls, effectiveFrom: '2026-01-01T00:00:00Z', unitPriceMinor: '0.05' });
    await putRollups(tenantId, calls, [
      ['2026-02-10T00:00:00Z', '1000'],
      ['2026-03-10T00:00:00Z', '3000'],
    ]);
    const request = { ...FEB, tenants: [tenantId], idempotencyKey: `gen-${suffix()}` };

    const first = await invoicing.generateInvoices(request);
    const retried = await invoicing.generateInvoices(request);
    const rerun = await invoicing.generateInvoices({ ...request, idempotencyKey: `gen-${suffix()}` });

    expect(first.invoices).toMatchObject([{ outcome: 'created', totalMinor: 50 }]);
    for (const again of [retried, rerun]) {
      expect(again.invoices).toEqual([{ ...first.invoices[0], outcome: 'unchanged' }]);
    }
    expect(await linesOf(first.invoices[0]!.invoiceId)).toHaveLength(1);
    expect((await invoiceRow(first.invoices[0]!.invoiceId)).generation_key).toBe(request.idempotencyKey);

    const raced = await Promise.all([
      invoicing.generateInvoices({ ...MAR, tenants: [tenantId], idempotencyKey: `a-${suffix()}` }),
      invoicing.generateInvoices({ ...MAR, tenants: [tenantId], idempotencyKey: `b-${suffix()}` }),
    ]);
    expect(raced.map((r) => r.invoices[0]!.outcome).sort()).toEqual(['created', 'unchanged']);
    expect(raced[0].invoices[0]!.invoiceId).toBe(raced[1].invoices[0]!.invoiceId);
    expect(await invoicesOf(tenantId)).toHaveLength(2);

    // A period overlapping an invoiced one would bill the same usage twice.
    const overlapping = await invoicing.generateInvoices({
      periodStart: '2026-02-15T00:00:00Z',
      periodEnd: '2026-03-15T00:00:00Z',
      tenants: [tenantId],
      idempotencyKey: suffix(),
    });
    expect(overlapping).toEqual({
      invoices: [],
      skipped: [{ tenantId, meter: null, reason: 'overlapping_invoice' }],
    });
  });

  it('refuses periods that do not start and end on the hour, or end before they start', async () => {
    await expectNonRetryable(
      invoicing.generateInvoices({
        periodStart: '2026-02-01T00:30:00Z',
        periodEnd: '2026-03-01T00:00:00Z',
        idempotencyKey: suffix(),
      }),
      'InvalidInvoicingRequest',
    );
    await expectNonRetryable(
      invoicing.generateInvoices({
        periodStart: MAR.periodStart,
        periodEnd: FEB.periodStart,
        idempotencyKey: suffix(),
      }),
      'InvalidInvoicingRequest',
    );
  });
});

describe('recalculateInvoices', () => {
  it('answers old total, new total and difference per invoice, updating drafts and open ones and leaving paid ones', async () => {
    const [calls, storage] = [newMeter('calls'), newMeter('storage')];
    await insertRate({ meter: calls, effectiveFrom: '2026-01-01T00:00:00Z', unitPriceMinor: '0.05' });
    const storageRate = await insertRate({
      meter: storage,
      effectiveFrom: '2026-01-01T00:00:00Z',
      tiers: STANDARD_TIERS,
    });
    const [draft, paid, delivered] = [await newTenant(), await newTenant(), await newTenant()];
    await putRollups(draft, calls, [['2026-02-02T00:00:00Z', '1234567']]);
    await putRollups(draft, storage, [['2026-02-02T00:00:00Z', '1000000']]);
    await putRollups(paid, calls, [['2026-02-02T00:00:00Z', '1000']]);
    await putRollups(delivered, calls, [['2026-02-02T00:00:00Z', '2000']]);
    const tenants = [draft, paid, delivered];
    const generated = await invoicing.generateInvoices({ ...FEB, tenants, idempotencyKey: suffix() });
    const id = new Map(generated.invoices.map((i) => [i.tenantId, i.invoiceId]));
    await pool.query(
      `UPDATE invoices SET status = 'paid', paid_at = now(), amount_paid_minor = 50 WHERE id = $1`,
      [id.get(paid)],
    );
    await pool.query(`UPDATE invoices SET status = 'open', delivered_at = now() WHERE id = $1`, [
      id.get(delivered),
    ]);

    // The backfill: a missing hour of calls arrives, storage is corrected, the paid tenant was overcounted.
    await putRollups(draft, calls, [['2026-02-28T23:00:00Z', '765433']]);
    await putRollups(draft, storage, [['2026-02-02T00:00:00Z', '1500000']]);
    await putRollups(paid, calls, [['2026-02-02T00:00:00Z', '500']]);
    await putRollups(delivered, calls, [['2026-02-02T00:00:00Z', '3000']]);

    const { invoices, skipped } = await invoicing.recalculateInvoices({ ...FEB, tenants });

    expect(skipped).toEqual([]);
    const byTenant = new Map(invoices.map((i) => [i.tenantId, i]));
    // 61,728 + 50,000 → 2,000,000 × 0.05 + (1,000,000 × 0.05 + 500,000 × 0.02) = 100,000 + 60,000.
    expect(byTenant.get(draft)).toMatchObject({
      invoiceId: id.get(draft),
      oldTotalMinor: 111728,
      newTotalMinor: 160000,
      differenceMinor: 48272,
      action: 'updated',
      lines: [
        {
          meter: calls,
          oldQuantity: '1234567',
          newQuantity: '2000000',
          oldAmountMinor: 61728,
          newAmountMinor: 100000,
        },
        {
          meter: storage,
          oldQuantity: '1000000',
          newQuantity: '1500000',
          oldAmountMinor: 50000,
          newAmountMinor: 60000,
        },
      ],
    });
    expect(byTenant.get(paid)).toMatchObject({
      status: 'paid',
      oldTotalMinor: 50,
      newTotalMinor: 25,
      differenceMinor: -25,
      action: 'needs_adjustment',
    });
    expect(byTenant.get(delivered)).toMatchObject({
      status: 'open',
      oldTotalMinor: 100,
      newTotalMinor: 150,
      differenceMinor: 50,
      action: 'updated',
    });

    expect(await invoiceRow(id.get(draft)!)).toMatchObject({ subtotal_minor: 160000, total_minor: 160000 });
    expect((await linesOf(id.get(draft)!)).find((l) => l.meter === storage)).toEqual({
      meter: storage,
      quantity: '1500000',
      rate_id: storageRate,
      amount_minor: 60000,
    });
    // The paid invoice keeps what the customer paid; a credit settles the 25.
    expect(await invoiceRow(id.get(paid)!)).toMatchObject({ status: 'paid', total_minor: 50 });
    expect(await linesOf(id.get(paid)!)).toMatchObject([{ quantity: '1000', amount_minor: 50 }]);
    // The corrected open invoice goes out again.
    expect(await invoiceRow(id.get(delivered)!)).toMatchObject({ total_minor: 150, delivered_at: null });

    // Nothing changed since: drafts and open invoices agree with the rollups; the paid one still needs its credit.
    const again = (await invoicing.recalculateInvoices({ ...FEB, tenants })).invoices;
    const outcome = new Map(again.map((i) => [i.tenantId, [i.action, i.differenceMinor]]));
    expect(tenants.map((t) => outcome.get(t))).toEqual([
      ['unchanged', 0],
      ['needs_adjustment', -25],
      ['unchanged', 0],
    ]);
  });
});

describe('invoice generation holds', () => {
  it('skips held tenants and meters, and invoices them once the holds are released', async () => {
    const [calls, storage, egress] = [newMeter('calls'), newMeter('storage'), newMeter('egress')];
    await insertRate({ meter: calls, effectiveFrom: '2026-01-01T00:00:00Z', unitPriceMinor: '0.05' });
    await insertRate({ meter: storage, effectiveFrom: '2026-01-01T00:00:00Z', tiers: STANDARD_TIERS });
    await insertRate({ meter: egress, effectiveFrom: '2026-01-01T00:00:00Z', unitPriceMinor: '1' });
    const [heldTenant, partlyHeld] = [await newTenant(), await newTenant()];
    await putRollups(heldTenant, calls, [['2026-02-05T00:00:00Z', '2000']]);
    for (const meter of [calls, storage, egress]) {
      await putRollups(partlyHeld, meter, [['2026-02-05T00:00:00Z', '1000']]);
    }
    const tenants = [heldTenant, partlyHeld];
    const who = { reason: 'Usage metering failure: rollups under validation', operator: 'oncall@billops' };
    const keys = { tenant: `hold-${suffix()}`, meter: `hold-${suffix()}`, everyone: `hold-${suffix()}` };

    const tenantHold = await invoicing.holdInvoiceGeneration({
      ...who,
      tenantId: heldTenant,
      idempotencyKey: keys.tenant,
    });
    expect(
      await invoicing.holdInvoiceGeneration({ ...who, tenantId: heldTenant, idempotencyKey: keys.tenant }),
    ).toEqual(tenantHold);
    await invoicing.holdInvoiceGeneration({
      ...who,
      tenantId: partlyHeld,
      meter: storage,
      idempotencyKey: keys.meter,
    });
    // No tenant: the meter is held for every tenant.
    await invoicing.holdInvoiceGeneration({ ...who, meter: egress, idempotencyKey: keys.everyone });

    const during = await invoicing.generateInvoices({ ...FEB, tenants, idempotencyKey: suffix() });

    expect(during.skipped).toEqual(
      expect.arrayContaining([
        { tenantId: heldTenant, meter: null, reason: 'held' },
        { tenantId: partlyHeld, meter: storage, reason: 'held' },
        { tenantId: partlyHeld, meter: egress, reason: 'held' },
      ]),
    );
    expect(during.skipped).toHaveLength(3);
    expect(during.invoices).toMatchObject([{ tenantId: partlyHeld, meters: [calls], totalMinor: 50 }]);
    expect(await invoicesOf(heldTenant)).toEqual([]);
    const partial = during.invoices[0]!.invoiceId;
    expect((await invoiceRow(partial)).generation_held).toBe(true);

    const releaseKey = `release-${suffix()}`;
    const released = await invoicing.releaseInvoiceGeneration({
      ...who,
      tenantId: heldTenant,
      idempotencyKey: releaseKey,
    });
    expect(released.released).toMatchObject([
      { holdId: tenantHold.holdId, releasedBy: who.operator, releaseReason: who.reason },
    ]);
    expect(
      await invoicing.releaseInvoiceGeneration({ ...who, tenantId: heldTenant, idempotencyKey: releaseKey }),
    ).toEqual(released);
    await invoicing.releaseInvoiceGeneration({
      ...who,
      tenantId: partlyHeld,
      meter: storage,
      idempotencyKey: suffix(),
    });
    await invoicing.releaseInvoiceGeneration({ ...who, meter: egress, idempotencyKey: suffix() });

    const after = await invoicing.generateInvoices({ ...FEB, tenants, idempotencyKey: suffix() });

    expect(after.skipped).toEqual([]);
    const byTenant = new Map(after.invoices.map((i) => [i.tenantId, i]));
    expect(byTenant.get(heldTenant)).toMatchObject({ outcome: 'created', totalMinor: 100 });
    // 50 for calls, then storage 1,000 × 0.05 = 50 and egress 1,000 × 1 = 1,000 join the same draft.
    expect(byTenant.get(partlyHeld)).toMatchObject({
      invoiceId: partial,
      outcome: 'extended',
      totalMinor: 1100,
      meters: [calls, egress, storage].sort(),
    });
    expect(await invoiceRow(partial)).toMatchObject({ total_minor: 1100, generation_held: false });
  });

  it('refuses to generate at all while generation is held for every tenant and meter', async () => {
    const who = {
      reason: 'Stop invoice generation until data integrity confirmed',
      operator: 'oncall@billops',
    };
    await invoicing.holdInvoiceGeneration({ ...who, idempotencyKey: `hold-all-${suffix()}` });
    try {
      await expectNonRetryable(
        invoicing.generateInvoices({ ...FEB, tenants: [await newTenant()], idempotencyKey: suffix() }),
        'InvoiceGenerationHeld',
      );
    } finally {
      await invoicing.releaseInvoiceGeneration({ ...who, idempotencyKey: `release-all-${suffix()}` });
    }
  });

  it('refuses a hold for an unknown tenant and a key reused for another scope', async () => {
    const who = { reason: 'dispute', operator: 'oncall@billops' };
    await expectNonRetryable(
      invoicing.holdInvoiceGeneration({ ...who, tenantId: `nobody-${suffix()}`, idempotencyKey: suffix() }),
      'TenantUnknown',
    );
    const key = `hold-${suffix()}`;
    const tenantId = await newTenant();
    await invoicing.holdInvoiceGeneration({ ...who, tenantId, idempotencyKey: key });
    await expectNonRetryable(
      invoicing.holdInvoiceGeneration({ ...who, tenantId, meter: 'api_calls', idempotencyKey: key }),
      'IdempotencyKeyReused',
    );
    await invoicing.releaseInvoiceGeneration({ ...who, tenantId, idempotencyKey: suffix() });
  });
});

describe('invoice delivery', () => {
  it('keeps a held invoice from delivery until it is released, then delivers it once', async () => {
    const calls = newMeter('calls');
    await insertRate({ meter: calls, effectiveFrom: '2026-01-01T00:00:00Z', unitPriceMinor: '0.05' });
    const tenantId = await newTenant();
    await putRollups(tenantId, calls, [['2026-02-05T00:00:00Z', '20000']]);
    const { invoices } = await invoicing.generateInvoices({
      ...FEB,
      tenants: [tenantId],
      idempotencyKey: suffix(),
    });
    const invoiceId = invoices[0]!.invoiceId;
    await pool.query(`UPDATE invoices SET status = 'open' WHERE id = $1`, [invoiceId]);
    const who = { reason: 'Hold invoice delivery until validation complete', operator: 'oncall@billops' };

    expect(await invoicing.holdInvoiceDelivery({ ...who, tenantId })).toEqual({
      invoiceIds: [invoiceId],
      unmatched: [],
    });
    expect(await invoicing.deliverInvoices({ tenants: [tenantId] })).toEqual({
      delivered: [],
      held: [{ invoiceId, tenantId, currency: 'USD', totalMinor: 1000 }],
    });
    expect(await invoiceRow(invoiceId)).toMatchObject({
      delivery_held: true,
      delivery_hold_reason: who.reason,
      delivery_hold_changed_by: who.operator,
      delivered_at: null,
    });

    const unknown = `in_${suffix()}`;
    expect(
      await invoicing.releaseInvoiceDelivery({
        ...who,
        reason: 'validated',
        invoiceIds: [invoiceId, unknown],
      }),
    ).toEqual({ invoiceIds: [invoiceId], unmatched: [unknown] });
    expect(await invoicing.deliverInvoices({ tenants: [tenantId] })).toEqual({
      delivered: [{ invoiceId, tenantId, currency: 'USD', totalMinor: 1000 }],
      held: [],
    });
    expect((await invoiceRow(invoiceId)).delivered_at).toBeInstanceOf(Date);
    expect(await invoicing.deliverInvoices({ tenants: [tenantId] })).toEqual({ delivered: [], held: [] });
    // Nothing left to hold once delivered.
    expect(await invoicing.holdInvoiceDelivery({ ...who, invoiceIds: [invoiceId] })).toEqual({
      invoiceIds: [],
      unmatched: [invoiceId],
    });
  });

  it('delivers only open invoices: a draft waits for finalization', async () => {
    const calls = newMeter('calls');
    await insertRate({ meter: calls, effectiveFrom: '2026-01-01T00:00:00Z', unitPriceMinor: '0.05' });
    const tenantId = await newTenant();
    await putRollups(tenantId, calls, [['2026-02-05T00:00:00Z', '20000']]);
    await invoicing.generateInvoices({ ...FEB, tenants: [tenantId], idempotencyKey: suffix() });

    expect(await invoicing.deliverInvoices({ tenants: [tenantId], ...FEB })).toEqual({
      delivered: [],
      held: [],
    });
  });
});
