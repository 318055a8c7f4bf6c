// Every command of `billops`: the words that select it, its synopsis and summary for help, and the function in cli/
// that runs it. cli/main.ts reads the arguments against this table.
import type { CommandRun } from './common';

export interface Command {
  /** The words that select it, e.g. `dunning start`. */
  name: string;
  synopsis: string[];
  summary: string;
  run: CommandRun;
}

// Each group is loaded when used, so `tenants list` does not pay for the Temporal client.
const db = () => import('./db');
const tenants = () => import('./tenants');
const legalHolds = () => import('./legalHolds');
const keys = () => import('./keys');
const endpoints = () => import('./endpoints');
const dunning = () => import('./dunning');
const status = () => import('./status');
const steering = () => import('./steering');
const attention = () => import('./attention');
const usageCli = () => import('./usage');
const usageChecks = () => import('./usageChecks');
const invoices = () => import('./invoices');
const overage = () => import('./overage');
const webhooks = () => import('./webhooks');
const reconcileCli = () => import('./reconcile/command');
const incidentList = () => import('./incidents/list');
const incidentStart = () => import('./incidents/start');
const incidentSteering = () => import('./incidents/steer');
const decisions = () => import('./decisions');
const payments = () => import('./payments');
const previewCli = () => import('./preview');
const triggerCli = () => import('./trigger');

