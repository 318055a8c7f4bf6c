// Registers billops' search attributes on a Temporal namespace where they are missing (dev server, test server, a fresh cluster).
import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { billopsSearchAttributes } from '../domain/searchAttributes';
import { GRPC } from './grpc';

/** Adds the missing attributes, as Keyword; returns the names it added. */
export async function ensureSearchAttributes(
  connection: Pick<Connection, 'operatorService'>,
  namespace: string,
): Promise<string[]> {
  let known = new Set<string>();
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    known = new Set([
      ...Object.keys(existing.customAttributes ?? {}),
      ...Object.keys(existing.systemAttributes ?? {}),
    ]);
  } catch (err) {
    // The time-skipping test server cannot list, only add: then add them all.
    if ((err as { code?: number }).code !== GRPC.unimplemented) throw err;
  }
  const missing = billopsSearchAttributes.map((key) => key.name).filter((name) => !known.has(name));
  if (missing.length === 0) return [];
  const keyword = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((name) => [name, keyword])),
    });
  } catch (err) {
    if ((err as { code?: number }).code !== GRPC.alreadyExists) throw err;
  }
  return missing;
}
