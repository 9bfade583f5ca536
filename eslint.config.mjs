// eslint for the widget and dashboard: plain browser scripts, no build step.
import js from '@eslint/js';
import globals from 'globals';

export default [
  js.configs.recommended,
  {
    files: ['web/static/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'script',
      globals: globals.browser,
    },
    rules: {
      'no-unused-vars': ['error', { args: 'after-used', caughtErrors: 'none' }],
      'no-var': 'error',
      'prefer-const': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-implicit-globals': 'error',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'no-restricted-properties': ['error',
        { property: 'innerHTML', message: 'Poll text is inserted as text only: use textContent or h().' },
        { property: 'outerHTML', message: 'Poll text is inserted as text only.' },
        { property: 'insertAdjacentHTML', message: 'Poll text is inserted as text only.' },
      ],
    },
  },
];
