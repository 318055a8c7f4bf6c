// Determinism across changes: every recorded history in test/histories/ replays against today's workflow code.
// A change that would break running workflows fails here; guard it with patched(...) and record a new history.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { workflowBundle } from '../support/testRuntime';

const dir = join(__dirname, '..', 'histories');
const histories = readdirSync(dir).filter((f) => f.endsWith('.pb'));

beforeAll(() => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
});

it('has recorded histories to replay', () => {
  expect(histories.length).toBeGreaterThanOrEqual(2);
});

it.each(histories)('%s replays without nondeterminism', async (file) => {
  const history = temporal.api.history.v1.History.decode(readFileSync(join(dir, file)));
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, file.replace(/\.pb$/, ''));
});
