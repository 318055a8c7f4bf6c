// Incident tests' shared pieces: an input builder, a real-time wait on the status query, and one local receiver
// standing in for PagerDuty, Slack and a status page.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import type { IncidentDependencies } from '../../activities';
import type { IncidentInput, IncidentStatus } from '../../domain/incident';
import { defaultPolicy, type IncidentKind, type Policy } from '../../domain/policy';
import { incidentStatusQuery } from '../../workflows/definitions';
import { pollUntil, type PollOptions } from './poll';

export function incidentInput<P>(
  kind: IncidentKind,
  params: P,
  opts: Partial<Omit<IncidentInput<P>, 'kind' | 'params'>> & { policy?: Policy } = {},
): IncidentInput<P> {
  return {
    kind,
    key: opts.key ?? `test-${randomUUID().slice(0, 8)}`,
    summary: opts.summary ?? `${kind.replaceAll('_', ' ')} (test)`,
    source: opts.source ?? 'operator',
    openedBy: opts.openedBy ?? 'test-operator',
    params,
    policy: opts.policy ?? defaultPolicy,
    ...(opts.severity ? { severity: opts.severity } : {}),
    ...(opts.tenantIds ? { tenantIds: opts.tenantIds } : {}),
    ...(opts.alert ? { alert: opts.alert } : {}),
  };
}

/**
 * Polls the incident's status query in real time until `done` holds. On a time-skipping server this is how a test lets
 * the work due at the current instant finish before it skips further (skipping earlier trips the server). On timeout
 * the error says where the incident stands, its timeline, and what each pending activity last failed with.
 */
export function untilIncident(
  handle: Pick<WorkflowHandle, 'query' | 'describe'>,
  done: (status: IncidentStatus) => boolean,
  what: string,
  opts: PollOptions = {},
): Promise<IncidentStatus> {
  return pollUntil(() => handle.query(incidentStatusQuery), done, what, {
    ...opts,
    explain: async (last) => {
      const pending = await handle.describe().then(
        (d) =>
          (d.raw.pendingActivities ?? [])
            .map((a) => `${a.activityType?.name}: ${a.lastFailure?.message ?? 'no failure yet'}`)
            .join('; ') || 'none',
        (err: Error) => `unknown (describe failed: ${err.message})`,
      );
      return `the incident is at "${last.currentStep}"; pending activities: ${pending}; timeline: ${JSON.stringify(last.timeline)}`;
    },
  });
}

export interface ReceivedCall {
  path: string;
  body: Record<string, unknown>;
  at: number;
}

export interface IncidentReceivers {
  /** Overrides for testWorkerDependencies({ incidents }): pager and status page pointed here. */
  incidents: Partial<IncidentDependencies>;
  pagerDutyEvents(dedupKey?: string): Record<string, unknown>[];
  slackMessages(): Record<string, unknown>[];
  statusPageUpdates(): Record<string, unknown>[];
  hookCalls(): ReceivedCall[];
  /** A hook URL (POST) on this receiver, for scale-up / failover hooks. */
  hookUrl(name: string): string;
  /** From now on, `path` is answered with this status and JSON body (a refusal); `null` restores the normal answer. */
  refuse(path: string, answer: { status: number; body: Record<string, unknown> } | null): void;
  close(): Promise<void>;
}

export const TEST_ROUTING_KEY = 'R0UT1NGKEYtest000000000000000000';

/** PagerDuty answers 202 with the dedup key, Slack "ok", the status page and hooks 200. */
export async function startIncidentReceivers(): Promise<IncidentReceivers> {
  const calls: ReceivedCall[] = [];
  const refusals = new Map<string, { status: number; body: Record<string, unknown> }>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        body = { raw: text };
      }
      const path = req.url ?? '';
      calls.push({ path, body, at: Date.now() });
      const refusal = refusals.get(path);
      if (refusal) {
        res.writeHead(refusal.status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(refusal.body));
        return;
      }
      if (path === '/v2/enqueue') {
        res.writeHead(202, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body.dedup_key }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const on = (path: string) => calls.filter((c) => c.path === path).map((c) => c.body);
  return {
    incidents: {
      paging: {
        pagerDutyRoutingKey: TEST_ROUTING_KEY,
        pagerDutyEventsUrl: `${base}/v2/enqueue`,
        slackWebhookUrl: `${base}/services/T000/B000/slacktoken`,
        timeoutMs: 5_000,
      },
      statusPageWebhookUrl: `${base}/statuspage`,
    },
    pagerDutyEvents: (dedupKey) =>
      on('/v2/enqueue').filter((e) => dedupKey === undefined || e.dedup_key === dedupKey),
    slackMessages: () => on('/services/T000/B000/slacktoken'),
    statusPageUpdates: () => on('/statuspage'),
    hookCalls: () => calls.filter((c) => c.path.startsWith('/hooks/')),
    hookUrl: (name) => `${base}/hooks/${name}`,
    refuse: (path, answer) => {
      if (answer) refusals.set(path, answer);
      else refusals.delete(path);
    },
    close: () =>
      new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
