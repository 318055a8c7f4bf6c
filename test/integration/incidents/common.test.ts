// The shared incident activities when the database itself is down (a billing system outage): the incident goes on,
// the status page still hears of it, and nothing is written until PostgreSQL answers again.
import { createIncidentActivities } from '../../../activities/incidents/common';
import { createEmailActivities } from '../../../activities/email';
import { freePort } from '../../../runtime/processes';
import { createPool } from '../../../db/pool';
import { newIncidentState, statusOf } from '../../../domain/incident';
import {
  startIncidentReceivers,
  incidentInput,
  type IncidentReceivers,
} from '../../support/incidentFixtures';

let receivers: IncidentReceivers;

beforeAll(async () => {
  receivers = await startIncidentReceivers();
});

afterAll(async () => {
  await receivers?.close();
});

it('skips the incidents row and still posts the status page while PostgreSQL is unreachable', async () => {
  // Nothing listens on this port: every query fails with ECONNREFUSED.
  const pool = createPool(`postgres://billops@127.0.0.1:${await freePort()}/billops`);
  pool.on('error', () => undefined);
  const acts = createIncidentActivities({
    pool,
    email: createEmailActivities({
      pool,
      mailer: { send: async () => undefined, close: () => undefined } as never,
      from: 'x@y.z',
    }),
    opsEmail: 'ops@billops.test',
    reportsDir: '/tmp',
    statusPageWebhookUrl: receivers.incidents.statusPageWebhookUrl,
  });
  try {
    const state = newIncidentState(
      incidentInput('billing_system_outage', {}),
      'incident-billing_system_outage-db',
      Date.now(),
    );
    await expect(acts.recordIncident(statusOf(state))).resolves.toEqual({
      recorded: false,
      skipped: expect.stringMatching(/^database unreachable/),
    });
    await expect(
      acts.postStatusPage({
        idempotencyKey: 'incident-billing_system_outage-db/status-investigating',
        workflowId: 'incident-billing_system_outage-db',
        status: 'investigating',
        message: 'Billing is unavailable; payments are queued',
      }),
    ).resolves.toBe('posted');
    expect(receivers.statusPageUpdates()).toEqual([
      {
        incident: {
          name: 'Billing is unavailable; payments are queued',
          status: 'investigating',
          external_id: 'incident-billing_system_outage-db',
        },
        idempotency_key: 'incident-billing_system_outage-db/status-investigating',
      },
    ]);
  } finally {
    await pool.end();
  }
});
