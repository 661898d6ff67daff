// Lint rules as architecture: workflow code stays deterministic (no I/O libraries, no Node
// built-ins, no wall clock or randomness outside the SDK's replacements, activities imported as
// types only), and no promise is left floating anywhere.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** What the deterministic sandbox cannot import. */
const SANDBOX_PATHS = [
  ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code runs in a deterministic sandbox: no Node built-ins.' })),
  { name: 'axios', message: 'No I/O in workflow code: call an activity.' },
  { name: 'zod', message: 'Validation happens at the edges (client, worker, activities), not in workflows.' },
  { name: '@kubernetes/client-node', message: 'No I/O in workflow code: call an activity.' },
  { name: '@temporalio/activity', message: 'Workflows call activities through proxyActivities.' },
  { name: '@temporalio/client', message: 'Workflows do not use the client.' },
  { name: '@temporalio/worker', message: 'Workflows do not use the worker.' },
];

/** Modules workflow code may import only for their types. */
const TYPES_ONLY = {
  group: [
    '**/activities/*',
    '**/deployment-spec/*',
    '**/config/*',
    '**/client/*',
    '**/worker/*',
    '**/checks/*',
    '**/notifications/*',
    '**/platforms/*',
    '**/routers/**',
  ],
  allowTypeImports: true,
  message: 'Workflow code may import these only with `import type`.',
};

/** No wall clock, randomness or timers outside the SDK's deterministic replacements. */
const DETERMINISM = {
  'no-restricted-properties': [
    'error',
    { object: 'Date', property: 'now', message: 'Use `new Date()`: the sandbox makes it the workflow task time.' },
    { object: 'Math', property: 'random', message: 'Use uuid4() from @temporalio/workflow for ids; nothing here needs chance.' },
  ],
  'no-restricted-globals': [
    'error',
    { name: 'setTimeout', message: 'Use sleep() or condition() from @temporalio/workflow.' },
    { name: 'setInterval', message: 'Use sleep() in a loop from @temporalio/workflow.' },
    { name: 'process', message: 'No process state in workflow code.' },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/', '.venv/', '.state/', 'dist/', 'examples/detection-api/dist/', 'test/histories/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The few plain JavaScript files run on Node (a worker thread, the CLI entry point).
    files: ['**/*.js'],
    languageOptions: { globals: { setInterval: 'readonly', clearInterval: 'readonly', process: 'readonly' } },
  },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test collects these itself; awaiting them is not how suites are written.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Prettier keeps code within 120 columns but leaves long strings whole: a message that runs
    // over is split where a reader can follow it (or its parts are named).
    files: ['src/**/*.ts'],
    rules: { 'max-len': ['error', { code: 120, ignoreUrls: false }] },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: SANDBOX_PATHS, patterns: [TYPES_ONLY] }],
      ...DETERMINISM,
    },
  },
  {
    // Shared modules are imported by the workflow and by every side, the spec's schema included:
    // they depend on nothing of the project's outside src/shared, not even for types (the types
    // they share live here).
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: SANDBOX_PATHS,
          patterns: [
            {
              group: ['../*', '!./*'],
              message: 'src/shared imports nothing from outside src/shared, not even types: move the type here.',
            },
          ],
        },
      ],
      ...DETERMINISM,
    },
  },
  {
    // The plan (bluegreen plan) is built in the workflow from the spec and the live state: workflow-safe.
    files: ['src/plan/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: SANDBOX_PATHS, patterns: [TYPES_ONLY] }],
      ...DETERMINISM,
    },
  },
);
