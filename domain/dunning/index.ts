// The dunning lifecycle as pure state (schedule, transitions, status), one import path for the workflow, CLI and tests.
export {
  DUNNING_PHASES,
  DunningRefusedError,
  formatDuration,
  newDunningState,
  type DunningInput,
  type DunningPhase,
  type DunningState,
  type FailedInvoice,
  type OutstandingInvoice,
  type PaymentProcessorName,
  type TimelineEntry,
} from './state';
export {
  deadlines,
  graceEndsAt,
  lifecycleSteps,
  nextStep,
  stepOccurrence,
  type DunningDeadlines,
  type LifecycleStep,
  type StepKind,
} from './schedule';
export {
  addFailedInvoice,
  approveDeletion,
  deletionApprovalProblem,
  completeStep,
  extendGrace,
  graceExtensionProblem,
  markInvoicePaid,
  markRecovered,
  notePaymentUnconfirmed,
  pause,
  recordHardDecline,
  resume,
  type GraceExtension,
} from './transitions';
export { describeLifecycle, isRecovered, outstanding, statusOf, type DunningStatus } from './status';
// `billops preview` (./preview) is imported by its own path: it builds on ../dunningNotices, which imports this index.
