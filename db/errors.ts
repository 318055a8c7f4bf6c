// Which PostgreSQL failures mean "the database is not there for us" (down, unreachable, read-only) rather than a bug.

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);
const SERVER_CODES: Record<string, string> = {
  '57P01': 'the server is shutting down',
  '57P02': 'the server crashed',
  '57P03': 'the server is not accepting connections yet',
  '25006': 'the database is read-only',
  '53300': 'too many connections',
};

/** Why the error says the database is unavailable, in a few words (never a credential); null for any other error. */
export function databaseUnavailable(err: unknown): string | null {
  // Duck-typed: errors from Node's own modules are not instances of this realm's Error under a test sandbox.
  if (typeof err !== 'object' || err === null) return null;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code === 'string') {
    if (UNREACHABLE_CODES.has(code)) return `unreachable (${code})`;
    if (SERVER_CODES[code]) return SERVER_CODES[code];
    // SQLSTATE class 08: connection exceptions.
    if (/^08[0-9A-Z]{3}$/.test(code)) return `connection failed (${code})`;
  }
  const text = typeof message === 'string' ? message : '';
  if (/timeout exceeded when trying to connect|Connection terminated|connection timeout/i.test(text)) {
    return 'unreachable (connection timed out)';
  }
  return null;
}
