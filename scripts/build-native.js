#!/usr/bin/env node
'use strict'
/*
 * Builds the optional native data path (native/*.c, docs/performance.md)
 * at install time, the way `ws` treats `bufferutil`: without it the relay
 * uses its JavaScript splice, so this script never fails an install. No
 * Linux, no C compiler, no Node-API headers, or RENDEZVOUS_NATIVE=0: it
 * prints one line and exits 0.
 *
 * It calls the C compiler directly with the headers of the npm package
 * node-api-headers, rather than node-gyp, which would download Node's full
 * headers; the addon uses Node-API only, whose symbols the node binary
 * provides when the addon is loaded, so one build serves every Node major.
 */
const { spawnSync } = require('node:child_process')
const { mkdirSync, renameSync, rmSync } = require('node:fs')
const { dirname, join } = require('node:path')

const ROOT = join(__dirname, '..')
const SOURCES = ['binding.c', 'io-thread.c', 'pump.c'].map(file => join(ROOT, 'native', file))
const OUT = join(ROOT, 'native', 'build', 'splice.node')

function skip (why) {
  console.log(`fastify-rendezvous: native splice not built (${why}); the JavaScript splice is used`)
  process.exit(0)
}

function headers () {
  try {
    return dirname(require.resolve('node-api-headers/include/node_api.h', { paths: [ROOT] }))
  } catch {
    return undefined
  }
}

function build () {
  if (process.env.RENDEZVOUS_NATIVE === '0') skip('RENDEZVOUS_NATIVE=0')
  if (process.platform !== 'linux') skip(`splice(2) is Linux only, this is ${process.platform}`)
  const include = headers()
  if (include === undefined) skip('the node-api-headers package is not installed')
  const cc = process.env.CC || 'cc'
  const tmp = `${OUT}.${process.pid}.tmp`
  mkdirSync(dirname(OUT), { recursive: true })
  // -Wl,--unresolved-symbols: the napi_* symbols come from the node binary at load time.
  const args = ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-fPIC', '-shared', '-fvisibility=hidden', '-pthread',
    '-I', include, '-o', tmp, ...SOURCES]
  const result = spawnSync(cc, args, { encoding: 'utf8', timeout: 120_000 })
  if (result.error !== undefined || result.status !== 0) {
    rmSync(tmp, { force: true })
    const why = result.error !== undefined ? `${cc}: ${result.error.code ?? result.error.message}` : `${cc} exited ${result.status}`
    if (process.env.RENDEZVOUS_NATIVE_VERBOSE === '1') process.stderr.write(result.stderr ?? '')
    skip(why)
  }
  // Renamed into place, so that a running process never loads a half-written file.
  renameSync(tmp, OUT)
  if (process.env.RENDEZVOUS_NATIVE_VERBOSE === '1') console.log(`fastify-rendezvous: native splice built: ${OUT}`)
}

try {
  build()
} catch (err) {
  skip(err && err.message ? err.message : String(err))
}
