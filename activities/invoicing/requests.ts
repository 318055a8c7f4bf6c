// Edge validation shared by the invoicing activities: instants on the hour, ids, and the one failure type they throw.
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import { describeZodIssues } from '../../domain/vocabulary';
import { HOUR_MS } from '../../domain/vocabulary';

export const instant = z
  .string()
  .datetime({ offset: true })
  .transform((s) => new Date(s));
export const meterName = z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/, 'meter must look like api_calls');
export const present = z.string().trim().min(1);
export const ids = z.array(present);

export const periodSchema = z
  .object({ periodStart: instant, periodEnd: instant, tenants: ids.optional() })
  .refine((p) => p.periodEnd > p.periodStart, 'periodEnd must be after periodStart')
  .refine(
    (p) => p.periodStart.getTime() % HOUR_MS === 0 && p.periodEnd.getTime() % HOUR_MS === 0,
    'the period must start and end on the hour: usage rollups are hourly',
  );

export function parseRequest<S extends z.ZodTypeAny>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid ${what}: ${describeZodIssues(parsed.error.issues)}`,
      'InvalidInvoicingRequest',
    );
  }
  return parsed.data;
}
