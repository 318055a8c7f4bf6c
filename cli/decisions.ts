// `billops decisions export`: DECISIONS.log written from the decisions table, the record every worker host shares.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { listDecisionLines } from '../db/decisions';
import { decisionDayStart, decisionsLogText } from '../domain/decisions';
import { RefusedError, UsageError, withDatabase } from './common';

/** Every decision at or after --since (a UTC day), ordered by time, to stdout or to the --out file. */
export async function decisionsExport(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { since: { type: 'string' }, out: { type: 'string' } },
  });
  if (positionals[0] !== undefined) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  const since = values.since === undefined ? undefined : sinceDay(values.since);
  if (values.out !== undefined && values.out.trim() === '') throw new UsageError('--out must name a file');

  const lines = await withDatabase((pool) => listDecisionLines(pool, { since }));
  const text = decisionsLogText(lines);
  if (values.out === undefined) {
    process.stdout.write(text);
    return 0;
  }
  await replaceFile(values.out, text);
  console.log(`wrote ${lines.length} ${lines.length === 1 ? 'decision' : 'decisions'} to ${values.out}`);
  return 0;
}

function sinceDay(value: string): Date {
  const start = decisionDayStart(value.trim());
  if (!start) {
    throw new UsageError(
      `--since must be a date YYYY-MM-DD (got ${JSON.stringify(value)}); it keeps the decisions from that UTC day on`,
    );
  }
  return start;
}

/** The whole file or nothing: written beside it, then renamed over it, so a reader never sees half a log. */
async function replaceFile(path: string, text: string): Promise<void> {
  const partial = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(partial, text, 'utf8');
    await rename(partial, path);
  } catch (err) {
    await rm(partial, { force: true }).catch(() => undefined);
    throw new RefusedError(`cannot write ${path}: ${(err as Error).message}; choose another --out file`);
  }
}
