// The post-incident report in seed 004's Markdown template, written from the workflow's own timeline.
import { durationText, type IncidentState } from './incident';
import { formatMinorUnits } from './money';

const hhmm = (isoAt: string) => isoAt.slice(11, 16);
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

const TIMELINE_WORDS: Record<string, (detail: string | undefined, operator: string | undefined) => string> = {
  opened: (_d, op) => `Incident detected by ${op ?? 'billops'}`,
  paged: (d) => `Paged ${d ?? 'the first responder'}`,
  escalated: (d) => `Escalated: ${d ?? ''}`,
  acknowledged: (_d, op) => `Acknowledged by ${op ?? 'an operator'}`,
  step: (d) => `${d ?? ''}`,
  alert_resolved: () => 'Monitoring confirms resolution (alert resolved)',
  resolved: (d, op) => `Resolved by ${op ?? 'billops'}: ${d ?? ''}`,
};

/** Markdown; `closedAt` is when the report is written (epoch ms). */
export function incidentReport(state: IncidentState, closedAt: number): string {
  const resolvedAt = state.resolution ? Date.parse(state.resolution.at) : closedAt;
  const impact = [
    `${state.tenantsAffected.size} customers affected`,
    state.revenueImpact
      ? `${formatMinorUnits(state.revenueImpact.amountMinor, state.revenueImpact.currency)} potential revenue impact`
      : 'no revenue impact measured',
    state.credits
      ? `${formatMinorUnits(state.credits.amountMinor, state.credits.currency)} in credits issued`
      : null,
  ].filter(Boolean);

  const timeline = state.timeline.map((entry) => {
    const words =
      TIMELINE_WORDS[entry.event]?.(entry.detail, entry.operator) ??
      `${entry.event}${entry.detail ? `: ${entry.detail}` : ''}${entry.operator ? ` (${entry.operator})` : ''}`;
    return `- ${hhmm(entry.at)} - ${oneLine(words)}`;
  });

  const actions = state.stepsDone.map(
    (s) => `- [x] ${oneLine(s.name)}${s.detail ? ` — ${oneLine(s.detail)}` : ''}`,
  );
  return [
    `## Incident Report: ${oneLine(state.summary)}`,
    '',
    `**Date:** ${new Date(state.openedAt).toISOString().slice(0, 10)}`,
    `**Severity:** ${state.severity}`,
    `**Duration:** ${durationText(state.openedAt, resolvedAt)}`,
    `**Impact:** ${impact.join(', ')}`,
    '',
    '### Timeline',
    `- Detected: ${new Date(state.openedAt).toISOString()}`,
    `- Acknowledged: ${state.acknowledged ? `${state.acknowledged.at} by ${state.acknowledged.by}` : 'never (escalated to level ' + state.escalationLevel + ')'}`,
    `- Resolved: ${state.resolution ? `${state.resolution.at} by ${state.resolution.by}` : 'not resolved'}`,
    ...timeline,
    '',
    '### Root Cause',
    state.rca
      ? oneLine(state.rca.summary)
      : `To be recorded (RCA due within 48 hours; \`billops rca ${state.workflowId} --summary ...\`).`,
    '',
    '### Resolution',
    state.resolution ? oneLine(state.resolution.summary) : 'Not resolved.',
    '',
    '### Action Items',
    ...(actions.length > 0 ? actions : ['- [ ] None recorded']),
    '- [ ] Root cause analysis - incident owner - within 48 hours',
    '',
    '### Lessons Learned',
    'To be completed in the post-incident review.',
    '',
  ].join('\n');
}
