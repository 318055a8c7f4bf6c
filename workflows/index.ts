// The workflow bundle's entry: every workflow type the billops worker runs.
export { customerNoticeWorkflow } from './customerNotice';
export { dunningWorkflow } from './dunning';
