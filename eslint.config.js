'use strict'

module.exports = [
  ...require('neostandard')({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', '.rendezvous/**', '.tap/**']
  }),
  {
    // One private-member style: real #private fields, not TypeScript's compile-time `private`.
    files: ['**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', { selector: "[accessibility='private']", message: 'Use a #private member instead of TypeScript `private`.' }]
    }
  }
]
