// The import rules of docs/architecture.md as data, read by eslint.config.mjs (per-folder lint rules) and by
// test/unit/architecture.test.ts (the whole graph, cycles included), so the two never disagree.

/** The production folders, inner first. */
const FOLDERS = [
  'domain',
  'workflows',
  'activities',
  'paymentEvents',
  'temporal',
  'drivers',
  'db',
  'config',
  'ingress',
  'cli',
  'workers',
  'runtime',
];

// Messages are defined once and imported by the workers, the CLI and the ingress.
const MESSAGES = 'workflows/definitions';

/**
 * What each folder may import besides itself: whole folders, or one module or sub-folder (`activities/invoicing`);
 * `types` only with `import type`.
 */
const IMPORT_RULES = {
  domain: { may: [] },
  workflows: { may: ['domain'], types: ['activities'] },
  db: { may: ['domain'] },
  drivers: { may: ['domain'] },
  temporal: { may: ['domain', MESSAGES], types: ['workflows'] },
  paymentEvents: { may: ['domain', 'db', 'drivers', 'temporal'] },
  activities: { may: ['domain', 'db', 'drivers', 'temporal', 'paymentEvents'] },
  config: { may: ['domain'] },
  ingress: { may: ['domain', 'db', 'drivers', 'temporal', 'paymentEvents', 'config', MESSAGES] },
  cli: {
    may: [
      'domain',
      'db',
      'drivers',
      'temporal',
      'paymentEvents',
      'config',
      MESSAGES,
      // The runbook's by-hand steps: invoices recalculate|hold|release and usage spot-check.
      'activities/invoicing',
      'activities/usage/integrity',
    ],
  },
  // The worker names the workflow bundle's entry (workflows/index.ts) for the bundler.
  workers: { may: ['domain', 'activities', 'config', 'temporal', 'db', 'drivers', 'workflows'] },
  runtime: { may: FOLDERS },
};

/** The only packages the deterministic folders may import: workflow code is bundled and replayed, domain code is pure. */
const ALLOWED_PACKAGES = {
  domain: ['zod', '@temporalio/common'],
  workflows: ['@temporalio/workflow', '@temporalio/common'],
};

module.exports = { FOLDERS, IMPORT_RULES, ALLOWED_PACKAGES };
