// The day-111 deletion on the time-skipping server with the real policy durations (its own server: the 105 days it
// skips are kept apart from other suites' lifecycles): an approval the policy requires and a legal hold each make it
// wait for attention, and the decision names who approved.
import { placeLegalHold, releaseLegalHold } from '../../db/legalHolds';
import type { DunningStatus } from '../../domain/dunning';
import { defaultPolicy } from '../../domain/policy';
import {
  approveDeletionUpdate,
  dunningStatusQuery,
  paymentFailedSignal,
  retryNowSignal,
  skipStepUpdate,
} from '../../workflows/definitions';
import { dunningWorkflow } from '../../workflows/dunning';
import { dunningInput, insertOpenInvoice, insertTenant } from '../support/dunningFixtures';
import { pollUntil } from '../support/poll';
import { startTimeSkipping, type TimeSkipping } from '../support/timeSkipping';

const HOUR = 3_600_000;

let ts: TimeSkipping;

beforeAll(async () => {
  ts = await startTimeSkipping();
});

afterAll(async () => {
  await ts?.close();
});

type Handle = { query: (q: typeof dunningStatusQuery) => Promise<DunningStatus> };

function statusWhere(handle: Handle, what: string, test: (s: DunningStatus) => boolean) {
  return pollUntil(() => handle.query(dunningStatusQuery), test, what, { timeoutMs: 60_000 });
}

const stepAt = (status: DunningStatus, event: string) => status.timeline.find((e) => e.event === event);

describe('the deletion a person must allow', () => {
  it('deletion: waits for the approval the policy requires, then for a legal hold to be released, and records who approved', async () => {
    const tenant = await insertTenant(ts.deps.pool, 'pro', { processor: 'none' });
    const taskQueue = `attention-delete-${tenant.id}`;
    const worker = await ts.newWorker(taskQueue);
    const invoice = await insertOpenInvoice(ts.deps.pool, tenant.id);
    const input = {
      ...dunningInput(tenant, invoice, 'none'),
      policy: { ...defaultPolicy, downgrade: { ...defaultPolicy.downgrade, deletionRequiresApproval: true } },
    };
    const handle = await ts.env.client.workflow.signalWithStart(dunningWorkflow, {
      workflowId: `dunning-${tenant.id}`,
      taskQueue,
      args: [input],
      signal: paymentFailedSignal,
      signalArgs: [invoice],
    });
    await worker.runUntil(async () => {
      await statusWhere(handle, 'warning sent', (s) => !!stepAt(s, 'warning'));
      // Suspended at 14 days; deletion due 90 days later.
      await ts.env.sleep(105 * 24 * HOUR);
      const waiting = await statusWhere(handle, 'deletion waits', (s) => s.attention?.step === 'deletion');
      expect(waiting.attention).toMatchObject({ errorType: 'ApprovalRequired', nextRetryAt: null });
      expect(waiting.phase).toBe('suspended');
      // A legal hold arrives before anyone approves.
      await placeLegalHold(ts.deps.pool, {
        tenantId: tenant.id,
        reason: 'litigation 2026-17',
        operator: 'legal',
      });
      await handle.executeUpdate(approveDeletionUpdate, {
        args: [{ operator: 'ana', reason: 'ticket FIN-9' }],
      });
      const held = await statusWhere(
        handle,
        'refused for the hold',
        (s) => s.attention?.errorType === 'DeletionRefused',
      );
      expect(held.attention!.reason).toMatch(/legal hold placed by legal .*litigation 2026-17/);
      // The deletion cannot be skipped: the way out is the hold's release (or payment).
      await expect(
        handle.executeUpdate(skipStepUpdate, { args: [{ operator: 'ana', reason: 'skip it' }] }),
      ).rejects.toMatchObject({ cause: { message: expect.stringMatching(/cannot be skipped/) } });

      await releaseLegalHold(ts.deps.pool, { tenantId: tenant.id, reason: 'case closed', operator: 'legal' });
      await handle.signal(retryNowSignal, { operator: 'ana' });
      const outcome = await handle.result();
      expect(outcome.phase).toBe('deleted');
    });
    const decision = await ts.deps.pool.query('SELECT line FROM decisions WHERE workflow_id = $1', [
      `dunning-${tenant.id}`,
    ]);
    expect(decision.rows).toHaveLength(1);
    expect(decision.rows[0].line).toMatch(/ \| OPERATOR=ana \| .*TYPE=dunning_data_deletion/);
    const row = await ts.deps.pool.query('SELECT deleted_at FROM tenants WHERE id = $1', [tenant.id]);
    expect(row.rows[0].deleted_at).not.toBeNull();
  });
});
