// The pager adapter against a local receiver standing in for PagerDuty's Events API v2 and a Slack incoming webhook.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/activity';
import { createPagingActivities, type PageRequest } from '../../activities/paging';

interface Received {
  path: string;
  contentType: string | undefined;
  body: unknown;
}

interface Answer {
  status: number;
  body: string;
  contentType?: string;
}

const ROUTING_KEY = 'R0UT1NGKEYsecret0000000000000000';
const SLACK_PATH = '/services/T000/B000/slacksecrettoken';

const accepted = (dedupKey: string): Answer => ({
  status: 202,
  body: JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: dedupKey }),
  contentType: 'application/json',
});

let server: Server;
let base: string;
const received: Received[] = [];
/** What each path answers next; PagerDuty accepts and Slack says "ok" unless a test says otherwise. */
let answers: Record<string, Answer | undefined> = {};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const body: unknown = JSON.parse(text);
      const path = req.url ?? '';
      received.push({ path, contentType: req.headers['content-type'], body });
      const dedupKey = (body as { dedup_key?: string }).dedup_key ?? '';
      const answer =
        answers[path] ?? (path === '/v2/enqueue' ? accepted(dedupKey) : { status: 200, body: 'ok' });
      res.writeHead(answer.status, { 'Content-Type': answer.contentType ?? 'text/plain' });
      res.end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});

beforeEach(() => {
  received.length = 0;
  answers = {};
});

const both = () =>
  createPagingActivities({
    pagerDutyRoutingKey: ROUTING_KEY,
    pagerDutyEventsUrl: `${base}/v2/enqueue`,
    slackWebhookUrl: `${base}${SLACK_PATH}`,
    timeoutMs: 2000,
  });

const request = (over: Partial<PageRequest> = {}): PageRequest => ({
  dedupKey: 'incident-payment_processor_outage-stripe',
  incidentKind: 'payment_processor_outage',
  severity: 'P1',
  level: 1,
  summary: 'Stripe is failing every charge',
  contacts: ['Engineering Lead', 'Product', 'Finance', 'Engineering'],
  workflowId: 'incident-payment_processor_outage-stripe',
  action: 'trigger',
  ...over,
});

const pagerDutyEvents = () => received.filter((r) => r.path === '/v2/enqueue').map((r) => r.body);
const slackPosts = () => received.filter((r) => r.path === SLACK_PATH).map((r) => r.body);

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

