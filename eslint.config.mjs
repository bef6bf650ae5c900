// @ts-check
/**
 * ESLint over every TypeScript file tsc builds, with typescript-eslint's type-checked
 * rules, plus plain JS rules for the Node scripts. Formatting is Prettier's job
 * (eslint-config-prettier turns off the stylistic rules that would fight it).
 * Run by `npm run lint` and by `npm test` (scripts/test.mjs) with --max-warnings 0.
 */
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// A closure made before the value exists (shutdown handlers, timers, session ids) reads a
// `let` that is assigned once later; `const` cannot express that.
const preferConst = ['error', { ignoreReadBeforeAssign: true }];

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', '.tools/', '.data/', '.cluster/', 'tests/workflows/histories/'] },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // The one tsconfig.json covers every .ts file; one program for it is faster here than projectService.
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'prefer-const': preferConst,
      // `_name` marks a parameter or binding kept on purpose (callback signatures, rest omits).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // `async` without `await` is deliberate: it implements Promise-returning interfaces (activities,
      // MCP Transport, fakes of both) so that a throw becomes a rejection, as callers expect.
      '@typescript-eslint/require-await': 'off',
      // Re-rejecting an error caught earlier (typed `unknown`) is passing it on, not inventing a non-Error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    files: ['tests/**/*.ts'],
    rules: {
      // Tests read parsed JSON (`await res.json()`, JSON-RPC frames) and assert on its shape; the
      // assertions are the check there, so typing every response body would only restate them.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: {
      'prefer-const': preferConst,
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' } },
  prettier,
);
