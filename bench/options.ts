// A benchmark's command-line options: whole numbers within a range, and the error a bad one raises.

/** A bad option or benchmark name: the dispatcher prints it and exits 2. */
export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

export interface OptionSpec {
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value, if any. */
  max?: number;
  default: number;
}

/** Parses `--name N` / `--name=N` whole-number options (underscores allowed: 10_000_000); anything else is refused. */
export function parseNumberOptions<K extends string>(
  argv: string[],
  specs: Record<K, OptionSpec>,
): Record<K, number> {
  const values = Object.fromEntries(
    Object.entries<OptionSpec>(specs).map(([k, s]) => [k, s.default]),
  ) as Record<K, number>;
  const known = Object.keys(specs).join(', --');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new BenchUsageError(`unexpected argument "${arg}" (options: --${known})`);
    const name = match[1]! as K;
    if (!(name in specs)) throw new BenchUsageError(`unknown option --${name} (options: --${known})`);
    const raw = match[2] ?? argv[++i];
    const value = raw === undefined ? NaN : Number(raw.replace(/_/g, ''));
    const { min, max } = specs[name];
    if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
      const range = max === undefined ? `at least ${min}` : `from ${min} to ${max}`;
      throw new BenchUsageError(`--${name} needs a whole number ${range}, not ${raw ?? 'nothing'}`);
    }
    values[name] = value;
  }
  return values;
}
