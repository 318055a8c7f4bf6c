// `billops tenants hold|holds`: legal holds on a tenant's data (the dunning deletion refuses while one is active).
import { parseArgs } from 'node:util';
import {
  LegalHoldRefused,
  listActiveLegalHolds,
  placeLegalHold,
  releaseCommand,
  releaseLegalHold,
  type LegalHold,
} from '../db/legalHolds';
import { TENANT_ID_FORMAT } from '../domain/vocabulary';
import {
  columns,
  onePositional,
  operatorName,
  printJson,
  RefusedError,
  required,
  UsageError,
  withDatabase,
} from './common';
import { compactTime } from './format';

function asJson(hold: LegalHold) {
  return {
    id: hold.id,
    tenantId: hold.tenantId,
    reason: hold.reason,
    operator: hold.operator,
    placedAt: hold.placedAt.toISOString(),
    releasedAt: hold.releasedAt?.toISOString() ?? null,
    releasedBy: hold.releasedBy,
    releaseReason: hold.releaseReason,
  };
}

/** `tenants hold <tenantId> --reason TEXT [--operator NAME]`, or with `--release` to lift the active hold. */
export async function tenantsHold(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      reason: { type: 'string' },
      operator: { type: 'string' },
      release: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const tenantId = onePositional(positionals, '<tenantId>');
  if (!TENANT_ID_FORMAT.test(tenantId)) {
    throw new UsageError(`<tenantId> is not a tenant id (got ${JSON.stringify(tenantId)})`);
  }
  const reason = required(values.reason, '--reason TEXT').trim();
  const operator = operatorName(values.operator);
  const hold = await withDatabase(async (pool) => {
    try {
      return values.release
        ? await releaseLegalHold(pool, { tenantId, reason, operator })
        : await placeLegalHold(pool, { tenantId, reason, operator });
    } catch (err) {
      if (err instanceof LegalHoldRefused) throw new RefusedError(err.message);
      throw err;
    }
  });
  if (values.json) {
    printJson(asJson(hold));
  } else if (values.release) {
    console.log(
      `released the legal hold on ${tenantId} (placed by ${hold.operator} at ${compactTime(hold.placedAt.toISOString())}: ` +
        `${hold.reason}); released by ${operator}: ${reason}. Its data may be deleted again when the lifecycle asks.`,
    );
  } else {
    console.log(
      `placed a legal hold on ${tenantId} (by ${operator}: ${reason}); its data will not be deleted until ` +
        releaseCommand(tenantId),
    );
  }
  return 0;
}

/** `tenants holds [--json]`: the active legal holds. */
export async function tenantsHolds(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, strict: true, options: { json: { type: 'boolean' } } });
  const holds = await withDatabase((pool) => listActiveLegalHolds(pool));
  if (values.json) {
    printJson(holds.map(asJson));
    return 0;
  }
  if (holds.length === 0) console.log('no active legal holds');
  const rows = holds.map((h) => [
    h.tenantId,
    `placed ${compactTime(h.placedAt.toISOString())}`,
    `by ${h.operator}`,
    h.reason,
  ]);
  for (const line of columns(rows)) console.log(line);
  return 0;
}