describe('PagerDuty Events API v2', () => {
  it('a trigger carries routing_key, event_action, dedup_key and the payload the format requires', async () => {
    const result = await both().page(request());
    expect(result).toEqual({
      dedupKey: 'incident-payment_processor_outage-stripe',
      pagerDuty: 'accepted',
      slack: 'posted',
    });
    expect(received[0]?.contentType).toMatch(/^application\/json/);
    expect(pagerDutyEvents()).toEqual([
      {
        routing_key: ROUTING_KEY,
        event_action: 'trigger',
        dedup_key: 'incident-payment_processor_outage-stripe',
        payload: {
          summary: 'Stripe is failing every charge',
          source: 'billops',
          severity: 'critical',
          custom_details: {
            incident_kind: 'payment_processor_outage',
            severity: 'P1',
            escalation_level: 1,
            contacts: ['Engineering Lead', 'Product', 'Finance', 'Engineering'],
            workflow_id: 'incident-payment_processor_outage-stripe',
          },
        },
      },
    ]);
  });

  it('acknowledge and resolve name the alert by dedup_key alone', async () => {
    const pager = both();
    await pager.page(request({ action: 'acknowledge' }));
    await pager.page(request({ action: 'resolve' }));
    expect(pagerDutyEvents()).toEqual([
      {
        routing_key: ROUTING_KEY,
        event_action: 'acknowledge',
        dedup_key: 'incident-payment_processor_outage-stripe',
      },
      {
        routing_key: ROUTING_KEY,
        event_action: 'resolve',
        dedup_key: 'incident-payment_processor_outage-stripe',
      },
    ]);
  });

  it('maps P1..P4 onto critical, error, warning, info', async () => {
    const pager = both();
    for (const severity of ['P1', 'P2', 'P3', 'P4'] as const) await pager.page(request({ severity }));
    expect(pagerDutyEvents().map((e) => (e as { payload: { severity: string } }).payload.severity)).toEqual([
      'critical',
      'error',
      'warning',
      'info',
    ]);
  });

  it('a retried page re-sends the same dedup_key, which PagerDuty folds into one alert', async () => {
    const pager = both();
    await pager.page(request());
    await pager.page(request());
    const keys = pagerDutyEvents().map((e) => (e as { dedup_key: string }).dedup_key);
    expect(new Set(keys).size).toBe(1);
  });

  it('a 400 is a non-retryable PagerRejected, without the routing key, and Slack is not posted', async () => {
    answers['/v2/enqueue'] = {
      status: 400,
      contentType: 'application/json',
      body: JSON.stringify({
        status: 'invalid event',
        message: 'Event object is invalid',
        errors: [`'routing_key' ${ROUTING_KEY} is invalid`],
      }),
    };
    const failure = await failureOf(both().page(request()));
    expect(failure.type).toBe('PagerRejected');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('HTTP 400');
    expect(failure.message).toContain('Event object is invalid');
    expect(failure.message).not.toContain(ROUTING_KEY);
    expect(slackPosts()).toEqual([]);
  });

  it('a 503 is retryable', async () => {
    answers['/v2/enqueue'] = { status: 503, body: 'Service Unavailable' };
    const failure = await failureOf(both().page(request()));
    expect(failure.nonRetryable).toBe(false);
    expect(failure.type).toBe('PagerUnavailable');
    expect(failure.message).not.toContain(ROUTING_KEY);
  });

  it('a 429 (rate limited) is retryable', async () => {
    answers['/v2/enqueue'] = {
      status: 429,
      body: '{"status":"throttle event"}',
      contentType: 'application/json',
    };
    expect((await failureOf(both().page(request()))).nonRetryable).toBe(false);
  });

  it('a 202 that is not { status: "success", dedup_key } is retryable', async () => {
    answers['/v2/enqueue'] = { status: 202, body: '{"status":"queued"}', contentType: 'application/json' };
    const failure = await failureOf(both().page(request()));
    expect(failure.type).toBe('PagerResponseInvalid');
    expect(failure.nonRetryable).toBe(false);
  });

  it('an unreachable PagerDuty is retryable and names neither key nor webhook', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const pager = createPagingActivities({
      pagerDutyRoutingKey: ROUTING_KEY,
      pagerDutyEventsUrl: `http://127.0.0.1:${port}/v2/enqueue`,
      slackWebhookUrl: `${base}${SLACK_PATH}`,
      timeoutMs: 2000,
    });
    const failure = await failureOf(pager.page(request()));
    expect(failure.nonRetryable).toBe(false);
    expect(failure.type).toBe('PagerUnavailable');
    expect(failure.message).not.toContain(ROUTING_KEY);
    expect(failure.message).not.toContain('slacksecrettoken');
  });
});

describe('Slack incoming webhook', () => {
  it('posts text with the severity and summary, and blocks', async () => {
    await both().page(request({ severity: 'P2', summary: 'Webhooks are 20 minutes behind' }));
    const [post] = slackPosts() as { text: string; blocks: unknown[] }[];
    expect(post?.text).toContain('P2');
    expect(post?.text).toContain('Webhooks are 20 minutes behind');
    expect(post?.blocks.length).toBeGreaterThan(0);
  });

  it('a 404 no_service is PagerRejected and does not show the webhook token', async () => {
    answers[SLACK_PATH] = { status: 404, body: 'no_service' };
    const failure = await failureOf(both().page(request()));
    expect(failure.type).toBe('PagerRejected');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain('no_service');
    expect(failure.message).not.toContain('slacksecrettoken');
  });

  it('a 500 is retryable', async () => {
    answers[SLACK_PATH] = { status: 500, body: 'rollup_error' };
    expect((await failureOf(both().page(request()))).nonRetryable).toBe(false);
  });
});

describe('only what is configured is paged', () => {
  it('Slack alone', async () => {
    const pager = createPagingActivities({ slackWebhookUrl: `${base}${SLACK_PATH}`, timeoutMs: 2000 });
    expect(await pager.page(request())).toMatchObject({ pagerDuty: 'not_configured', slack: 'posted' });
    expect(pagerDutyEvents()).toEqual([]);
  });

  it('PagerDuty alone', async () => {
    const pager = createPagingActivities({
      pagerDutyRoutingKey: ROUTING_KEY,
      pagerDutyEventsUrl: `${base}/v2/enqueue`,
      timeoutMs: 2000,
    });
    expect(await pager.page(request())).toMatchObject({ pagerDuty: 'accepted', slack: 'not_configured' });
    expect(slackPosts()).toEqual([]);
  });

  it('nothing configured sends nothing', async () => {
    const pager = createPagingActivities({ timeoutMs: 2000 });
    expect(await pager.page(request())).toMatchObject({
      pagerDuty: 'not_configured',
      slack: 'not_configured',
    });
    expect(received).toEqual([]);
  });

  it('an invalid request is refused before anything is sent', async () => {
    const failure = await failureOf(both().page(request({ dedupKey: '' })));
    expect(failure.type).toBe('InvalidPageRequest');
    expect(received).toEqual([]);
  });
});
