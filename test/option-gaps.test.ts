import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import rendezvous, { MemoryRegistry, type RendezvousOptions } from '../lib/index'
import { resolveOptions } from '../lib/options'
import { SERVE_TABLE } from '../lib/cli/serve-table'
import { createV1Token } from '../lib/tokens/v1'
import { MemoryReplayCache } from '../lib/stores/memory-replay-cache'
import type { ReplayCache } from '../lib/stores/replay-cache'
import { startRendezvous, type TestRendezvous } from './helpers/rendezvous'
import { SECRET } from './helpers/fixtures'
import { connectOnce } from './helpers/wire'
import { api, TOKEN } from './admin/helpers'

/*
 * Values the plugin took and then misbehaved with, where `serve` refused
 * the same value: each is now refused when the plugin is registered.
 */

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

async function registered (t: Test, options: RendezvousOptions): Promise<unknown> {
  const app = Fastify()
  t.teardown(async () => { await app.close().catch(() => {}) })
  try {
    await app.register(rendezvous, { registry: new MemoryRegistry(), ...options })
    await app.ready()
    return undefined
  } catch (err) {
    return err
  }
}

/** Whether serve's parser of `key` takes `raw`, as the command line would. */
function serveTakes (key: string, raw: string): boolean {
  const spec = SERVE_TABLE.find(o => o.key === key) as { parse: (raw: string) => unknown } | undefined
  if (spec === undefined) throw new Error(`no serve option ${key}`)
  try {
    spec.parse(raw)
    return true
  } catch {
    return false
  }
}

function pluginTakes (options: RendezvousOptions): boolean {
  try {
    resolveOptions(options)
    return true
  } catch {
    return false
  }
}

/** A replay cache that answers after 2 ms, as one in Redis does. */
class SlowCache implements ReplayCache {
  readonly inner = new MemoryReplayCache()
  async remember (key: string, ttlMs: number): ReturnType<ReplayCache['remember']> {
    await new Promise(resolve => setTimeout(resolve, 2))
    return await this.inner.remember(key, ttlMs)
  }
}

t.test('connectTimeout 0 is refused: it answered 408 to every CONNECT whose token check took any time, while /readyz said ready', async t => {
  const err = await registered(t, { connectTimeout: 0, replayCache: new SlowCache() })
  t.match(err, {
    code: 'FST_RENDEZVOUS_BAD_OPTION',
    message: 'Invalid rendezvous option: connectTimeout must be more than 0 ms (0 answers 408 to every CONNECT whose token check takes any time, such as an async verifyToken or a replay cache in Redis), got 0'
  })
  t.equal(serveTakes('connectTimeout', '0'), false, 'as serve --connect-timeout 0 is')
  // The least the plugin takes parks a CONNECT whose cache answers at once, and 1 ms is serve's least too.
  t.equal(serveTakes('connectTimeout', '0.001'), true)
  const relay = await startRendezvous({ plugin: { connectTimeout: 5000, replayCache: new SlowCache() } })
  t.teardown(relay.close)
  const answer = await connectOnce(relay.port, 'hub-1', createV1Token('hub-1', SECRET))
  t.equal(answer.status, 200, 'a CONNECT whose check takes 2 ms parks within a timeout above 0')
})

t.test('tokenSkew is refused where serve --token-skew is: above a day, or not whole seconds', async t => {
  for (const tokenSkew of [0, 1, 120, 86_400]) {
    t.equal(resolveOptions({ tokenSkew }).tokenSkew, tokenSkew, `${tokenSkew} is taken`)
    t.ok(serveTakes('tokenSkew', String(tokenSkew)), `serve takes ${tokenSkew}`)
  }
  for (const tokenSkew of [86_401, 1e9, 1.5, -1]) {
    t.throws(() => resolveOptions({ tokenSkew }), {
      code: 'FST_RENDEZVOUS_BAD_OPTION',
      message: `Invalid rendezvous option: tokenSkew must be a whole number of seconds from 0 to 86400 (a day: a wider skew is no clock difference but a second lifetime for every token), got ${tokenSkew}`
    }, `${tokenSkew} is refused`)
  }
  for (const raw of ['86401', '1.5']) t.notOk(serveTakes('tokenSkew', raw), `serve refuses ${raw} too`)
  t.match(await registered(t, { tokenSkew: 86_401 }), { code: 'FST_RENDEZVOUS_BAD_OPTION' }, 'at registration')
})

