// Loads configuration and policy at process start, exiting with code 2 and one clear message when either is wrong.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatConfigProblems, parseConfig, type BillopsConfig } from './env';
import { parsePolicy, PolicyError, type Policy } from '../domain/policy';

/** Exit code for bad configuration, as for bad CLI arguments (DESIGN.md, "Operator CLI"). */
export const CONFIG_EXIT_CODE = 2;

export function loadConfig(env: Record<string, string | undefined> = process.env): BillopsConfig {
  const result = parseConfig(env);
  if (!result.ok) return fail(formatConfigProblems(result.problems));
  return result.config;
}

/** The runbook defaults, overridden by the JSON file BILLOPS_POLICY_FILE names. */
export function loadPolicyForConfig(config: BillopsConfig): Policy {
  if (config.policyFile === undefined) return parsePolicy({});
  const file = resolve(config.policyFile);
  const where = `BILLOPS_POLICY_FILE=${file}`;
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`billops: cannot read the policy file (${where}): ${describeReadError(err)}`);
  }
  let input: unknown;
  try {
    input = JSON.parse(raw);
  } catch (err) {
    return fail(
      `billops: the policy file is not valid JSON (${where}): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  try {
    return parsePolicy(input);
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    return fail(
      [
        `billops: the policy file is invalid (${where}), ${err.issues.length} ${err.issues.length === 1 ? 'problem' : 'problems'}:`,
        ...err.issues.map((issue) => `  - ${issue.path}: ${issue.message}`),
        'Fix these settings (any setting left out keeps its runbook default) and start again.',
      ].join('\n'),
    );
  }
}

function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return err instanceof Error ? err.message : String(err);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  return process.exit(CONFIG_EXIT_CODE);
}
