// Bulk loader for usage events: streams an NDJSON or CSV file in batches through the same ingestion as POST /usage/events.
import { existsSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { authenticateApiKey, LOCAL_API_KEY_FILE } from '../db/apiKeys';
import { ingestUsageEvents, type Queryable, type UsageProducer } from '../db/usage';
import { MAX_BATCH_EVENTS } from '../domain/usageEvents';
import { cliConfig, positiveWholeNumber, RefusedError, UsageError, withDatabase } from './common';

export type UsageFileFormat = 'ndjson' | 'csv';

/** The CSV header; columns may come in any order, further columns are ignored. */
export const CSV_COLUMNS = ['tenant_id', 'meter', 'quantity', 'timestamp', 'idempotency_key'] as const;

export const DEFAULT_LOAD_BATCH_SIZE = 500;

/** A file the loader cannot read as usage events at all (as opposed to single bad lines). */
export class UsageFileError extends Error {
  override name = 'UsageFileError';
}

export interface LineRejection {
  /** 1-based line number in the file. */
  line: number;
  reason: string;
}

export interface UsageLoadCounts {
  linesRead: number;
  /** Lines offered as events: every line read but blank ones and the CSV header. */
  events: number;
  accepted: number;
  duplicates: number;
  rejected: number;
}

export interface UsageLoadProgress extends UsageLoadCounts {
  /** The lines refused in the batch just loaded. */
  batchRejections: LineRejection[];
}

export interface UsageLoadSummary extends UsageLoadCounts {
  file: string;
  format: UsageFileFormat;
  rejections: LineRejection[];
}

export interface UsageLoadOptions {
  /** The producer's API key (scope usage:write): its id scopes the idempotency keys, its tenants bound the file. */
  apiKey: string;
  /** Events per ingestion call, at most MAX_BATCH_EVENTS. */
  batchSize?: number;
  onProgress?: (progress: UsageLoadProgress) => void;
  /** By default from the extension (.csv; .ndjson, .jsonl), else from the first line. */
  format?: UsageFileFormat;
  maxFutureSkewMs?: number;
}

/** The fields of one CSV line (RFC 4180 quoting within the line), or undefined when a quote is left open. */
export function splitCsvLine(line: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= line.length) return undefined;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += line[i];
        i++;
      }
      const comma = line.indexOf(',', i);
      const rest = (comma === -1 ? line.slice(i) : line.slice(i, comma)).trim();
      if (rest !== '') return undefined;
      fields.push(value);
      if (comma === -1) return fields;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      fields.push((comma === -1 ? line.slice(i) : line.slice(i, comma)).trim());
      if (comma === -1) return fields;
      i = comma + 1;
    }
  }
}

function formatFromName(path: string): UsageFileFormat | undefined {
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
  return undefined;
}

/** Column positions from the header line; a header without every column refuses the whole file. */
function csvColumns(headerLine: string): Map<string, number> {
  const names = (splitCsvLine(headerLine) ?? []).map((n) => n.trim().toLowerCase());
  const missing = CSV_COLUMNS.filter((c) => !names.includes(c));
  if (missing.length > 0) {
    throw new UsageFileError(
      `the CSV header must name ${CSV_COLUMNS.join(',')}; missing ${missing.join(', ')} (line 1: ${JSON.stringify(headerLine)})`,
    );
  }
  return new Map(CSV_COLUMNS.map((c) => [c, names.indexOf(c)]));
}

