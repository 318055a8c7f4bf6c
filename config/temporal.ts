// The Temporal settings: which cluster and namespace (or the embedded dev server and its ports), and its credentials.
import { z } from 'zod';
import { isPort, port, secret, type ConfigProblem, type Env } from './variables';

export interface TemporalSettings {
  /** host:port; absent means the embedded dev server. */
  address?: string;
  namespace: string;
  apiKey?: string;
  tls?: { certPath: string; keyPath: string };
}

const temporalSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .refine(
      (v) =>
        /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.test(v) &&
        isPort(v.slice(v.lastIndexOf(':') + 1)),
      {
        message:
          'must be host:port without a scheme, e.g. temporal.example.com:7233 (unset it for the embedded dev server)',
      },
    )
    .optional(),
  TEMPORAL_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a namespace name (letters, digits, ".", "-", "_")')
    .default('default'),
  TEMPORAL_API_KEY: secret(null, 'a Temporal Cloud API key'),
  TEMPORAL_TLS_CERT: z.string().optional(),
  TEMPORAL_TLS_KEY: z.string().optional(),
});

/** The variables naming the cluster, in the order their problems are listed. */
export const temporalVariables = temporalSchema.shape;

/** Ports of the Temporal dev server `npm start` runs when TEMPORAL_ADDRESS is unset. */
export const embeddedTemporalVariables = {
  TEMPORAL_UI_PORT: port(8233),
  TEMPORAL_PORT: port(7233),
};

/** TLS comes as a pair, and credentials need an address: checked on the raw values. */
export function temporalProblems(set: Env): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const cert = set.TEMPORAL_TLS_CERT;
  const key = set.TEMPORAL_TLS_KEY;
  if (cert !== undefined && key === undefined) {
    problems.push({
      variable: 'TEMPORAL_TLS_KEY',
      problem: 'must be set when TEMPORAL_TLS_CERT is (both or neither)',
    });
  }
  if (key !== undefined && cert === undefined) {
    problems.push({
      variable: 'TEMPORAL_TLS_CERT',
      problem: 'must be set when TEMPORAL_TLS_KEY is (both or neither)',
    });
  }
  if (set.TEMPORAL_ADDRESS === undefined) {
    // Credentials without an address would silently run on the embedded dev server instead of the intended cluster.
    for (const name of ['TEMPORAL_API_KEY', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY'] as const) {
      if (set[name] !== undefined) {
        problems.push({
          variable: name,
          problem: 'needs TEMPORAL_ADDRESS; the embedded dev server takes no credentials',
        });
      }
    }
  }
  return problems;
}

export function temporalSettings(env: z.output<typeof temporalSchema>): TemporalSettings {
  const { TEMPORAL_TLS_CERT: certPath, TEMPORAL_TLS_KEY: keyPath } = env;
  return {
    address: env.TEMPORAL_ADDRESS,
    namespace: env.TEMPORAL_NAMESPACE,
    apiKey: env.TEMPORAL_API_KEY,
    tls: certPath !== undefined && keyPath !== undefined ? { certPath, keyPath } : undefined,
  };
}
