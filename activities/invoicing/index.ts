// Invoicing activities: draft invoices from usage rollups × rates, recalculation, and holds on generation and delivery.
import type { Pool } from 'pg';
import { createDeliveryActivities } from './deliver';
import { createGenerationActivities } from './generate';
import { createGenerationHoldActivities } from './holds';
import { createRecalculationActivities } from './recalculate';

export type { InvoiceStatus } from '../../db/invoices';
// The rates query and row mapping live with the invoices repository; re-exported for the pricing cache.
export { RATES_SELECT, rateFromRow, type RateRow } from '../../db/invoices';
export type {
  GenerateInvoicesRequest,
  GenerateInvoicesResult,
  GeneratedInvoice,
  GenerationOutcome,
  InvoicePeriodRequest,
  SkipReason,
  SkippedUsage,
} from './generate';
export type {
  RecalculateInvoicesResult,
  RecalculatedInvoice,
  RecalculatedLine,
  RecalculationAction,
} from './recalculate';
export type { GenerationHold, GenerationHoldRequest } from './holds';
export type {
  DeliverInvoicesRequest,
  DeliverInvoicesResult,
  DeliveryHoldRequest,
  DeliveryHoldResult,
  InvoiceSummary,
} from './deliver';

export function createInvoicingActivities(deps: { pool: Pool }) {
  return {
    ...createGenerationActivities(deps),
    ...createRecalculationActivities(deps),
    ...createGenerationHoldActivities(deps),
    ...createDeliveryActivities(deps),
  };
}

export type InvoicingActivities = ReturnType<typeof createInvoicingActivities>;
