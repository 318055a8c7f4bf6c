// What PostgreSQL's text and jsonb refuse (NUL, lone UTF-16 surrogates, bytes that are not UTF-8), made storable.
import { isUtf8 } from 'node:buffer';

/** U+FFFD, the character that stands for one PostgreSQL cannot keep. */
export const REPLACEMENT = '\ufffd';

/**
 * A JSON escape at a time, in order: a surrogate pair (kept), a \u0000 or lone surrogate escape (replaced), or any
 * other escape (kept, and consumed so the backslash of an escaped backslash is never read as the start of one).
 */
const JSON_ESCAPE =
  /\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|[^u])/g;
const UNSTORABLE_ESCAPE = /^\\u(?:0000|[dD][89a-fA-F])/;

/** JSON text with every \u0000 and lone surrogate escape replaced by \ufffd; the same string when there is none. */
export function storableJsonText(json: string): string {
  if (!json.includes('\\u')) return json;
  return json.replace(JSON_ESCAPE, (escape) =>
    escape.length === 6 && UNSTORABLE_ESCAPE.test(escape) ? '\\ufffd' : escape,
  );
}

/** NUL and lone surrogates replaced by U+FFFD (a string PostgreSQL text accepts); the same string when there is none. */
export function storableText(text: string): string {
  return text.replace(
    /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    REPLACEMENT,
  );
}

/**
 * A JSON body as jsonb can keep it: `text` is the body as sent, or a cleaned copy; `raw` holds the bytes received
 * whenever `text` is not exactly them (it was cleaned, or the bytes were not UTF-8).
 */
export function storableJsonBody(rawBody: Buffer): { text: string; raw?: Buffer } {
  const sent = rawBody.toString('utf8');
  const text = storableJsonText(sent);
  return text === sent && isUtf8(rawBody) ? { text } : { text, raw: rawBody };
}
