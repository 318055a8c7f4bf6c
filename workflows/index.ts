// The workflow bundle's entry: every workflow type the billops worker runs.
export { customerNoticeWorkflow } from './customerNotice';
export { dunningWorkflow } from './dunning';
export { overageWorkflow } from './usage/overage';
export { usageBackfillWorkflow } from './usage/backfill';
export { usageRollupWorkflow } from './usage/rollup';
export { stuckTransactionsWorkflow } from './incidents/stuckTransactions';
export { usageMeteringFailureWorkflow } from './incidents/usageMeteringFailure';
export { billingDisputeWorkflow } from './incidents/billingDispute';
export { webhookFailureWorkflow } from './incidents/webhookFailure';
export { refundWorkflow } from './incidents/refund';
export { subscriptionActivationWorkflow } from './incidents/subscriptionActivation';
export { billingSystemOutageWorkflow } from './incidents/billingSystemOutage';
export { paymentProcessorOutageWorkflow } from './incidents/paymentProcessorOutage';
export { webhookDeliveryWorkflow } from './webhookDelivery';
