'use strict'

module.exports = require('neostandard')({
  ts: true,
  ignores: ['dist/**', 'node_modules/**', '.rendezvous/**', '.tap/**']
})
