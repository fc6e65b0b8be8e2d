import { Writable } from 'node:stream'
import t from 'tap'
import { ignoreOutputErrors, MAX_UNWRITTEN_OUTPUT } from '../../lib/cli/quiet-output'

// A stream whose reader stopped: nothing it is given is ever written out, so all of it stays unwritten.
function stalled (): Writable & { taken: number } {
  const stream = new Writable({ highWaterMark: 16, write: () => {} }) as Writable & { taken: number }
  stream.taken = 0
  const write = stream.write.bind(stream)
  stream.write = ((chunk: string) => { stream.taken += chunk.length; return write(chunk) }) as typeof stream.write
  return stream
}

t.test('output nobody reads holds at most MAX_UNWRITTEN_OUTPUT; later lines are dropped, not piled up', async t => {
  const stream = stalled()
  ignoreOutputErrors(stream)
  const line = 'x'.repeat(999) + '\n'
  for (let i = 0; i < 3000; i++) stream.write(line)
  t.ok(stream.writableLength <= MAX_UNWRITTEN_OUTPUT + line.length, `unwritten: ${stream.writableLength} bytes`)
  t.ok(stream.writableLength > MAX_UNWRITTEN_OUTPUT / 2, 'up to the bound, lines are kept')
  t.ok(stream.taken < 3000 * line.length, 'the rest were not handed to the stream')
  let called = false
  stream.write(line, () => { called = true })
  await new Promise(resolve => process.nextTick(resolve))
  t.ok(called, 'a dropped write still calls back')
})

t.test('an error on the stream (EPIPE) is not thrown', async t => {
  const stream = new Writable({ write: (_c, _e, done) => { done(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })) } })
  ignoreOutputErrors(stream)
  stream.write('a line\n')
  await new Promise(resolve => setImmediate(resolve))
  t.pass('no uncaught error')
})
