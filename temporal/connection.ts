// Connects to Temporal from configuration (address, namespace, TLS or API key), with errors that name the address tried.
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

export interface TemporalTarget {
  address: string;
  namespace: string;
  apiKey?: string;
  tls?: { certPath: string; keyPath: string };
}

export class TemporalUnreachableError extends Error {
  constructor(address: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      `cannot reach Temporal at ${address}: ${reason}. ` +
        'Check that the server is running and TEMPORAL_ADDRESS (and TLS / TEMPORAL_API_KEY) are right, ' +
        'or unset TEMPORAL_ADDRESS to let `npm start` run the embedded dev server.',
    );
    this.name = 'TemporalUnreachableError';
  }
}

/** TLS settings shared by the client and the worker's native connection. */
export function tlsFor(target: TemporalTarget): TLSConfig | boolean | undefined {
  if (target.tls) {
    return {
      clientCertPair: { crt: readFileSync(target.tls.certPath), key: readFileSync(target.tls.keyPath) },
    };
  }
  return target.apiKey ? true : undefined;
}

export async function connectClient(target: TemporalTarget): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: target.address,
      tls: tlsFor(target),
      apiKey: target.apiKey,
      connectTimeout: '10s',
    });
    await connection.workflowService.describeNamespace({ namespace: target.namespace });
  } catch (err) {
    throw new TemporalUnreachableError(target.address, err);
  }
  return new Client({ connection, namespace: target.namespace });
}
