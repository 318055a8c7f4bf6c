// What every benchmark needs: progress lines on stderr, rounding, the machine it ran on, pg sessions of its own, server logs.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { Client } from 'pg';

export const progress = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
};

export const round = (value: number, digits = 3): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

export const mib = (bytes: number): number => round(bytes / 1_048_576, 1);

/** The machine, and its 1-minute load average when the benchmark started and ended (other work skews timings). */
export function machine(loadAtStart: number): Record<string, unknown> {
  return {
    cpus: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    loadAverage1m: { start: round(loadAtStart, 2), end: round(loadavg()[0]!, 2) },
  };
}

/**
 * A pg Client for the benchmark's own sessions. A session the server ends (the cluster stopping, DROP DATABASE …
 * FORCE at cleanup) fails its pending query; without this listener it would also crash the process.
 */
export function benchClient(url: string, applicationName: string): Client {
  const client = new Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  return client;
}

/** The last lines of a server's log on stderr, to show why it failed; nothing when there is no log. */
export function tailLog(logFile: string, server: string): void {
  if (!existsSync(logFile)) return;
  const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15);
  if (lines.length > 0) progress(`last lines of the ${server} log:\n${lines.join('\n')}`);
}
