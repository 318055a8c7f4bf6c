// The search attributes of DESIGN.md: all Keyword, registered on the dev server at start and set by every workflow.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TenantId = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const BillingTier = defineSearchAttributeKey('BillingTier', SearchAttributeType.KEYWORD);
export const DunningPhase = defineSearchAttributeKey('DunningPhase', SearchAttributeType.KEYWORD);
export const IncidentKind = defineSearchAttributeKey('IncidentKind', SearchAttributeType.KEYWORD);
export const Severity = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const PaymentProcessor = defineSearchAttributeKey('PaymentProcessor', SearchAttributeType.KEYWORD);
/** Set while a step waits for a person (the failure's type, e.g. ProcessorAuthFailed); absent otherwise. */
export const NeedsAttention = defineSearchAttributeKey('NeedsAttention', SearchAttributeType.KEYWORD);

export const billopsSearchAttributes = [
  TenantId,
  BillingTier,
  DunningPhase,
  IncidentKind,
  Severity,
  PaymentProcessor,
  NeedsAttention,
];
