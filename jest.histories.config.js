// Records the workflow histories test/workflow/replay.test.ts replays: `npm run record-histories`, on the same servers.
const base = require('./jest.config');

/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: ['<rootDir>/test/histories/record.ts'], maxWorkers: 1 };
