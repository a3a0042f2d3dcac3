// Lint for the TypeScript control plane and the tests (`make lint`: src/ and test/).
//   - TypeScript (src/**/*.ts, test/memory/*.ts): typescript-eslint's strict, type-checked rules.
//   - The plain-JavaScript harnesses and suites (test/**/*.mjs): ESLint's recommended rules with
//     Node's globals; they have no types to check against.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['build/**', 'node_modules/**', '**/*.js', '**/*.d.ts'] },
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's test() returns a promise the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] }] },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      // Style only: `() => void call()` shorthands are idiomatic in callbacks and tests.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // Numbers and booleans in messages read fine; objects still need an explicit conversion.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    files: ['**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: globals.node },
    rules: {
      // Unused bindings are mistakes; a leading underscore marks one kept on purpose.
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'prefer-const': 'error',
      'no-var': 'error',
    },
  },
);
