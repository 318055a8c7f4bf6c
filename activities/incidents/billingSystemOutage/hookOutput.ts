// What an outage hook printed, made safe for a result and a timeline: only the end of each stream is kept while it
// runs, every configured secret becomes "[redacted]", and the whole is capped with a line saying it was cut.

export const REDACTED = '[redacted]';

/** Collects the end of one stream: at most `keep` characters, and how many it received in all. */
export class StreamTail {
  private text = '';
  private received = 0;

  constructor(private readonly keep: number) {}

  push(chunk: string): void {
    this.received += chunk.length;
    this.text += chunk;
    // Trim in batches, not on every chunk.
    if (this.text.length > 2 * this.keep) this.text = this.text.slice(-this.keep);
  }

  /** The kept end, and whether anything before it was dropped. */
  end(): { text: string; total: number; cut: boolean } {
    const text = this.text.slice(-this.keep);
    return { text, total: this.received, cut: text.length < this.received };
  }
}

type Segment = { text: string } | { redacted: true };

const segmentLength = (s: Segment) => ('text' in s ? s.text.length : REDACTED.length);

/**
 * The text as plain and redacted segments. When the text is the end of a longer stream, a secret may have been cut
 * in two where it begins, leaving its tail unmatched: as many characters as that tail could have are dropped.
 */
function redactedSegments(text: string, secrets: readonly string[], cutBefore: boolean): Segment[] {
  const ranges: [number, number][] = [];
  for (const secret of secrets) {
    for (let at = text.indexOf(secret); at !== -1; at = text.indexOf(secret, at + 1)) {
      ranges.push([at, at + secret.length]);
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [from, to] of ranges) {
    const last = merged[merged.length - 1];
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  const longest = Math.max(0, ...secrets.map((s) => s.length));
  let start = cutBefore ? Math.min(text.length, Math.max(0, longest - 1)) : 0;
  for (const [from, to] of merged) if (from < start && to > start) start = to;

  const segments: Segment[] = [];
  let at = start;
  for (const [from, to] of merged) {
    if (to <= start) continue;
    if (from > at) segments.push({ text: text.slice(at, from) });
    segments.push({ redacted: true });
    at = to;
  }
  if (at < text.length) segments.push({ text: text.slice(at) });
  return segments;
}

/** Leading and trailing whitespace off the plain text at either end. */
function trim(segments: Segment[]): Segment[] {
  const out = [...segments];
  const first = out[0];
  if (first && 'text' in first) out[0] = { text: first.text.trimStart() };
  const last = out[out.length - 1];
  if (last && 'text' in last) out[out.length - 1] = { text: last.text.trimEnd() };
  return out.filter((s) => segmentLength(s) > 0);
}

/**
 * stdout, then stderr (each trimmed, empty ones left out), redacted of `secrets`, at most `limit` characters from the
 * end; a marker is never cut in two. When anything was left out, a first line says so.
 */
export function hookOutput(
  streams: { text: string; total: number; cut: boolean }[],
  secrets: readonly string[],
  limit: number,
): string {
  const known = secrets.filter((s) => s.length > 0);
  const parts = streams
    .map((s) => trim(redactedSegments(s.text, known, s.cut)))
    .filter((segments) => segments.length > 0);
  const all = parts.flatMap((segments, i) => (i === 0 ? segments : [{ text: '\n' }, ...segments]));

  const kept: string[] = [];
  let room = limit;
  let cut = streams.some((s) => s.cut);
  for (let i = all.length - 1; i >= 0; i--) {
    const segment = all[i]!;
    const length = segmentLength(segment);
    if (length <= room) {
      kept.unshift('text' in segment ? segment.text : REDACTED);
      room -= length;
      continue;
    }
    if ('text' in segment && room > 0) kept.unshift(segment.text.slice(-room));
    cut = true;
    break;
  }
  const shown = kept.join('');
  if (!cut) return shown;
  const printed = streams.reduce((sum, s) => sum + s.total, 0);
  return `[output cut: the command printed ${printed} characters; the last ${shown.length} follow]\n${shown}`;
}
