// ESLint flat config: typescript-eslint recommended rules plus Prettier formatting.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-plugin-prettier/recommended';

// The import rules of docs/architecture.md, one block per folder (test/unit/architecture.test.ts checks the same
// table over the whole graph and finds cycles). `types` folders may still be imported with `import type`.
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
const IO_PACKAGES = [
  'node:*',
  'fs',
  'pg',
  'axios',
  'stripe',
  'nodemailer',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
];
// A relative import that climbs to a top-level folder (`../db/pool`, `../../workflows`), except the allowed sub-paths
// (`workflows/definitions`): one alternative per folder, each with its own exceptions.
function reaching(folders, except) {
  const alternatives = folders.map((folder) => {
    const allowed = except
      .filter((path) => path.startsWith(`${folder}/`))
      .map((path) => path.slice(folder.length + 1));
    return allowed.length > 0 ? `${folder}(?!/(${allowed.join('|')})$)` : folder;
  });
  return `^(\\.\\./)+(${alternatives.join('|')})(/|$)`;
}
function importRules(folder, { may = [], types = [], except = [], packages = [] }) {
  const forbidden = FOLDERS.filter((f) => f !== folder && !may.includes(f) && !types.includes(f));
  const patterns = [];
  if (forbidden.length > 0) {
    patterns.push({
      regex: reaching(forbidden, except),
      message: `${folder}/ may not import this folder (docs/architecture.md, import rules).`,
    });
  }
  if (types.length > 0) {
    patterns.push({
      regex: reaching(types, except),
      allowTypeImports: true,
      message: `${folder}/ may import this folder's types only (import type; docs/architecture.md).`,
    });
  }
  if (packages.length > 0) {
    patterns.push({
      group: packages,
      message: `${folder}/ is deterministic: no I/O packages (docs/architecture.md).`,
    });
  }
  return {
    files: [`${folder}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  };
}
const importRuleBlocks = [
  importRules('domain', { packages: [...IO_PACKAGES, '@temporalio/workflow'] }),
  importRules('workflows', { may: ['domain'], types: ['activities'], packages: IO_PACKAGES }),
  importRules('db', { may: ['domain'] }),
  importRules('drivers', { may: ['domain'] }),
  importRules('temporal', { may: ['domain'], types: ['workflows'], except: ['workflows/definitions'] }),
  importRules('paymentEvents', { may: ['domain', 'db', 'drivers', 'temporal'] }),
  importRules('activities', { may: ['domain', 'db', 'drivers', 'temporal', 'paymentEvents'] }),
  importRules('config', { may: ['domain'] }),
  importRules('ingress', {
    may: ['domain', 'db', 'drivers', 'temporal', 'paymentEvents', 'config'],
    except: ['workflows/definitions'],
  }),
  importRules('cli', {
    may: ['domain', 'db', 'drivers', 'temporal', 'paymentEvents', 'config'],
    except: ['workflows/definitions', 'activities/invoicing(/.*)?', 'activities/usage/integrity'],
  }),
  importRules('workers', {
    may: ['domain', 'activities', 'config', 'temporal', 'db', 'drivers', 'workflows'],
  }),
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.tools/**', '.data/**', 'test-artifacts/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  ...importRuleBlocks,
);
