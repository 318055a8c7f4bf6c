// The workflow bundle's entry: every workflow type the billops worker runs.
export { customerNoticeWorkflow } from './customerNotice';
export { dunningWorkflow } from './dunning';
export { overageWorkflow } from './overage';
export { usageBackfillWorkflow } from './usageBackfill';
export { usageRollupWorkflow } from './usageRollup';
export { stuckTransactionsWorkflow } from './incidents/stuckTransactions';