export const commands: Command[] = [
  {
    name: 'dunning start',
    synopsis: [
      'dunning start --tenant ID --invoice ID --amount MINOR [--currency USD] [--tier pro] [--processor stripe] [--json]',
    ],
    summary: "start the tenant's dunning lifecycle for a failed invoice, or join the running one",
    run: async (args) => (await dunning()).dunningStart(args),
  },
  {
    name: 'dunning retry',
    synopsis: ['dunning retry <tenantId> [--operator NAME] [--json]'],
    summary:
      "seed 004's Retry Payment: the open invoices are charged again now (the schedule stays), or the step waiting for attention is tried again",
    run: async (args) => (await attention()).dunningRetry(args),
  },
  {
    name: 'dunning skip',
    synopsis: ['dunning skip <tenantId> --reason TEXT [--operator NAME] [--json]'],
    summary: 'the step waiting for attention is given up and the lifecycle goes on (not the deletion)',
    run: async (args) => (await attention()).dunningSkip(args),
  },
  {
    name: 'dunning approve-deletion',
    synopsis: ['dunning approve-deletion <tenantId> --reason TEXT [--operator NAME] [--json]'],
    summary: "lets the deletion go ahead when the policy requires an operator's approval",
    run: async (args) => (await attention()).dunningApproveDeletion(args),
  },
  {
    name: 'dunning list',
    synopsis: ['dunning list [--tenant ID] [--phase P] [--processor stripe] [--tier pro] [--json]'],
    summary: 'running dunning lifecycles, from the search attributes',
    run: async (args) => (await dunning()).dunningList(args),
  },
  {
    name: 'preview',
    synopsis: [
      'preview --tier pro|enterprise [--json]',
      'preview --tenant ID [--json]',
      'preview <dunning-workflowId> [--json]',
    ],
    summary:
      'the dunning lifecycle a payment failing now would run under the policy in force (every step: when, phase, ' +
      'email, service control); for a running lifecycle, its pauses, extensions and steps done, then what comes next',
    run: async (args) => (await previewCli()).preview(args),
  },
  {
    name: 'status',
    synopsis: ['status <workflowId> [--json]'],
    summary:
      'phase, paused, outstanding invoices, deadlines, next action and timeline; for an incident: severity, ' +
      'acknowledgement, escalation, steps, approvals, resolution and timeline',
    run: async (args) => (await status()).status(args),
  },
  {
    name: 'retry',
    synopsis: ['retry <workflowId> [--operator NAME] [--json]'],
    summary:
      "any workflow's step waiting for attention (an incident's refused status page) is tried again now",
    run: async (args) => (await attention()).retryStep(args),
  },
  {
    name: 'skip',
    synopsis: ['skip <workflowId> --reason TEXT [--operator NAME] [--json]'],
    summary: "any workflow's step waiting for attention is given up, the reason kept in its timeline",
    run: async (args) => (await attention()).skipStep(args),
  },
  {
    name: 'pause',
    synopsis: [
      'pause <workflowId> [--reason TEXT] [--operator NAME]',
      'pause --where FILTER [--reason TEXT] [--operator NAME]',
    ],
    summary:
      "stop a lifecycle's or an incident's clock (one workflow, or every lifecycle the visibility filter selects)",
    run: async (args) => (await steering()).pause(args),
  },
  {
    name: 'resume',
    synopsis: ['resume <workflowId> [--operator NAME]', 'resume --where FILTER [--operator NAME]'],
    summary: 'restart the clock; later deadlines move by the time spent paused',
    run: async (args) => (await steering()).resume(args),
  },
  {
    name: 'extend-grace',
    synopsis: [
      'extend-grace <tenantId> --days N --reason TEXT [--operator NAME] [--json]',
      'extend-grace --where FILTER --hours N --reason TEXT [--operator NAME]',
    ],
    summary:
      'move grace end and every later step; prints the new deadlines, or how many lifecycles it reached',
    run: async (args) => (await steering()).extendGrace(args),
  },
  {
    name: 'incidents',
    synopsis: [
      'incidents [--kind K] [--tenant ID] [--severity P1] [--phase open|acknowledged|resolved|closed] [--all] [--json]',
    ],
    summary: 'incidents by search attribute (running unless --phase closed or --all), with their phase',
    run: async (args) => (await incidentList()).incidentsList(args),
  },
  {
    name: 'incident start',
    synopsis: [
      'incident start <kind> --key K --summary TEXT [--tenant ID]... [--severity P2] [--param name=value]...',
      '               [--operator NAME] [--json]',
    ],
    summary: 'open incident-<kind>-<key> by hand, or reach the open one (its timeline records it)',
    run: async (args) => (await incidentStart()).incidentStart(args),
  },
  {
    name: 'ack',
    synopsis: ['ack <workflowId> [--operator NAME] [--json]'],
    summary: 'acknowledge an incident: escalation stops; exit 1 with the reason when refused',
    run: async (args) => (await incidentSteering()).ack(args),
  },
  {
    name: 'resolve',
    synopsis: ['resolve <workflowId> --summary TEXT [--operator NAME] [--json]'],
    summary: 'resolve an incident; it closes with its DECISIONS.log line and report',
    run: async (args) => (await incidentSteering()).resolve(args),
  },
  {
    name: 'approve',
    synopsis: ['approve <workflowId> --step NAME [--decline] [--reason TEXT] [--operator NAME] [--json]'],
    summary: 'answer the runbook step an incident is waiting on (status shows it)',
    run: async (args) => (await incidentSteering()).approve(args),
  },
  {
    name: 'rca',
    synopsis: ['rca <workflowId> --summary TEXT [--operator NAME] [--json]'],
    summary: 'record the root cause (after the workflow ended: the incidents row, DATABASE_URL)',
    run: async (args) => (await incidentSteering()).rca(args),
  },
  {
    name: 'tenants list',
    synopsis: ['tenants list [--json]'],
    summary: 'list tenants (DATABASE_URL)',
    run: async (args) => (await tenants()).tenantsList(args),
  },
  {
    name: 'tenants add',
    synopsis: [
      'tenants add --id ID --name NAME --tier free|pro|enterprise --email ADDRESS',
      '            [--billing-email ADDRESS] [--currency USD] [--processor stripe|paystack|none]',
    ],
    summary: 'add a tenant (DATABASE_URL)',
    run: async (args) => (await tenants()).tenantsAdd(args),
  },
  {
    name: 'tenants hold',
    synopsis: [
      'tenants hold <tenantId> --reason TEXT [--operator NAME] [--json]',
      'tenants hold <tenantId> --release --reason TEXT [--operator NAME] [--json]',
    ],
    summary:
      "place (or release) a legal hold: the tenant's data is not deleted while it is active (DATABASE_URL)",
    run: async (args) => (await legalHolds()).tenantsHold(args),
  },
  {
    name: 'tenants holds',
    synopsis: ['tenants holds [--json]'],
    summary: 'active legal holds: tenant, placed when and by whom, reason (DATABASE_URL)',
    run: async (args) => (await legalHolds()).tenantsHolds(args),
  },
  {
    name: 'keys create',
    synopsis: [
      'keys create --scope usage:write[,usage:read][,access:read][,notices:write] [--tenants ID,ID] [--name TEXT] [--json]',
    ],
    summary:
      'an API key for usage producers, gateways (access:read) or the dashboard (notices:write); all tenants unless --tenants; prints it once (DATABASE_URL)',
    run: async (args) => (await keys()).keysCreate(args),
  },
  {
    name: 'keys list',
    synopsis: ['keys list [--json]'],
    summary: 'API keys: id, name, scopes, tenants, created, last used, revoked; never the key (DATABASE_URL)',
    run: async (args) => (await keys()).keysList(args),
  },
  {
    name: 'keys revoke',
    synopsis: ['keys revoke <id>'],
    summary: 'refuse the key from now on: the ingress answers 401 to it (DATABASE_URL)',
    run: async (args) => (await keys()).keysRevoke(args),
  },
  {
    name: 'endpoints add',
    synopsis: ['endpoints add --url URL [--events TYPE,TYPE] [--tenants ID,ID] [--json]'],
    summary:
      'an endpoint of the product for outbound webhooks (all events and tenants unless limited); prints its secret once (DATABASE_URL)',
    run: async (args) => (await endpoints()).endpointsAdd(args),
  },
  {
    name: 'endpoints list',
    synopsis: ['endpoints list [--json]'],
    summary: 'webhook endpoints: id, URL, events, tenants, created; never the secret (DATABASE_URL)',
    run: async (args) => (await endpoints()).endpointsList(args),
  },
  {
    name: 'endpoints remove',
    synopsis: ['endpoints remove <id>'],
    summary: 'stop sending to the endpoint; its pending deliveries are marked failed (DATABASE_URL)',
    run: async (args) => (await endpoints()).endpointsRemove(args),
  },
  {
    name: 'endpoints rotate-secret',
    synopsis: ['endpoints rotate-secret <id> [--json]'],
    summary: 'a new signing secret, printed once; the old one also signs for 24 h (DATABASE_URL)',
    run: async (args) => (await endpoints()).endpointsRotateSecret(args),
  },
  {
    name: 'endpoints deliveries',
    synopsis: ['endpoints deliveries [--endpoint ID] [--status pending|delivered|failed] [--json]'],
    summary:
      "outbound webhook deliveries, newest first: event, tenant, status, attempts, the receiver's answer",
    run: async (args) => (await endpoints()).endpointsDeliveries(args),
  },
  {
    name: 'endpoints redeliver',
    synopsis: ['endpoints redeliver <deliveryId>'],
    summary:
      'send a delivery again (next in its stream, retried for up to 7 days) through its delivery workflow',
    run: async (args) => (await endpoints()).endpointsRedeliver(args),
  },
  {
    name: 'usage backfill',
    synopsis: ['usage backfill --from ISO --to ISO [--tenant ID]... [--chunk-hours N] [--wait]'],
    summary:
      "recompute the range's rollups from raw events, or join the running backfill; --wait shows percent",
    run: async (args) => (await usageCli()).usageBackfill(args),
  },
  {
    name: 'usage status',
    synopsis: ['usage status <workflowId> [--json]'],
    summary: "a backfill's percent, chunks, events, state and resumes, or a rollup run's attempts",
    run: async (args) => (await usageCli()).usageStatus(args),
  },
  {
    name: 'usage runs',
    synopsis: ['usage runs [--last N] [--json]'],
    summary: 'verify aggregation job status: the latest rollup runs (DATABASE_URL)',
    run: async (args) => (await usageChecks()).usageRuns(args),
  },
  {
    name: 'usage lag',
    synopsis: ['usage lag [--json]'],
    summary: 'ingestion lag: the newest usage event per meter (DATABASE_URL)',
    run: async (args) => (await usageChecks()).usageLag(args),
  },
  {
    name: 'usage spot-check',
    synopsis: ['usage spot-check --from ISO --to ISO (--tenant ID... | --sample N) [--json]'],
    summary: 'rollups against raw events, hour by hour; exit 1 when any mismatch is found (DATABASE_URL)',
    run: async (args) => (await usageChecks()).usageSpotCheck(args),
  },
  {
    name: 'usage load',
    synopsis: ['usage load <file> [--batch-size N] [--format ndjson|csv] [--json]'],
    summary: 'ingest an NDJSON or CSV file of usage events; exit 1 when any line is refused (DATABASE_URL)',
    run: async (args) => (await usageCli()).usageLoad(args),
  },
  {
    name: 'invoices recalculate',
    synopsis: ['invoices recalculate --from ISO --to ISO [--tenant ID]... [--json]'],
    summary: "recompute the period's usage invoices: old total, new total, difference, action (DATABASE_URL)",
    run: async (args) => (await invoices()).invoicesRecalculate(args),
  },
  {
    name: 'invoices hold',
    synopsis: [
      'invoices hold generation [--tenant ID] [--meter M] --reason TEXT [--operator NAME] [--json]',
      'invoices hold delivery [--tenant ID] [--invoice ID]... --reason TEXT [--operator NAME] [--json]',
    ],
    summary:
      'stop invoice generation (tenant, meter or all), or delivery of undelivered invoices (DATABASE_URL)',
    run: async (args) => (await invoices()).invoicesHold(args),
  },
  {
    name: 'invoices release',
    synopsis: [
      'invoices release generation [--tenant ID] [--meter M] --reason TEXT [--operator NAME] [--json]',
      'invoices release delivery [--tenant ID] [--invoice ID]... --reason TEXT [--operator NAME] [--json]',
    ],
    summary: 'lift the generation holds of exactly that scope, or the delivery holds (DATABASE_URL)',
    run: async (args) => (await invoices()).invoicesRelease(args),
  },
  {
    name: 'overage decide',
    synopsis: [
      'overage decide <workflowId> --decision no_action|throttled|blocked --reason TEXT [--operator NAME] [--json]',
    ],
    summary: "the Enterprise manual review's decision; refused unless the review is open and undecided",
    run: async (args) => (await overage()).overageDecide(args),
  },
  {
    name: 'webhooks retry',
    synopsis: ['webhooks retry --hours N [--json]'],
    summary:
      'reprocess, once each, webhook events that failed in the last N hours (beyond the 7-day retry window: ' +
      'expired); exit 1 when any still fails (DATABASE_URL)',
    run: async (args) => (await webhooks()).webhooksRetry(args),
  },
  {
    name: 'reconcile',
    synopsis: ['reconcile --date YYYY-MM-DD [--processor stripe|paystack] [--json]'],
    summary:
      "a UTC day's Stripe/Paystack transactions against our payments and invoices; exit 1 on any discrepancy " +
      '(DATABASE_URL)',
    run: async (args) => (await reconcileCli()).reconcile(args),
  },
  {
    name: 'payments record',
    synopsis: [
      'payments record --invoice ID --amount MINOR --currency C --method bank_transfer|card|other --reference R',
      '                [--operator NAME] [--reason TEXT] [--json]',
    ],
    summary:
      'a payment accepted by hand, with its audit row: applied to the invoice, and a paid invoice signalled to ' +
      "the tenant's lifecycle; the same reference again answers already recorded (DATABASE_URL)",
    run: async (args) => (await payments()).paymentsRecord(args),
  },
  {
    name: 'trigger',
    synopsis: [
      'trigger <event> [--tenant ID] [--amount MINOR] [--currency C] [--processor stripe|paystack] [--json]',
      'trigger <AlertRuleName> [--processor stripe|paystack] [--severity warning|critical] [--resolved] [--json]',
    ],
    summary:
      'a realistic Stripe or Paystack event, or an Alertmanager alert, signed with the configured secrets and ' +
      'sent to the ingress; prints the workflow it reached and its Web UI link (billops trigger lists the events)',
    run: async (args) => (await triggerCli()).trigger(args),
  },
  {
    name: 'decisions export',
    synopsis: ['decisions export [--since YYYY-MM-DD] [--out FILE]'],
    summary:
      'DECISIONS.log from the decisions table (every worker host), ordered by time, to stdout or FILE ' +
      '(DATABASE_URL)',
    run: async (args) => (await decisions()).decisionsExport(args),
  },
  {
    name: 'db migrate',
    synopsis: ['db migrate'],
    summary: 'apply pending database migrations (DATABASE_URL)',
    run: async (args) => (await db()).dbMigrate(args),
  },
];
