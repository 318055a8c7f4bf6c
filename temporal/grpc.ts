// What billops reads of Temporal's gRPC errors, and the stable ids that let the server drop a repeated request.
import { createHash } from 'node:crypto';

/** The gRPC status codes billops branches on. */
export const GRPC = { notFound: 5, alreadyExists: 6, unimplemented: 12 } as const;

/** The gRPC status of a Temporal call's error, looking through the SDK's wrapper. */
export function grpcCode(error: unknown): number | undefined {
  for (let e: unknown = error; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** A stable UUID-shaped id from a key: the server drops a second signal or batch with the same one. */
export function stableId(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
