import t from 'tap'
import https from 'node:https'
import { connect, type Socket } from 'node:net'
import { addId, startAgent, startServe, startWorld, type Rendezvous } from '../helpers/e2e'
import { startHiddenSite } from '../helpers/hidden-site'
import { until } from '../helpers/until'

/*
 * Whole processes that die: the agent, the rendezvous itself, and a relay
 * that runs out of file descriptors. Each must come back by itself.
 */

/** GET `path` on the hidden server through the rendezvous; resolves with the status (0 when the connection failed). */
async function through (rv: Rendezvous, id: string, path = '/blob?size=1000&seed=f'): Promise<number> {
  return await new Promise(resolve => {
    const req = https.get(`${rv.url}${path}`, { ca: rv.ca, agent: false, timeout: 10_000, headers: { authorization: `Digest username="${id}"` } }, res => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(0))
  })
}

t.test('the agent killed and restarted: 503 while it is gone, then relayed again', async t => {
  const world = await startWorld(t, { waitTimeout: 1 })
  const { rv, creds } = world
  t.equal(await through(rv, creds.id), 200)
  await world.agent.kill()
  await rv.waitHealth(h => h.parked === 0, 'the killed agent\'s connections to go')
  t.equal(await through(rv, creds.id), 503)
  await startAgent(t, rv, creds, world.site.url)
  t.equal(await through(rv, creds.id), 200)
})

t.test('the rendezvous restarted on its port: agents come back by themselves', async t => {
  const world = await startWorld(t)
  const { rv, creds } = world
  t.equal(await through(rv, creds.id), 200)
  await rv.proc.stop('SIGTERM')
  const again = await startServe(t, { dataDir: rv.dataDir, port: rv.port })
  await again.waitHealth(h => (h.parked ?? 0) >= 1, 'the agent to park again', 30_000)
  t.equal(await through(again, creds.id), 200)
  t.notOk(world.agent.done(), 'the agent never exited')
})

t.test('out of file descriptors: the relay survives, and serves again once the load goes', async t => {
  const site = await startHiddenSite(t)
  const rv = await startServe(t, { wrapper: ['prlimit', '--nofile=64:64'], extraArgs: ['--max-connections-per-address', '0'] })
  const creds = await addId(t, rv.dataDir)
  await startAgent(t, rv, creds, site.url)
  const flood: Socket[] = []
  t.teardown(() => { for (const s of flood) s.destroy() })
  for (let i = 0; i < 120; i++) {
    const s = connect({ port: rv.port, host: '127.0.0.1' })
    s.on('error', () => {})
    flood.push(s)
  }
  await until(() => flood.every(s => !s.connecting), 10_000, 'every flood connection to settle')
  t.not(await through(rv, creds.id), 200, 'while flooded, nothing more gets through')
  t.notOk(rv.proc.done(), 'the relay is still running')
  for (const s of flood) s.destroy()
  await rv.waitHealth(h => (h.parked ?? 0) >= 1, 'the agent to park again', 30_000)
  t.equal(await through(rv, creds.id), 200)
  t.notOk(rv.proc.done(), 'the relay never exited')
})
