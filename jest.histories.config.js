// Records the workflow histories test/workflow/replay.test.ts replays: `npm run record-histories`, on the same servers.
const base = require('./jest.config');
const workflow = base.projects.find((p) => p.displayName === 'workflow');

/** @type {import('jest').Config} */
module.exports = {
  ...workflow,
  displayName: undefined,
  testMatch: ['<rootDir>/test/histories/record.ts'],
  testTimeout: base.testTimeout,
  maxWorkers: 1,
};
