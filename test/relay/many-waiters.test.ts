import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { until } from '../helpers/until'
import { statusOf } from '../helpers/wire'

// Every waiting client listens for the relay's shutdown; more than ten used to print Node's listener-leak warning.
t.test('many clients waiting at once: served in order, and no listener-leak warning', async t => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const relay = await startRendezvous({ plugin: { waitTimeout: 5000 } })
  t.teardown(relay.close)
  const clients = []
  for (let i = 0; i < 25; i++) {
    const wire = await relay.open()
    wire.write(`GET /w${i} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic ${Buffer.from('hub-1:x').toString('base64')}\r\nConnection: close\r\n\r\n`)
    clients.push(wire)
  }
  await until(() => relay.app.rendezvous.stats().waiting === 25, 3000, '25 waiting')
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings, [])
  for (let i = 0; i < 25; i++) {
    const parked = await relay.park('hub-1')
    await parked.untilText('\r\n\r\n')
    t.match(parked.text, new RegExp(`^GET /w${i} `), `the ${i + 1}th to wait is the ${i + 1}th served`)
    parked.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    parked.destroy()
    await clients[i]!.untilClosed()
    t.equal(statusOf(clients[i]!.text), 200)
  }
})
