// How one environment variable is read: ports, URLs and secrets, each with the hint a wrong value is reported with.
import { z } from 'zod';

/** The environment as given: unset (absent or empty) variables are undefined. */
export type Env = Record<string, string | undefined>;

export interface ConfigProblem {
  /** The environment variable, e.g. INGRESS_PORT. */
  variable: string;
  /** Why it is wrong; never the value of a secret. */
  problem: string;
}

const PORT_RE = /^\d{1,5}$/;
export const isPort = (v: string) => PORT_RE.test(v) && Number(v) >= 1 && Number(v) <= 65535;
export const isUrlWith = (protocols: string[]) => (v: string) => {
  try {
    const url = new URL(v);
    return protocols.includes(url.protocol) && url.hostname !== '';
  } catch {
    return false;
  }
};

export const port = (fallback: number) =>
  z
    .string()
    .refine(isPort, 'must be a whole number from 1 to 65535')
    .transform(Number)
    .optional()
    .transform((p) => p ?? fallback);
export const secret = (prefix: string | null, what: string) =>
  (prefix === null ? z.string() : z.string().startsWith(prefix, `must start with ${prefix} (${what})`))
    .refine((v) => v === v.trim(), 'has leading or trailing whitespace; remove it from the value')
    .optional();
export const url = (protocols: string[], hint: string) => z.string().refine(isUrlWith(protocols), hint);
