// `npm run bench -- <name> [options]` runs one benchmark in bench/; with no name, every one. Each prints one JSON line.
import { accessBench, ACCESS_USAGE } from './access';
import { backfillBench } from './backfill';
import { BACKFILL_USAGE } from './backfillPlan';
import { BenchUsageError } from './options';
import { webhooksBench } from './webhooks';
import { WEBHOOKS_USAGE } from './webhooksOptions';

interface Bench {
  run(argv: string[]): Promise<unknown>;
  usage: string;
}

const BENCHES: Record<string, Bench> = {
  access: { run: accessBench, usage: ACCESS_USAGE },
  backfill: { run: backfillBench, usage: BACKFILL_USAGE },
  webhooks: { run: webhooksBench, usage: WEBHOOKS_USAGE },
};

function usage(): string {
  return [
    'usage: npm run bench -- [<name>] [options]   (no name: every benchmark, with the options given)',
    `benchmarks: ${Object.keys(BENCHES).join(', ')}`,
    ...Object.values(BENCHES).map((bench) => `  ${bench.usage}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    process.stdout.write(`${usage()}\n`);
    return 0;
  }
  let names: string[];
  let options: string[];
  if (first === undefined || first.startsWith('--')) {
    names = Object.keys(BENCHES);
    options = argv;
  } else if (Object.hasOwn(BENCHES, first)) {
    names = [first];
    options = rest;
  } else {
    process.stderr.write(`unknown benchmark "${first}"\n${usage()}\n`);
    return 2;
  }
  for (const name of names) {
    try {
      await BENCHES[name]!.run(options);
    } catch (err) {
      if (err instanceof BenchUsageError) {
        process.stderr.write(`${name}: ${err.message}\n${usage()}\n`);
        return 2;
      }
      process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      return 1;
    }
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exitCode = 1;
  },
);