t.test('plugin and serve agree at the edges of the ranges they share', async t => {
  const edges: Array<[string, string, RendezvousOptions]> = [
    ['connectTimeout', '0', { connectTimeout: 0 }],
    ['connectTimeout', '0.001', { connectTimeout: 1 }],
    ['tokenSkew', '86400', { tokenSkew: 86_400 }],
    ['tokenSkew', '86401', { tokenSkew: 86_401 }],
    ['adminRotateOverlap', '604800', { admin: { port: 0, token: TOKEN, rotateOverlap: 604_800_000 } }],
    ['adminRotateOverlap', '604801', { admin: { port: 0, token: TOKEN, rotateOverlap: 604_801_000 } }],
    ['adminRotateOverlap', '0', { admin: { port: 0, token: TOKEN, rotateOverlap: 0 } }],
    ['authFailuresCoolOff', '0', { authFailures: { coolOff: 0 } }],
    ['unknownIdFailuresCoolOff', '0', { unknownIdFailures: { coolOff: 0 } }]
  ]
  for (const [key, raw, options] of edges) {
    t.equal(pluginTakes(options), serveTakes(key, raw), `${key} ${raw}: ${serveTakes(key, raw) ? 'both take it' : 'both refuse it'}`)
  }
})

t.test('a throttle cool-off of 0 while its counters count is refused: no limit would ever refuse, the throttle off unsaid', async t => {
  t.throws(() => resolveOptions({ authFailures: { coolOff: 0 } }), {
    code: 'FST_RENDEZVOUS_BAD_OPTION',
    message: 'Invalid rendezvous option: authFailures.coolOff must be more than 0 ms while authFailures.perPair, authFailures.perAddress or authFailures.perIdTotp counts; to turn the throttle off, set authFailures.perPair, authFailures.perAddress and authFailures.perIdTotp to 0'
  })
  t.throws(() => resolveOptions({ unknownIdFailures: { perAddress: 5, coolOff: 0 } }), {
    code: 'FST_RENDEZVOUS_BAD_OPTION',
    message: 'Invalid rendezvous option: unknownIdFailures.coolOff must be more than 0 ms while unknownIdFailures.perAddress counts; to turn the throttle off, set unknownIdFailures.perAddress to 0'
  })
  t.equal(resolveOptions({ unknownIdFailures: { perAddress: 0, coolOff: 0 } }).unknownIdFailures.coolOff, 0, 'with its counters off, a cool-off of 0 says the same')
  t.match(await registered(t, { authFailures: { perPair: 1, coolOff: 0 } }), { code: 'FST_RENDEZVOUS_BAD_OPTION' }, 'at registration')
})

async function adminRelay (t: Test, admin: Partial<NonNullable<Exclude<RendezvousOptions['admin'], false>>>, logs?: string[]): Promise<TestRendezvous> {
  const relay = await startRendezvous({
    plugin: { admin: { port: 0, token: TOKEN, ...admin } },
    ...(logs === undefined ? {} : { fastify: { logger: { level: 'warn', stream: { write: (line: string) => { logs.push(line) } } } } })
  })
  t.teardown(relay.close)
  return relay
}

t.test('admin.rotateOverlap past a week is refused: every rotation that took it as its default got 400', async t => {
  t.match(await registered(t, { admin: { port: 0, token: TOKEN, rotateOverlap: 8 * 86_400_000 } }), {
    code: 'FST_RENDEZVOUS_BAD_OPTION',
    message: 'Invalid rendezvous option: admin.rotateOverlap must be a number of ms from 0 to 604800000 (a week, the longest overlap a rotation takes), got 691200000'
  })
  // The longest taken is one the API takes as a default.
  const relay = await adminRelay(t, { rotateOverlap: 604_800_000 })
  const rotated = await api(relay, 'POST', '/api/ids/hub-1/rotate', {})
  t.equal(rotated.status, 200, JSON.stringify(rotated.body))
  t.ok(Date.parse(rotated.body.previousSecretUntil) - Date.now() > 604_700_000, 'the old secret stays a week')
})

