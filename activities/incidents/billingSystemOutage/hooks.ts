// Seed 000 §3 "Scale up billing service replicas" and "Manual failover to backup region": configurable hooks. An
// http(s) URL receives a POST of {incident, action}; anything else runs as a shell command with a timeout. The hook's
// own text (it may carry a token) never appears in a result, an error or a log.
import { execFile } from 'node:child_process';
import axios from 'axios';
import { ApplicationFailure } from '@temporalio/activity';

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
  /** The end of what the command printed (stdout, then stderr), with the hook's own text masked. */
  output?: string;
}

const OUTPUT_TAIL = 2_000;

export function createOutageHookActivities(deps: { scaleUpHook?: string; failoverHook?: string }) {
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

  function run(command: string, req: OutageHookRequest): Promise<OutageHookResult> {
    const mask = (text: string) => text.split(command).join('[hook]').slice(-OUTPUT_TAIL);
    return new Promise((resolve) => {
      execFile(
        '/bin/sh',
        ['-c', command],
        {
          timeout: req.timeoutSeconds * 1000,
          killSignal: 'SIGKILL',
          maxBuffer: 1024 * 1024,
          env: {
            ...process.env,
            BILLOPS_HOOK_ACTION: req.action,
            BILLOPS_INCIDENT_ID: req.incident.workflowId,
            BILLOPS_INCIDENT_KIND: req.incident.kind,
            BILLOPS_INCIDENT_SEVERITY: req.incident.severity,
            BILLOPS_IDEMPOTENCY_KEY: req.idempotencyKey,
          },
        },
        (error, stdout, stderr) => {
          const output = mask(
            [stdout, stderr]
              .filter((s) => s.trim() !== '')
              .join('\n')
              .trim(),
          );
          const failure = error as
            | (Error & { code?: number | string; killed?: boolean; signal?: string })
            | null;
          if (!failure) {
            resolve({
              action: req.action,
              via: 'command',
              ok: true,
              exitCode: 0,
              output,
              detail: 'command exited 0',
            });
            return;
          }
          const timedOut = failure.killed === true || failure.signal === 'SIGKILL';
          const exitCode = typeof failure.code === 'number' ? failure.code : null;
          resolve({
            action: req.action,
            via: 'command',
            ok: false,
            exitCode,
            output,
            detail: timedOut
              ? `command timed out after ${req.timeoutSeconds} s and was killed`
              : exitCode !== null
                ? `command exited ${exitCode}`
                : `command could not run (${String(failure.code ?? 'error')})`,
          });
        },
      );
    });
  }

  return {
    /** Which hooks are configured, and how (no hook text). */
    async outageHooks(): Promise<Record<OutageHookAction, 'webhook' | 'command' | null>> {
      const how = (hook?: string) => (!hook ? null : isUrl(hook) ? 'webhook' : 'command');
      return { scale_up: how(deps.scaleUpHook), failover: how(deps.failoverHook) };
    },

    /**
     * Runs the hook once per call. A command that fails or a webhook that refuses is an answer (ok: false), not an
     * error: running a failover again on its own is not safe. Only network trouble and 5xx/429 are retried.
     */
    async runOutageHook(req: OutageHookRequest): Promise<OutageHookResult> {
      const hook = hookFor(req.action);
      if (!hook) {
        throw ApplicationFailure.nonRetryable(`no ${req.action} hook is configured`, 'HookNotConfigured');
      }
      return isUrl(hook) ? post(hook, req) : run(hook, req);
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
