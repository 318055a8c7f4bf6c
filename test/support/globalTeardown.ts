// Stops what globalSetup started.
import { rmSync } from 'node:fs';
import type { TestRuntime } from './testRuntime';

export default async function globalTeardown(): Promise<void> {
  const runtime = (globalThis as { billopsTestRuntime?: TestRuntime }).billopsTestRuntime;
  if (!runtime) return;
  await runtime.closeMail?.();
  await runtime.supervisor.stopAll();
  if (!process.env.BILLOPS_KEEP_TEST_DIR) rmSync(runtime.workDir, { recursive: true, force: true });
}
