// The operator CLI `billops`: a table of commands, each a function in cli/, and the exit codes of DESIGN.md.
import { commands, type Command } from './commandTable';
import { UsageError } from './common';

const usage = [
  'usage: billops <command> [options]',
  '',
  'commands:',
  ...commands.flatMap((c) => [...c.synopsis.map((line) => `  ${line}`), `      ${c.summary}`]),
  '  help',
  '',
  'FILTER is a Temporal visibility filter over TenantId, BillingTier, DunningPhase, PaymentProcessor,',
  `e.g. "PaymentProcessor = 'stripe' AND DunningPhase IN ('grace', 'warning')".`,
  'The operator is --operator, else BILLOPS_OPERATOR, else your OS user name.',
  'Temporal: TEMPORAL_ADDRESS (default 127.0.0.1:7233, where `npm start` listens), TEMPORAL_NAMESPACE,',
  'TEMPORAL_API_KEY or TEMPORAL_TLS_CERT/_KEY, BILLOPS_TASK_QUEUE. Database: DATABASE_URL.',
  '',
  'exit codes: 0 done, 1 not found or refused, 2 bad arguments or configuration',
].join('\n');

function commandUsage(command: Command): string {
  return command.synopsis.map((line, i) => `${i === 0 ? 'usage:' : '      '} billops ${line}`).join('\n');
}

/** The command whose name is the longest run of leading words, e.g. `dunning start` before a `dunning`. */
function findCommand(argv: string[]): { command: Command; args: string[] } | undefined {
  for (const words of [2, 1]) {
    const command = commands.find((c) => c.name === argv.slice(0, words).join(' '));
    if (command) return { command, args: argv.slice(words) };
  }
  return undefined;
}

function isUsageError(err: Error): boolean {
  return (
    err instanceof UsageError ||
    Boolean((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) ||
    err.name === 'ZodError' ||
    err.name === 'TenantInputError'
  );
}

async function main(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined || ['help', '--help', '-h'].includes(first)) {
    console.log(usage);
    return first === undefined ? 2 : 0;
  }
  const found = findCommand(argv);
  if (!found) {
    console.error(`billops: unknown command: ${argv.join(' ')}\n\n${usage}`);
    return 2;
  }
  const { command, args } = found;
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`${commandUsage(command)}\n\n${command.summary}`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    // One line, no stack trace: refusals, not-found and unreachable servers are the operator's to act on.
    console.error(`billops: ${error.message}`);
    if (isUsageError(error)) {
      console.error(`\n${commandUsage(command)}\n(billops help lists every command)`);
      return 2;
    }
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`billops: ${err.message}`);
    process.exit(1);
  },
);
