// One lint gate for the whole tree; type-aware rules catch lost promises.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Which folder may import which (a wrong import fails `npm test`):
 *   apply/core    the layer both sides use: imports nothing of spokesync outside itself
 *   apply/codec   the wire format: core
 *   apply/replay  the transactional apply: core and codec
 *   agent         everything a node runs: itself and apply, never deploy or test
 *   deploy        service files and the demo: agent and apply, never test
 */
const only = (allowed, why) => ({
  'no-restricted-imports': ['error', {
    patterns: [{ regex: allowed.length ? `^\\.\\./(?!(${allowed.join('|')})/)` : '^\\.\\./', message: why }],
  }],
});
export const layers = [
  { files: ['apply/core/**/*.ts'], rules: only([], 'apply/core imports nothing of spokesync outside apply/core') },
  { files: ['apply/codec/**/*.ts'], rules: only(['core'], 'apply/codec may import apply/core only') },
  { files: ['apply/replay/**/*.ts'], rules: only(['core', 'codec'], 'apply/replay may import apply/core and apply/codec only') },
  {
    files: ['agent/**/*.ts', 'deploy/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { regex: '^(\\.\\./)+test/', message: 'agent/ and deploy/ never import from test/' },
          { regex: '^(\\.\\./)+deploy/', message: 'agent/ never imports from deploy/' },
        ],
      }],
    },
  },
  {
    // deploy/ may import its own folders
    files: ['deploy/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{ regex: '^(\\.\\./)+test/', message: 'deploy/ never imports from test/' }],
      }],
    },
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  ...layers,
  {
    files: ['agent/main.ts', 'deploy/**/*.ts', 'test/bench/**/*.ts', 'test/helpers/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
);
