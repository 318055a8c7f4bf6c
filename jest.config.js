// Jest projects, one per test layer: `unit` runs with no servers; `workflow`, `integration` and `e2e` share one
// Tests are transpiled file by file (isolatedModules, tsconfig.jest.json); `npm run build` type-checks everything.
// globalSetup (Jest runs a setup module once however many projects name it) that starts real local servers.
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json', diagnostics: false }] };

const withServers = (name) => ({
  displayName: name,
  testEnvironment: 'node',
  transform,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  globalTeardown: '<rootDir>/test/support/globalTeardown.ts',
});

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    withServers('workflow'),
    withServers('integration'),
    withServers('e2e'),
  ],
  testTimeout: 120000,
  maxWorkers: 2,
};
