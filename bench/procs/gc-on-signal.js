'use strict'
// Preloaded (node --expose-gc --require) into processes whose memory the bench
// measures: SIGUSR2 runs a full GC, so RSS shows what is live rather than
// garbage not yet collected, and writes the live V8 heap to
// $BENCH_HEAP_DIR/<pid>.json, which RSS cannot tell apart from heap the
// process has reserved but is not using.
const { writeFileSync } = require('node:fs')
const { join } = require('node:path')
const { getHeapStatistics } = require('node:v8')

process.on('SIGUSR2', () => {
  if (typeof globalThis.gc === 'function') globalThis.gc()
  const dir = process.env.BENCH_HEAP_DIR
  if (dir !== undefined) {
    const heap = getHeapStatistics()
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify({ used: heap.used_heap_size, committed: heap.total_heap_size, external: process.memoryUsage().external }))
  }
})
