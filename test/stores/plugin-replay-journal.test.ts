import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import t from 'tap'
import rendezvous, { FileRegistry, MemoryReplayCache, type RendezvousOptions } from '../../lib/index'
import { createV1Token } from '../../lib/tokens/v1'
import { SECRET } from '../helpers/fixtures'
import { openWire, statusOf } from '../helpers/wire'

// The plugin's own `dataDir` journals accepted tokens as serve does
// (test/cli/serve-replay.test.ts), unless the app brings a replay cache.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function dataDirWithId (t: Test): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'rv-plugin-journal-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dir = join(root, 'data')
  const registry = new FileRegistry({ dataDir: dir })
  await registry.add({ id: 'hub-1', secret: SECRET })
  await registry.close()
  return dir
}

/** Starts an app on `opts`, answers one CONNECT with `token`, closes the app: the status. */
async function connectOnce (opts: RendezvousOptions, token: string): Promise<number> {
  const app = Fastify({ logger: false })
  await app.register(rendezvous, opts)
  await app.listen({ port: 0, host: '127.0.0.1' })
  try {
    const { port } = app.server.address() as { port: number }
    const hidden = await openWire(port, false)
    hidden.write(`CONNECT uuid:hub-1?response=${token} HTTP/1.1\r\nHost: h\r\n\r\n`)
    await hidden.untilText('\r\n\r\n', 10_000)
    hidden.destroy()
    return statusOf(hidden.text) ?? 0
  } finally {
    await app.close()
  }
}

t.test('with dataDir, a token accepted by one app is refused by the next on the same dir', async t => {
  const dataDir = await dataDirWithId(t)
  const token = createV1Token('hub-1', SECRET)
  t.equal(await connectOnce({ dataDir }, token), 200)
  t.equal(await connectOnce({ dataDir }, token), 401)
  t.equal(await connectOnce({ dataDir }, createV1Token('hub-1', SECRET)), 200, 'a new token is accepted')
})

t.test('a replay cache of the app\'s own is used as it is, without a journal', async t => {
  const dataDir = await dataDirWithId(t)
  const token = createV1Token('hub-1', SECRET)
  t.equal(await connectOnce({ dataDir, replayCache: new MemoryReplayCache() }, token), 200)
  t.same(readdirSync(dataDir).filter(name => name.includes('journal')), [], 'no journal written')
  t.equal(await connectOnce({ dataDir, replayCache: new MemoryReplayCache() }, token), 200, 'its cache, its choice')
})