t.test('admin.publicUrl must be an http:// or https:// URL the agent takes as its --server', async t => {
  const must = 'admin.publicUrl must be an http:// or https:// URL of the relay without a path or query, as rendezvous agent --server takes it'
  for (const publicUrl of ['not a url', 'ftp://x/y', 'relay.example:8443', 'https://relay.example/rendezvous', 'https://relay.example/?x=1', 'https://relay.example:0/']) {
    t.match(await registered(t, { admin: { port: 0, token: TOKEN, publicUrl } }), {
      code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: ${must}, got the string ${JSON.stringify(publicUrl)}`
    }, publicUrl)
  }
  for (const [publicUrl, written] of [['https://relay.example', 'https://relay.example'], ['http://10.0.0.1:8080/', 'http://10.0.0.1:8080/'], ['https://[::1]:8443/', "'https://[::1]:8443/'"]]) {
    const relay = await adminRelay(t, { publicUrl })
    const added = await api(relay, 'POST', '/api/ids', {})
    t.equal(added.status, 201)
    t.match(added.body.agentCommand, ` agent --server ${written!} `, `${publicUrl!} is taken, and goes into the agent command as it is`)
  }
})

t.test('a publicUrl function whose answer the agent would refuse gives the placeholder and a warning, and the new secret still reaches the user', async t => {
  const answers: Array<[string, () => string, RegExp]> = [
    ['junk', () => 'also not a url', /admin\.publicUrl \(a function\) is not an absolute URL: \\"also not a url\\"; the agent command names https:\/\/HOST:8443\/ instead/],
    ['ftp', () => 'ftp://x/y', /admin\.publicUrl \(a function\) is ftp:\/\/, not https:\/\/ or http:\/\/: ftp:\/\/x\/y;/],
    ['a throw', () => { throw new Error('not bound yet') }, /admin\.publicUrl \(a function\) threw not bound yet;/]
  ]
  for (const [name, publicUrl, warning] of answers) {
    const logs: string[] = []
    const relay = await adminRelay(t, { publicUrl }, logs)
    const added = await api(relay, 'POST', '/api/ids', {})
    t.equal(added.status, 201, `${name}: the ID is added and answered`)
    t.match(added.body.agentCommand, / agent --server https:\/\/HOST:8443\/ --id=/, `${name}: the placeholder, for the user to fill in`)
    t.match(logs.join(''), warning, `${name}: said in the log`)
    const rotated = await api(relay, 'POST', `/api/ids/${added.body.id as string}/rotate`, {})
    t.equal(rotated.status, 200, `${name}: a rotation is answered too`)
    t.match(rotated.body.agentCommand, / agent --server https:\/\/HOST:8443\/ /)
  }
  const good = await adminRelay(t, { publicUrl: () => 'https://relay.example:9443' })
  t.match((await api(good, 'POST', '/api/ids', {})).body.agentCommand, ' agent --server https://relay.example:9443 ', 'a good answer is used as it is')
})

t.test('a data dir that cannot be created or is no directory fails registration with FST_RENDEZVOUS_DATA_DIR, naming it and why', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-datadir-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'a-file')
  writeFileSync(file, 'x')
  const cases: Array<[string, string]> = [
    ['/proc/rendezvous-nonexistent/x', 'cannot create /proc/rendezvous-nonexistent: no such file or directory'],
    [join(file, 'x', 'y'), `${file} is a file, not a directory`],
    [file, 'it is a file, not a directory']
  ]
  for (const [dataDir, why] of cases) {
    t.match(await registered(t, { dataDir, registry: undefined }), { code: 'FST_RENDEZVOUS_DATA_DIR', message: `The data dir ${dataDir} cannot be used: ${why}` }, dataDir)
    // With a replay cache of the app's own, only the registry is in the data dir: the same error.
    t.match(await registered(t, { dataDir, registry: undefined, replayCache: new MemoryReplayCache() }), { code: 'FST_RENDEZVOUS_DATA_DIR' }, `${dataDir}, the registry alone`)
  }
  const fresh = join(dir, 'new', 'data')
  t.equal(await registered(t, { dataDir: fresh, registry: undefined }), undefined, 'a data dir that can be made is made')
})
