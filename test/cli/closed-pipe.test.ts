import https from 'node:https'
import t from 'tap'
import { startWorld, type World } from '../helpers/e2e'

function relayed (world: World): Promise<number> {
  const auth = `Basic ${Buffer.from(`${world.creds.id}:x`).toString('base64')}`
  return new Promise((resolve, reject) => {
    const req = https.get(`${world.rv.url}/headers`, { ca: world.rv.ca, agent: false, timeout: 15_000, headers: { authorization: auth } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
  })
}

// `agent ... | head -1`, or a log shipper that restarts: the reader of stdout and stderr goes away.
t.test('serve and agent keep relaying after their stdout and stderr pipes close', async (t) => {
  const world = await startWorld(t, { pool: 2, parked: 2 })
  t.equal(await relayed(world), 200, 'relayed before')
  for (const proc of [world.rv.proc, world.agent]) {
    proc.child.stdout?.destroy()
    proc.child.stderr?.destroy()
  }
  // Each relayed request makes both processes write log lines into the closed pipes.
  for (let i = 0; i < 3; i++) t.equal(await relayed(world), 200, `relayed after the pipes closed (${i + 1})`)
  t.notOk(world.rv.proc.done(), 'serve is still running')
  t.notOk(world.agent.done(), 'the agent is still running')
  t.same(await world.agent.stop('SIGTERM'), { code: 0, signal: null }, 'the agent still closes cleanly')
  t.same(await world.rv.proc.stop('SIGTERM'), { code: 0, signal: null }, 'serve still closes cleanly')
})
