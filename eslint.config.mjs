// ESLint flat config: typescript-eslint recommended rules plus Prettier formatting.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-plugin-prettier/recommended';
import importRulesData from './scripts/importRules.cjs';

// The import rules of docs/architecture.md (scripts/importRules.cjs), one block per folder; the architecture test checks
// the same rules over the whole graph and finds cycles.
const { FOLDERS, IMPORT_RULES, ALLOWED_PACKAGES } = importRulesData;

/**
 * A relative import that climbs to a top-level folder (`../db/pool`, `../../workflows`) other than the allowed ones:
 * one alternative per forbidden folder, each leaving out the sub-paths that are allowed (`workflows/definitions`).
 */
function reaching(folders, allowedSubPaths) {
  const alternatives = folders.map((folder) => {
    const allowed = allowedSubPaths
      .filter((path) => path.startsWith(`${folder}/`))
      .map((path) => `${path.slice(folder.length + 1)}(/.*)?`);
    return allowed.length > 0 ? `${folder}(?!/(${allowed.join('|')})$)` : folder;
  });
  return `^(\\.\\./)+(${alternatives.join('|')})(/|$)`;
}

function importRules(folder) {
  const { may, types = [] } = IMPORT_RULES[folder];
  const subPaths = may.filter((path) => path.includes('/'));
  const forbidden = FOLDERS.filter((f) => f !== folder && !may.includes(f) && !types.includes(f));
  const patterns = [];
  if (forbidden.length > 0) {
    patterns.push({
      regex: reaching(forbidden, subPaths),
      message: `${folder}/ may not import this folder (docs/architecture.md, import rules).`,
    });
  }
  if (types.length > 0) {
    patterns.push({
      regex: reaching(types, subPaths),
      allowTypeImports: true,
      message: `${folder}/ may import this folder's types only (import type; docs/architecture.md).`,
    });
  }
  const packages = ALLOWED_PACKAGES[folder];
  if (packages) {
    patterns.push({
      regex: `^(?!\\.|(${packages.join('|')})$)`,
      message: `${folder}/ is deterministic: only ${packages.join(', ')} among packages (docs/architecture.md).`,
    });
  }
  return {
    files: [`${folder}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns }] },
  };
}
const importRuleBlocks = FOLDERS.filter((folder) => folder !== 'runtime').map(importRules);

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
