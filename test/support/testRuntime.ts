// What globalSetup hands the suites: the addresses of the shared servers, read through one loud accessor.
import { readFileSync } from 'node:fs';
import type { ChildSupervisor } from '../../runtime/processes';

export const TEST_ENV = {
  databaseUrl: 'BILLOPS_TEST_DATABASE_URL',
  adminDatabaseUrl: 'BILLOPS_TEST_ADMIN_DATABASE_URL',
  temporalAddress: 'BILLOPS_TEST_TEMPORAL_ADDRESS',
  smtpUrl: 'BILLOPS_TEST_SMTP_URL',
  mailDir: 'BILLOPS_TEST_MAIL_DIR',
  workflowBundle: 'BILLOPS_TEST_WORKFLOW_BUNDLE',
  testServer: 'TEMPORAL_TEST_SERVER_PATH',
  stripeApiBase: 'BILLOPS_TEST_STRIPE_API_BASE',
} as const;

export interface TestRuntime {
  supervisor: ChildSupervisor;
  workDir: string;
  closeMail?: () => Promise<void>;
}

/** A shared server's address; a suite run without globalSetup fails here instead of skipping. */
export function testEnv(key: keyof typeof TEST_ENV): string {
  const value = process.env[TEST_ENV[key]];
  if (!value)
    throw new Error(
      `${TEST_ENV[key]} is not set: run the suites with \`npm test\`, whose globalSetup starts the servers.`,
    );
  return value;
}

/** The workflow bundle built once per run by globalSetup. */
export function workflowBundle(): { code: string } {
  return { code: readFileSync(testEnv('workflowBundle'), 'utf8') };
}
