// ESLint: typescript-eslint's type-checked recommended rules over every source (src, test, bench, scripts, web),
// and the line length. Layout (indentation, quotes, wrapping) is Prettier's (.prettierrc.json), not ESLint's.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import stylistic from '@stylistic/eslint-plugin';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // .gitignore's build output and caches (ESLint does not read .gitignore).
  globalIgnores(['dist/', '.cache/', '.ci-cache/', '.tmp/', 'test-artifacts/']),
  {
    files: ['**/*.ts', '**/*.js'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        // Each file is checked with the tsconfig.json nearest to it (web/ has its own); the few config
        // files no tsconfig includes get a default program.
        projectService: { allowDefaultProject: ['*.js', '*.ts', 'bin/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    plugins: { '@stylistic': stylistic },
    rules: {
      // Prettier wraps code at 120 but leaves comments and long literals alone. A string, URL or
      // regex is not split to fit.
      '@stylistic/max-len': [
        'error',
        {
          code: 120,
          tabWidth: 2,
          ignoreUrls: true,
          ignoreStrings: true,
          ignoreTemplateLiterals: true,
          ignoreRegExpLiterals: true,
        },
      ],
      // node:test runs test() and describe() whether or not their promise is awaited.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      // Uncached carries a failed load through lru-cache's fetch without caching it (not an error).
      '@typescript-eslint/only-throw-error': [
        'error',
        { allow: [{ from: 'file', name: 'Uncached', path: 'src/kube/fetch-shared.ts' }] },
      ],
      // match() mixes verdicts known at once (the fast path) with pending engine runs in one Promise.all.
      '@typescript-eslint/await-thenable': ['error', { allowMixedPromiseArrays: true }],
      // `const { omitted, ...rest } = value` is how this code leaves a field out.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // An async method without await is how this code implements a Promise-returning interface
      // (senders, stores, secret readers): dropping `async` would turn its throws into synchronous
      // throws at the caller, which is not what the interfaces promise.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests read untyped wire data (JSON answers, YAML manifests, metrics) and assert on its shape:
    // the assertions are the check, so `any` there is allowed.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
