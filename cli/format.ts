// How several commands print instants, deadlines, time windows and counts for a person to read.
import { formatDuration } from '../domain/dunning';

/** "2026-01-07 12:00:00Z": an ISO-8601 UTC instant without its T and fraction. */
export function shortTime(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** "2026-01-07 12:00:00Z (in 7 days)". */
export function when(iso: string, now: number): string {
  const ms = Date.parse(iso) - now;
  const relative =
    Math.abs(ms) < 60_000 ? 'now' : ms > 0 ? `in ${formatDuration(ms)}` : `${formatDuration(-ms)} ago`;
  return `${shortTime(iso)} (${relative})`;
}

/** "2026-10-05 00:00Z", "2026-10-05 00:36:33Z": an instant as an operator reads it, to the second; "-" for none. */
export function compactTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')
    .replace(/(\d\d:\d\d):00Z$/, '$1Z');
}

/** "2026-10-05 00:00Z .. 2026-10-05 03:00Z". */
export function windowText(from: string, to: string): string {
  return `${compactTime(from)} .. ${compactTime(to)}`;
}

/** "1 tenant", "2 tenants". */
export function count(n: number, noun: string, plural = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
