// Benchmark: signed Stripe invoice.payment_failed deliveries through the HTTP ingress against bare signalWithStart calls on the same Temporal dev server.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { ChildSupervisor, freePort } from '../runtime/processes';
import { startTemporalDevServer } from '../runtime/temporalDevServer';
import { MissingToolError, findTemporalCli } from '../runtime/tools';
import { ensureSearchAttributes } from '../temporal/searchAttributes';
import { cpuList, pinProcess } from './cpus';
import { openScratchDatabase } from './scratchDatabase';
import { machine, progress, round, tailLog } from './support';
import { measure } from './webhooksMeasure';
import { ALLOWED_CPUS, GOALS, NAMESPACE, placeCpus, readOptions } from './webhooksOptions';

/** Runs the benchmark and prints its JSON line on stdout; progress goes to stderr. */
export async function webhooksBench(argv: string[]): Promise<Record<string, unknown>> {
  const opts = readOptions(argv);
  const placement = placeCpus(opts['temporal-cpus'], ALLOWED_CPUS);
  const cliPath = findTemporalCli();
  if (!cliPath) {
    throw new MissingToolError(
      'The Temporal CLI (dev server)',
      'Run `bash scripts/provision.sh temporal` (it installs .tools/bin/temporal), or set TEMPORAL_CLI_PATH.',
    );
  }
  const started = Date.now();
  const loadAtStart = loadavg()[0]!;
  const workDir = mkdtempSync(join(tmpdir(), 'billops-bench-webhooks-'));
  const supervisor = new ChildSupervisor();
  // Ctrl-C: openScratchDatabase's handler cleans the database up, then exits; this stops the dev server with it.
  const onExit = () => {
    supervisor.killAllNow();
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  const temporalLog = join(workDir, 'temporal.log');
  let failed = false;
  // Before anything starts: the private cluster's processes inherit this process's CPUs.
  if (placement) {
    pinProcess(process.pid, placement.others);
    progress(
      `CPUs: the dev server alone on ${cpuList(placement.temporal)}; this process and the private cluster on ` +
        cpuList(placement.others),
    );
  }
  // Started side by side; each is stopped whatever happens to the other.
  const [database, devServer] = await Promise.allSettled([
    openScratchDatabase('billops_bench_webhooks'),
    (async () => {
      progress(`starting a private Temporal dev server (${cliPath}), in memory, headless`);
      return startTemporalDevServer(supervisor, {
        cliPath,
        port: await freePort(),
        logFile: temporalLog,
        namespace: NAMESPACE,
        ...(placement ? { cpus: cpuList(placement.temporal) } : {}),
      });
    })(),
  ]);
  try {
    if (database.status === 'rejected') throw database.reason;
    if (devServer.status === 'rejected') throw devServer.reason;
    const connection = await Connection.connect({ address: devServer.value.address });
    try {
      await ensureSearchAttributes(connection, NAMESPACE);
      const temporalPid = devServer.value.child.process.pid!;
      const groups: Record<string, number[]> = placement
        ? { temporalCpus: placement.temporal, otherCpus: placement.others }
        : { allCpus: ALLOWED_CPUS };
      const result = await measure(database.value, connection, temporalPid, groups, opts);
      const line = {
        bench: 'webhooks',
        ...result,
        goals: GOALS,
        temporal: { server: temporalVersion(cliPath), mode: 'dev server, in memory, no worker' },
        cpus: placement
          ? {
              temporalCpus: cpuList(placement.temporal),
              otherCpus: cpuList(placement.others),
              placement:
                'the dev server alone on temporalCpus; the load, the ingress and the private cluster on otherCpus',
            }
          : { allCpus: cpuList(ALLOWED_CPUS), placement: 'shared: every process on every CPU' },
        database: { where: database.value.description, postgres: database.value.serverVersion },
        machine: machine(loadAtStart),
        totalSeconds: round((Date.now() - started) / 1000, 1),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      return line;
    } finally {
      await connection.close();
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await supervisor.stopAll();
    if (failed) tailLog(temporalLog, 'the Temporal dev server');
    process.removeListener('exit', onExit);
    rmSync(workDir, { recursive: true, force: true });
    if (database.status === 'fulfilled') await database.value.close();
    if (placement) {
      // Back on every CPU for whatever runs next in this process (`npm run bench` runs every benchmark in turn).
      try {
        pinProcess(process.pid, ALLOWED_CPUS);
      } catch (err) {
        progress(
          `could not put this process back on CPUs ${cpuList(ALLOWED_CPUS)}: ${(err as Error).message}`,
        );
      }
    }
  }
}

function temporalVersion(cliPath: string): string {
  const out = spawnSync(cliPath, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return out.trim().replace(/^temporal version /, 'temporal CLI ');
}

if (require.main === module) {
  webhooksBench(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
