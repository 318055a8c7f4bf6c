// Determinism across changes: every recorded history in test/histories/ replays against today's workflow code, and every
// workflow type the bundle exports has at least one recorded history (`npm run record-histories` records them).
// A change that would break running workflows fails here; guard it with patched(...) and record a new history.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import * as workflows from '../../workflows';
import { workflowBundle } from '../support/testRuntime';

const dir = join(__dirname, '..', 'histories');
const histories = readdirSync(dir).filter((f) => f.endsWith('.pb'));
const decode = (file: string) => temporal.api.history.v1.History.decode(readFileSync(join(dir, file)));

/** The workflow type a history records, from its first event. */
function workflowTypeOf(file: string): string | undefined {
  const first = decode(file).events?.[0];
  return first?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? undefined;
}

beforeAll(() => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
});

it('has a recorded history of every workflow type the bundle exports', () => {
  const exported = Object.entries(workflows)
    .filter(([, value]) => typeof value === 'function')
    .map(([name]) => name)
    .sort();
  expect(exported.length).toBeGreaterThan(0);
  const recorded = new Set(histories.map(workflowTypeOf));
  expect(exported.filter((type) => !recorded.has(type))).toEqual([]);
});

it.each(histories)('%s replays without nondeterminism', async (file) => {
  const history = decode(file);
  // Under the workflow id it was recorded with (record.ts writes it into the started event): workflows compare their
  // id with what activities return, so a replay under another id would diverge where the original did not.
  const recordedId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId;
  const workflowId = recordedId || file.replace(/\.pb$/, '');
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, workflowId);
});
