// The tenants repository: list, get and add tenants, with the new-tenant input validated by zod at this edge.
import type { Pool, PoolClient } from 'pg';
import { z } from 'zod';
import { BILLING_TIERS, type BillingTier } from '../domain/vocabulary';

export const TENANT_TIERS = BILLING_TIERS;
export type TenantTier = BillingTier;
export const TENANT_PAYMENT_PROCESSORS = ['stripe', 'paystack', 'none'] as const;
export type TenantPaymentProcessor = (typeof TENANT_PAYMENT_PROCESSORS)[number];

export interface Tenant {
  id: string;
  name: string;
  tier: TenantTier;
  email: string;
  billingEmail: string;
  accountManagerEmail: string | null;
  currency: string;
  paymentProcessor: TenantPaymentProcessor;
  stripeCustomerId: string | null;
  paystackCustomerCode: string | null;
  paystackAuthorizationCode: string | null;
  /** Usage cap in units per meter (api_calls → 1000000). */
  usageCaps: Record<string, number>;
  normalCapacityRps: number;
  createdAt: Date;
  deletedAt: Date | null;
}

const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((v) => v || undefined);

/** A value's type as messages name it: null and array apart from object. */
function typeName(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'array';
  return typeof input;
}

/** 'must be one of free, pro, enterprise (got "gold")' rather than zod's generic enum message. */
function oneOf(values: readonly string[]): z.core.$ZodErrorMap {
  const expected = `must be one of ${values.join(', ')}`;
  return (issue) => {
    if (issue.code !== 'invalid_value' && issue.code !== 'invalid_type') return undefined;
    if (issue.input === undefined) return 'is required';
    if (typeof issue.input === 'string') return `${expected} (got ${JSON.stringify(issue.input)})`;
    return `${expected} (got a ${typeName(issue.input)})`;
  };
}

/** 'is required' for a missing field; zod's own message for a value of the wrong type. */
const required = {
  error: (issue: z.core.$ZodRawIssue) => (issue.input === undefined ? 'is required' : undefined),
};

export const newTenantSchema = z
  .object({
    id: z
      .string(required)
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
        'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit',
      ),
    name: z.string(required).trim().min(1, 'must not be empty'),
    tier: z.enum(TENANT_TIERS, { error: oneOf(TENANT_TIERS) }),
    email: z.string(required).trim().email('must be an email address'),
    billingEmail: z.string().trim().email('must be an email address').optional(),
    accountManagerEmail: z.string().trim().email('must be an email address').optional(),
    currency: z
      .string()
      .trim()
      .transform((c) => c.toUpperCase())
      .pipe(z.string().regex(/^[A-Z]{3}$/, 'must be a three-letter ISO 4217 code such as USD or NGN'))
      .default('USD'),
    paymentProcessor: z
      .enum(TENANT_PAYMENT_PROCESSORS, { error: oneOf(TENANT_PAYMENT_PROCESSORS) })
      .optional(),
    stripeCustomerId: optionalText,
    paystackCustomerCode: optionalText,
    paystackAuthorizationCode: optionalText,
    usageCaps: z
      .record(
        z
          .string()
          .regex(/^[a-z][a-z0-9_.]{0,63}$/, 'meter names are lower case: letters, digits, "_" and "."'),
        z.number().int('must be a whole number of units').positive('must be positive'),
        // zod 4 wraps a key's problems in one invalid_key issue ("Invalid key in record"): show the key's own.
        { error: (issue) => (issue.code === 'invalid_key' ? issue.issues[0]?.message : undefined) },
      )
      .default({}),
    normalCapacityRps: z.number().int().positive('must be positive').default(100),
  })
  .strict()
  .transform((t) => ({
    ...t,
    billingEmail: t.billingEmail ?? t.email,
    // Paid tiers bill through Stripe unless told otherwise; Free has no payment processing.
    paymentProcessor: t.paymentProcessor ?? (t.tier === 'free' ? 'none' : 'stripe'),
  }))
  .refine((t) => t.tier !== 'free' || t.paymentProcessor === 'none', {
    message: 'the free tier has no payment processing, so paymentProcessor must be none',
    path: ['paymentProcessor'],
  });

/** A well-formed new tenant before defaults are applied. */
export type NewTenantInput = z.input<typeof newTenantSchema>;
/** What addTenant accepts: the same field names with values not yet checked (CLI flags, JSON bodies). */
export type UncheckedNewTenant = Partial<Record<keyof NewTenantInput, unknown>>;
export type NewTenant = z.output<typeof newTenantSchema>;

