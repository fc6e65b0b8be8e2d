import t from 'tap'
import { once } from 'node:events'
import net from 'node:net'
import { RetrySchedule } from '../../lib/agent/retry'
import { sleep, type TapTest } from './helpers'
import { until } from '../helpers/until'

// A backoff that always waits its whole ceiling, here a minute: only a probe can end a wait in a test's time.
function schedule (t: TapTest, port: number): { retry: RetrySchedule, ready: () => number } {
  let ready = 0
  const retry = new RetrySchedule({
    backoffBase: 60_000,
    backoffMax: 60_000,
    probeInterval: 100,
    connectTimeout: 1000,
    random: () => 0.9999,
    pick: () => new URL(`http://127.0.0.1:${port}`),
    ready: () => { ready++ },
    waiting: () => {}
  })
  t.teardown(() => retry.stop())
  return { retry, ready: () => ready }
}

async function listen (port = 0): Promise<{ server: net.Server, port: number, accepted: () => number }> {
  let accepted = 0
  const server = net.createServer((s) => { accepted++; s.destroy() })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as net.AddressInfo).port, accepted: () => accepted }
}

const DROPPED = 'a parked connection was closed: the rendezvous closed it'

// The server goes down and its parked connections with it.
async function dropped (t: TapTest): Promise<{ port: number, retry: RetrySchedule, ready: () => number }> {
  const first = await listen()
  const { retry, ready } = schedule(t, first.port)
  first.server.close()
  await once(first.server, 'close')
  retry.failed(DROPPED, 0, true)
  return { port: first.port, retry, ready }
}

t.test('parked connections dropped by a restart: probes end the wait once the server is back', async (t) => {
  const { port, retry, ready } = await dropped(t)
  t.ok(retry.pending, 'a wait of a minute')
  await sleep(500)
  t.equal(ready(), 0, 'not while the server is down')
  const again = await listen(port)
  t.teardown(() => again.server.close())
  const upAt = Date.now()
  await until(() => ready() === 1, 3000, 'a probe to see the server back')
  t.ok(Date.now() - upAt < 1000, `ended ${Date.now() - upAt} ms after the server came back`)
  t.notOk(retry.pending)
})

t.test('a server that stays up and closes parked connections gets the ordinary backoff', async (t) => {
  const up = await listen()
  t.teardown(() => up.server.close())
  const { retry, ready } = schedule(t, up.port)
  retry.failed(DROPPED, 0, true)
  await until(() => up.accepted() >= 3, 3000, 'probes to find it up')
  await sleep(300)
  t.equal(ready(), 0, 'probes that never saw it down do not end the wait')
  t.ok(retry.pending)
})

t.test('a wait the server asked for (Retry-After) is not ended by probes', async (t) => {
  const { port, retry, ready } = await dropped(t)
  retry.failed('the rendezvous answered 503', 90_000)
  const again = await listen(port)
  t.teardown(() => again.server.close())
  await sleep(1000)
  t.equal(ready(), 0)
  t.ok(retry.pending)
})