function parseNdjsonLine(line: string): { item: unknown } | { reason: string } {
  try {
    return { item: JSON.parse(line) };
  } catch (err) {
    return { reason: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function parseCsvLine(line: string, columns: Map<string, number>): { item: unknown } | { reason: string } {
  const fields = splitCsvLine(line);
  if (!fields) return { reason: 'a quoted field is not closed on this line' };
  if (fields.length < columns.size) {
    return { reason: `has ${fields.length} fields; the header names ${columns.size}` };
  }
  const item: Record<string, string | undefined> = {};
  for (const [name, position] of columns) item[name] = fields[position];
  return { item };
}

/**
 * Loads a usage file through ingestUsageEvents, batch by batch. Safe to re-run after a failure or on a grown file:
 * events already recorded come back as duplicates, so a re-run simply resumes.
 */
export async function loadUsageFile(
  db: Queryable,
  path: string,
  opts: UsageLoadOptions,
): Promise<UsageLoadSummary> {
  const batchSize = opts.batchSize ?? DEFAULT_LOAD_BATCH_SIZE;
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0 || batchSize > MAX_BATCH_EVENTS) {
    throw new UsageFileError(
      `batch size must be a whole number from 1 to ${MAX_BATCH_EVENTS} (got ${batchSize})`,
    );
  }
  const producer = await producerOf(db, opts.apiKey);
  let format = opts.format ?? formatFromName(path);
  let columns: Map<string, number> | undefined;
  const summary: UsageLoadSummary = {
    file: path,
    format: format ?? 'ndjson',
    linesRead: 0,
    events: 0,
    accepted: 0,
    duplicates: 0,
    rejected: 0,
    rejections: [],
  };
  let batch: { line: number; item: unknown }[] = [];
  let batchRejections: LineRejection[] = [];

  const flush = async () => {
    if (batch.length === 0 && batchRejections.length === 0) return;
    const result =
      batch.length > 0
        ? await ingestUsageEvents(
            db,
            batch.map((b) => b.item),
            { producer, maxFutureSkewMs: opts.maxFutureSkewMs },
          )
        : undefined;
    for (const r of result?.results ?? []) {
      if (r.status === 'rejected') {
        batchRejections.push({ line: batch[r.index]?.line ?? 0, reason: r.reason ?? 'rejected' });
      }
    }
    batchRejections.sort((a, b) => a.line - b.line);
    summary.accepted += result?.accepted ?? 0;
    summary.duplicates += result?.duplicates ?? 0;
    summary.rejected += batchRejections.length;
    summary.rejections.push(...batchRejections);
    const { file: _file, format: _format, rejections: _all, ...counts } = summary;
    opts.onProgress?.({ ...counts, batchRejections });
    batch = [];
    batchRejections = [];
  };

  const handle = await open(path, 'r');
  const lines = createInterface({
    input: handle.createReadStream({ encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  try {
    for await (const raw of lines) {
      summary.linesRead += 1;
      const lineNo = summary.linesRead;
      const line = (lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw).trim();
      if (line === '') continue;
      // Neither option nor extension said: a JSON object on the first line means NDJSON, anything else a CSV header.
      format ??= line.startsWith('{') ? 'ndjson' : 'csv';
      summary.format = format;
      if (format === 'csv' && !columns) {
        columns = csvColumns(line);
        continue;
      }
      summary.events += 1;
      const parsed = columns ? parseCsvLine(line, columns) : parseNdjsonLine(line);
      if ('reason' in parsed) batchRejections.push({ line: lineNo, reason: parsed.reason });
      else batch.push({ line: lineNo, item: parsed.item });
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  } finally {
    lines.close();
    await handle.close();
  }
  return summary;
}

/** The same checks as the ingress: a known, unrevoked key with scope usage:write. */
async function producerOf(db: Queryable, apiKey: string): Promise<UsageProducer> {
  const check = await authenticateApiKey(db, apiKey.trim());
  if (!check.ok) {
    const why = check.problem === 'revoked' ? 'has been revoked' : 'is not a billops API key';
    throw new RefusedError(`the API key ${why}: use one from billops keys create --scope usage:write`);
  }
  if (!check.key.scopes.includes('usage:write')) {
    throw new RefusedError(`API key ${check.key.id} lacks scope usage:write: use a key with it`);
  }
  return { keyId: check.key.id, tenants: check.key.tenants };
}

/** BILLOPS_API_KEY, else the key `npm start` keeps under its data directory. */
function loaderApiKey(): string {
  const fromEnv = process.env.BILLOPS_API_KEY?.trim();
  if (fromEnv) return fromEnv;
  const file = resolve(__dirname, '..', cliConfig().dataDir, LOCAL_API_KEY_FILE);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  throw new UsageError(
    `no API key: set BILLOPS_API_KEY to a key with scope usage:write (billops keys create --scope usage:write), ` +
      `or run npm start, which keeps one in ${file}`,
  );
}

const USAGE = 'usage: tsx cli/usageLoader.ts <file> [--batch-size N] [--format ndjson|csv] [--json]';

/** `tsx cli/usageLoader.ts <file>`: progress on stderr, the summary on stdout; exit 1 when any line was refused. */
export async function main(args: string[] = process.argv.slice(2)): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        'batch-size': { type: 'string' },
        format: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
    const [file, extra] = positionals;
    if (file === undefined) throw new UsageError('the file to load is required');
    if (extra !== undefined) throw new UsageError(`unexpected argument: ${extra}`);
    const format = values.format;
    if (format !== undefined && format !== 'ndjson' && format !== 'csv') {
      throw new UsageError(`--format must be ndjson or csv (got ${JSON.stringify(format)})`);
    }
    const batchSize =
      values['batch-size'] === undefined
        ? undefined
        : positiveWholeNumber(values['batch-size'], '--batch-size');
    const apiKey = loaderApiKey();
    const summary = await withDatabase((pool) =>
      loadUsageFile(pool, file, {
        apiKey,
        batchSize,
        format,
        onProgress: (p) => {
          for (const r of p.batchRejections) process.stderr.write(`line ${r.line}: ${r.reason}\n`);
          process.stderr.write(
            `${p.linesRead} lines read: ${p.accepted} accepted, ${p.duplicates} duplicates, ${p.rejected} rejected\n`,
          );
        },
      }),
    );
    if (values.json) console.log(JSON.stringify(summary, null, 2));
    else {
      console.log(
        `${summary.file} (${summary.format}): ${summary.linesRead} lines, ${summary.events} events: ` +
          `${summary.accepted} accepted, ${summary.duplicates} duplicates, ${summary.rejected} rejected`,
      );
    }
    return summary.rejected > 0 ? 1 : 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
    const badArguments =
      err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
    console.error(`billops usage loader: ${message}`);
    if (badArguments) console.error(USAGE);
    // DESIGN.md exit codes: 2 for bad arguments, 1 for a file that is missing or refused.
    return badArguments ? 2 : 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
