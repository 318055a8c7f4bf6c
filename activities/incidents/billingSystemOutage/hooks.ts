// Seed 000 §3 "Scale up billing service replicas" and "Manual failover to backup region": configurable hooks. An
// http(s) URL receives a POST of {incident, action}; anything else runs as a shell command, contained (hookProcess.ts):
// only its documented variables, its output redacted of every configured secret and capped, its process group killed
// on timeout. One run at a time per incident and hook (hookRuns.ts). The hook's own text never appears in a result.
import axios from 'axios';
import type { Pool } from 'pg';
import { ApplicationFailure } from '@temporalio/activity';
import { runContained } from './hookProcess';
import { createHookRuns } from './hookRuns';

export type OutageHookAction = 'scale_up' | 'failover';

export interface OutageHookRequest {
  action: OutageHookAction;
  /** Workflow id + step: sent along (header and environment) so the hook can refuse a repeat. */
  idempotencyKey: string;
  incident: { workflowId: string; kind: string; severity: string; summary: string };
  timeoutSeconds: number;
}

export interface OutageHookResult {
  action: OutageHookAction;
  via: 'webhook' | 'command';
  ok: boolean;
  /** One line for the incident timeline. */
  detail: string;
  httpStatus?: number;
  exitCode?: number | null;
  /**
   * The end of what the command printed (stdout, then stderr), at most HOOK_OUTPUT_LIMIT characters, with every
   * configured secret and the hook's own text as "[redacted]"; a first line says when it was cut.
   */
  output?: string;
}

/** Characters of a command's output kept in its result. */
export const HOOK_OUTPUT_LIMIT = 4_096;

/** The worker's variables a command hook gets (what a process needs to run), besides its own BILLOPS_* ones. */
export const HOOK_INHERITED_VARIABLES = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'TMPDIR',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
] as const;

// Past the hook's own timeout: how long a run's claim outlives a worker that went away mid-run.
const LEASE_MARGIN_SECONDS = 60;

export interface OutageHookDependencies {
  pool: Pool;
  scaleUpHook?: string;
  failoverHook?: string;
  /** Every configured secret's value (workers/dependencies.ts): redacted from what a command prints. */
  secrets?: readonly string[];
}

/** The documented variables and the inherited ones; nothing else of the worker's environment. */
function hookEnvironment(req: OutageHookRequest): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of HOOK_INHERITED_VARIABLES) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    ...env,
    BILLOPS_HOOK_ACTION: req.action,
    BILLOPS_INCIDENT_ID: req.incident.workflowId,
    BILLOPS_INCIDENT_KIND: req.incident.kind,
    BILLOPS_INCIDENT_SEVERITY: req.incident.severity,
    BILLOPS_IDEMPOTENCY_KEY: req.idempotencyKey,
  };
}

export function createOutageHookActivities(deps: OutageHookDependencies) {
  const runs = createHookRuns(deps.pool);
  const hookFor = (action: OutageHookAction) =>
    action === 'scale_up' ? deps.scaleUpHook : deps.failoverHook;

  async function post(url: string, req: OutageHookRequest): Promise<OutageHookResult> {
    let res;
    try {
      res = await axios.post(
        url,
        { incident: req.incident, action: req.action, idempotency_key: req.idempotencyKey },
        {
          timeout: req.timeoutSeconds * 1000,
          validateStatus: () => true,
          maxRedirects: 0,
          headers: { 'Content-Type': 'application/json', 'Idempotency-Key': req.idempotencyKey },
        },
      );
    } catch (err) {
      // Network trouble: retried (with the same key) up to the workflow's attempts.
      throw new Error(
        `the ${req.action} webhook ${originOf(url)} did not answer: ${(err as { code?: string }).code ?? 'network error'}`,
      );
    }
    if (res.status >= 500 || res.status === 429) {
      throw new Error(`the ${req.action} webhook ${originOf(url)} answered HTTP ${res.status}; retrying`);
    }
    const ok = res.status >= 200 && res.status < 300;
    return {
      action: req.action,
      via: 'webhook',
      ok,
      httpStatus: res.status,
      detail: `webhook ${originOf(url)} answered HTTP ${res.status}${ok ? '' : ': refused'}`,
    };
  }

  async function run(command: string, req: OutageHookRequest): Promise<OutageHookResult> {
    const ran = await runContained(command, {
      env: hookEnvironment(req),
      timeoutMs: req.timeoutSeconds * 1000,
      secrets: [command, ...(deps.secrets ?? [])],
      outputLimit: HOOK_OUTPUT_LIMIT,
    });
    const ok = !ran.timedOut && ran.spawnError === undefined && ran.exitCode === 0;
    return {
      action: req.action,
      via: 'command',
      ok,
      exitCode: ran.timedOut ? null : ran.exitCode,
      output: ran.output,
      detail: ran.timedOut
        ? `command timed out after ${req.timeoutSeconds} s and was killed`
        : ran.spawnError !== undefined
          ? `command could not run (${ran.spawnError})`
          : ran.exitCode === 0
            ? 'command exited 0'
            : ran.exitCode !== null
              ? `command exited ${ran.exitCode}`
              : 'command was killed by a signal',
    };
  }

  return {
    /** Which hooks are configured, and how (no hook text). */
    async outageHooks(): Promise<Record<OutageHookAction, 'webhook' | 'command' | null>> {
      const how = (hook?: string) => (!hook ? null : isUrl(hook) ? 'webhook' : 'command');
      return { scale_up: how(deps.scaleUpHook), failover: how(deps.failoverHook) };
    },

    /**
     * Runs the hook once per step. A command that fails or a webhook that refuses is an answer (ok: false), not an
     * error: running a failover again on its own is not safe. Only network trouble and 5xx/429 are retried. While the
     * same hook runs for the same incident (on any worker), a call waits and gets that run's outcome; a step that
     * already ran gets its recorded outcome.
     */
    async runOutageHook(req: OutageHookRequest): Promise<OutageHookResult> {
      const hook = hookFor(req.action);
      if (!hook) {
        throw ApplicationFailure.nonRetryable(`no ${req.action} hook is configured`, 'HookNotConfigured');
      }
      return runs.once(
        { idempotencyKey: req.idempotencyKey, workflowId: req.incident.workflowId, action: req.action },
        req.timeoutSeconds + LEASE_MARGIN_SECONDS,
        () => (isUrl(hook) ? post(hook, req) : run(hook, req)),
      );
    },
  };
}

function isUrl(hook: string): boolean {
  return /^https?:\/\//i.test(hook.trim());
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(unparsable URL)';
  }
}
export type OutageHookActivities = ReturnType<typeof createOutageHookActivities>;
