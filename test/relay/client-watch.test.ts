import { once } from 'node:events'
import t from 'tap'
import { watchClient } from '../../lib/relay/client-watch'
import { socketPair } from '../helpers/socket-pair'
import { until } from '../helpers/until'

t.test('a client that leaves is seen, whether its signal was asked for before or after', async t => {
  const early = await socketPair(t)
  const late = await socketPair(t)
  const before = watchClient(early.near, 65_536)
  const after = watchClient(late.near, 65_536)
  const signal = before.signal
  t.notOk(before.gone || signal.aborted || after.gone, 'nobody has left yet')
  early.far.destroy()
  late.far.destroy()
  await once(signal, 'abort')
  t.ok(before.gone, 'gone once its client closed')
  await until(() => after.gone, 5000, 'the second client to be seen leaving')
  t.ok(after.signal.aborted, 'a signal asked for after the client left is aborted already')
})

t.test('the bytes read while watching are handed back, in order', async t => {
  const { near, far } = await socketPair(t)
  const watch = watchClient(near, 65_536)
  far.write('abc')
  far.write('def')
  await until(() => near.bytesRead >= 6, 5000, 'the body to arrive')
  await new Promise(resolve => setImmediate(resolve))
  t.equal(watch.stop().toString(), 'abcdef')
  t.notOk(watch.gone)
})
