// Over/underbilling dispute activities (seed 000 §4): the dispute's facts and its settlement, assembled as one group.
import type { Pool } from 'pg';
import type { PaymentGateways } from '../../payments';
import { createDisputeFactActivities } from './facts';
import { createRepriceActivities } from './reprice';
import { createSettlementActivities } from './settle';

export type { DisputedInvoice, DisputedMeterUsage, DisputeFacts, DisputeScope } from './facts';
export type { RepriceRequest } from './reprice';
export type { AdjustmentInvoice, CreditMethod, DisputeCredit, SettlementRequest } from './credits';

export function createDisputeActivities(deps: { pool: Pool } & PaymentGateways) {
  return {
    ...createDisputeFactActivities(deps),
    ...createRepriceActivities(deps),
    ...createSettlementActivities(deps),
  };
}

export type DisputeActivities = ReturnType<typeof createDisputeActivities>;
