// The search attributes of DESIGN.md: all Keyword, registered on the dev server at start and set by every workflow.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const TenantId = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const BillingTier = defineSearchAttributeKey('BillingTier', SearchAttributeType.KEYWORD);
export const DunningPhase = defineSearchAttributeKey('DunningPhase', SearchAttributeType.KEYWORD);
export const IncidentKind = defineSearchAttributeKey('IncidentKind', SearchAttributeType.KEYWORD);
export const Severity = defineSearchAttributeKey('Severity', SearchAttributeType.KEYWORD);
export const PaymentProcessor = defineSearchAttributeKey('PaymentProcessor', SearchAttributeType.KEYWORD);

export const billopsSearchAttributes = [
  TenantId,
  BillingTier,
  DunningPhase,
  IncidentKind,
  Severity,
  PaymentProcessor,
];
