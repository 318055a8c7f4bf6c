// `billops endpoints add|list|remove|rotate-secret|deliveries|redeliver`: the product's webhook endpoints and what
// was delivered to them, through db/outboundWebhooks; a redelivery wakes the stream's delivery workflow.
import { parseArgs } from 'node:util';
import { loadPolicyForConfig } from '../config/load';
import {
  createEndpoint,
  deliveryStream,
  EndpointInputError,
  listDeliveries,
  listEndpoints,
  markStreamDispatched,
  redeliver,
  removeEndpoint,
  rotateEndpointSecret,
  type WebhookEndpoint,
} from '../db/outboundWebhooks';
import {
  DELIVERY_STATUSES,
  OUTBOUND_EVENT_TYPES,
  PREVIOUS_SECRET_VALID_HOURS,
  type OutboundEventType,
} from '../domain/outboundWebhooks';
import { wakeWebhookDelivery } from '../temporal/webhookDelivery';
import {
  cliConfig,
  columns,
  oneOf,
  onePositional,
  printJson,
  RefusedError,
  UsageError,
  withDatabase,
  withTemporal,
} from './common';
import { compactTime } from './format';
import { parseTenants } from './keys';

/** `--events a,b`; absent: every event type. */
function parseEvents(value: string | undefined): OutboundEventType[] | null {
  if (value === undefined) return null;
  const words = value
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  if (words.length === 0)
    throw new UsageError(`--events needs one or more of ${OUTBOUND_EVENT_TYPES.join(', ')}`);
  return [
    ...new Set(
      words.map((word) => {
        const type = OUTBOUND_EVENT_TYPES.find((t) => t === word);
        if (!type) {
          throw new UsageError(
            `--events must be among ${OUTBOUND_EVENT_TYPES.join(', ')} (got ${JSON.stringify(word)})`,
          );
        }
        return type;
      }),
    ),
  ];
}

const described = (e: WebhookEndpoint) =>
  `${e.events ? e.events.join(',') : 'all events'} for ${e.tenants ? e.tenants.join(',') : 'all tenants'}`;

export async function endpointsAdd(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      url: { type: 'string' },
      events: { type: 'string' },
      tenants: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.url?.trim()) throw new UsageError('--url is required: where billops POSTs the events');
  const input = {
    url: values.url.trim(),
    events: parseEvents(values.events),
    tenants: parseTenants(values.tenants),
  };
  const { endpoint, secret } = await withDatabase(async (pool) => {
    try {
      return await createEndpoint(pool, input);
    } catch (err) {
      if (err instanceof EndpointInputError) throw new RefusedError(err.message);
      throw err;
    }
  });
  if (values.json) {
    printJson({ ...endpoint, secret });
    return 0;
  }
  console.log(`added endpoint ${endpoint.id} ${endpoint.url}: ${described(endpoint)}`);
  console.log('its signing secret is shown once; verify Billops-Signature with it:');
  console.log(secret);
  return 0;
}

export async function endpointsList(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { json: { type: 'boolean' } } });
  const endpoints = await withDatabase((pool) => listEndpoints(pool));
  if (values.json) {
    printJson(endpoints);
    return 0;
  }
  if (endpoints.length === 0) console.log('no endpoints (billops endpoints add --url URL adds one)');
  const rows = endpoints.map((e) => [
    e.id,
    e.url,
    described(e),
    `created ${compactTime(e.createdAt)}`,
    e.previousSecretExpiresAt ? `previous secret until ${compactTime(e.previousSecretExpiresAt)}` : '',
  ]);
  for (const line of columns(rows)) console.log(line);
  return 0;
}

export async function endpointsRemove(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: {} });
  const id = onePositional(positionals, '<id>');
  const result = await withDatabase((pool) => removeEndpoint(pool, id));
  if (!result) throw new RefusedError(`no endpoint ${id} (billops endpoints list shows every endpoint's id)`);
  console.log(
    result.alreadyRemoved
      ? `${id} was already removed at ${compactTime(result.endpoint.removedAt)}`
      : `removed ${id}: no new events go to it, and its pending deliveries are marked failed`,
  );
  return 0;
}

export async function endpointsRotateSecret(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { json: { type: 'boolean' } },
  });
  const id = onePositional(positionals, '<id>');
  const rotated = await withDatabase((pool) => rotateEndpointSecret(pool, id));
  if (!rotated) throw new RefusedError(`no endpoint ${id} in use (billops endpoints list shows them)`);
  if (values.json) {
    printJson({ ...rotated.endpoint, secret: rotated.secret });
    return 0;
  }
  console.log(
    `new secret for ${id}; the previous one also signs for ${PREVIOUS_SECRET_VALID_HOURS} h (until ` +
      `${compactTime(rotated.endpoint.previousSecretExpiresAt)}). Shown once:`,
  );
  console.log(rotated.secret);
  return 0;
}

export async function endpointsDeliveries(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      endpoint: { type: 'string' },
      status: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const status =
    values.status === undefined ? undefined : oneOf(values.status, DELIVERY_STATUSES, '--status');
  const deliveries = await withDatabase((pool) =>
    listDeliveries(pool, { endpointId: values.endpoint, status }),
  );
  if (values.json) {
    printJson(deliveries);
    return 0;
  }
  if (deliveries.length === 0) console.log('no deliveries');
  const rows = deliveries.map((d) => [
    d.id,
    d.endpointId,
    d.eventType,
    d.tenantId ?? '-',
    d.status,
    `${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
    d.lastAttemptAt ? `last ${compactTime(d.lastAttemptAt)}` : 'not tried yet',
    d.status === 'delivered' ? '' : (d.lastError ?? ''),
  ]);
  for (const line of columns(rows)) console.log(line);
  return 0;
}

export async function endpointsRedeliver(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: {} });
  const id = onePositional(positionals, '<deliveryId>');
  const config = cliConfig();
  const policy = loadPolicyForConfig(config);
  const delivery = await withDatabase(async (pool) => {
    const again = await redeliver(pool, id).catch((err: unknown) => {
      if (err instanceof EndpointInputError) throw new RefusedError(err.message);
      throw err;
    });
    if (!again) return undefined;
    const stream = (await deliveryStream(pool, id))!;
    await withTemporal((client) =>
      wakeWebhookDelivery(client, config.taskQueue, {
        ...stream,
        policy: { webhookRetry: policy.webhookRetry, apiRetry: policy.apiRetry },
      }),
    );
    await markStreamDispatched(pool, stream.endpointId, stream.stream);
    return again;
  });
  if (!delivery) throw new RefusedError(`no delivery ${id} (billops endpoints deliveries shows their ids)`);
  console.log(
    `delivery ${id} (${delivery.eventType} ${delivery.eventId}) is queued again for ${delivery.url}: ` +
      `sent next in its stream, retried for up to ${policy.webhookRetry.maxDays} days`,
  );
  return 0;
}