/** The input did not pass validation; `message` lists every problem, one per field. */
export class TenantInputError extends Error {
  override name = 'TenantInputError';
  constructor(readonly issues: z.ZodIssue[]) {
    super(
      `invalid tenant: ${issues.map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`).join('; ')}`,
    );
  }
}

/** A tenant with that id (or processor customer id) already exists. */
export class TenantConflictError extends Error {
  override name = 'TenantConflictError';
}

interface TenantRow {
  id: string;
  name: string;
  tier: TenantTier;
  email: string;
  billing_email: string;
  account_manager_email: string | null;
  currency: string;
  payment_processor: TenantPaymentProcessor;
  stripe_customer_id: string | null;
  paystack_customer_code: string | null;
  paystack_authorization_code: string | null;
  usage_caps: Record<string, number>;
  normal_capacity_rps: number;
  created_at: Date;
  deleted_at: Date | null;
}

const SELECT_TENANTS = `
  SELECT t.id, t.name, t.tier, t.email, t.billing_email, t.account_manager_email, t.currency, t.payment_processor,
         t.stripe_customer_id, t.paystack_customer_code, t.paystack_authorization_code, t.normal_capacity_rps,
         t.created_at, t.deleted_at,
         COALESCE((SELECT jsonb_object_agg(c.meter, c.cap_units) FROM usage_caps c WHERE c.tenant_id = t.id), '{}') AS usage_caps
  FROM tenants t`;

function toTenant(row: TenantRow): Tenant {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    email: row.email,
    billingEmail: row.billing_email,
    accountManagerEmail: row.account_manager_email,
    currency: row.currency,
    paymentProcessor: row.payment_processor,
    stripeCustomerId: row.stripe_customer_id,
    paystackCustomerCode: row.paystack_customer_code,
    paystackAuthorizationCode: row.paystack_authorization_code,
    usageCaps: row.usage_caps,
    normalCapacityRps: row.normal_capacity_rps,
    createdAt: row.created_at,
    deletedAt: row.deleted_at,
  };
}

/** Every tenant ordered by id; deleted ones only when asked. */
export async function listTenants(pool: Pool, opts: { includeDeleted?: boolean } = {}): Promise<Tenant[]> {
  const where = opts.includeDeleted ? '' : ' WHERE t.deleted_at IS NULL';
  const { rows } = await pool.query<TenantRow>(`${SELECT_TENANTS}${where} ORDER BY t.id`);
  return rows.map(toTenant);
}

/** The tenant with this id, deleted or not; undefined when there is none. */
export async function getTenant(pool: Pool, id: string): Promise<Tenant | undefined> {
  const { rows } = await pool.query<TenantRow>(`${SELECT_TENANTS} WHERE t.id = $1`, [id]);
  const row = rows[0];
  return row ? toTenant(row) : undefined;
}

/** Validates the input, then inserts the tenant and its usage caps in one transaction (service controls come by trigger). */
/** Inserts one validated tenant; with `ifAbsent` an existing id is left alone. Returns the number of rows inserted. */
export async function insertTenantRow(
  db: Pick<PoolClient, 'query'>,
  t: NewTenant,
  opts: { ifAbsent?: boolean } = {},
): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO tenants (id, name, tier, email, billing_email, account_manager_email, currency, payment_processor,
                          stripe_customer_id, paystack_customer_code, paystack_authorization_code, normal_capacity_rps)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)${opts.ifAbsent ? ' ON CONFLICT DO NOTHING' : ''}`,
    [
      t.id,
      t.name,
      t.tier,
      t.email,
      t.billingEmail,
      t.accountManagerEmail ?? null,
      t.currency,
      t.paymentProcessor,
      t.stripeCustomerId ?? null,
      t.paystackCustomerCode ?? null,
      t.paystackAuthorizationCode ?? null,
      t.normalCapacityRps,
    ],
  );
  return rowCount ?? 0;
}

export async function addTenant(pool: Pool, input: UncheckedNewTenant): Promise<Tenant> {
  const parsed = newTenantSchema.safeParse(input);
  if (!parsed.success) throw new TenantInputError(parsed.error.issues);
  const t = parsed.data;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await insertTenantRow(client, t);
    for (const [meter, capUnits] of Object.entries(t.usageCaps)) {
      await client.query('INSERT INTO usage_caps (tenant_id, meter, cap_units) VALUES ($1, $2, $3)', [
        t.id,
        meter,
        capUnits,
      ]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw asConflict(err, t) ?? err;
  } finally {
    client.release();
  }
  const added = await getTenant(pool, t.id);
  if (!added) throw new Error(`tenant ${t.id} was inserted but cannot be read back`);
  return added;
}

function asConflict(err: unknown, t: NewTenant): TenantConflictError | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err) || err.code !== '23505') return undefined;
  const constraint = 'constraint' in err ? String(err.constraint) : '';
  if (constraint === 'tenants_pkey') return new TenantConflictError(`tenant ${t.id} already exists`);
  if (constraint.includes('stripe_customer_id'))
    return new TenantConflictError(`Stripe customer ${t.stripeCustomerId} already belongs to another tenant`);
  if (constraint.includes('paystack_customer_code'))
    return new TenantConflictError(
      `Paystack customer ${t.paystackCustomerCode} already belongs to another tenant`,
    );
  return new TenantConflictError(`tenant ${t.id} conflicts with an existing row (${constraint})`);
}
