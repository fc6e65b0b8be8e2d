import t from 'tap'
import Fastify from 'fastify'
import rendezvous from '../lib/index'
import { resolveOptions, type RendezvousOptions } from '../lib/options'
import { restoreEnvAfter } from './helpers/fixtures'

t.test('durations are in ms under names without a unit; the old authFailures names still work, with a warning', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  t.same(resolveOptions().authFailures, { perPair: 10, perAddress: 100, perIdTotp: 30, window: 60_000, coolOff: 60_000, roomWait: 2000 })
  t.same(resolveOptions({ authFailures: { window: 5_000, coolOff: 7_000 } }).authFailures, { perPair: 10, perAddress: 100, perIdTotp: 30, window: 5_000, coolOff: 7_000, roomWait: 2000 })
  const old = resolveOptions({ authFailures: { windowMs: 1_000, coolOffMs: 2_000 } }).authFailures
  t.same(old, { perPair: 10, perAddress: 100, perIdTotp: 30, window: 1_000, coolOff: 2_000, roomWait: 2000 }, 'windowMs and coolOffMs are read')
  t.equal(resolveOptions({ authFailures: { window: 3, windowMs: 4 } }).authFailures.window, 3, 'the new name wins')
  t.throws(() => resolveOptions({ authFailures: { windowMs: -1 } }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })

  await new Promise(resolve => setImmediate(resolve))
  const deprecations = warnings.filter(w => (w as NodeJS.ErrnoException).code === 'FST_RENDEZVOUS_DEP_AUTH_FAILURES')
  t.equal(deprecations.length, 2, 'one warning per old name, once per process')
  t.match(deprecations.map(w => w.message).sort(), [/authFailures\.coolOffMs is deprecated: use authFailures\.coolOff/, /authFailures\.windowMs is deprecated: use authFailures\.window/])
})

t.test('the default replay cache holds every token a busy relay accepts within the default skew', async (t) => {
  const o = resolveOptions()
  // An accepted v1 token is kept for its window, skew + 6 s; one relay process parks 2,000 to 3,000 new connections a second (docs/benchmarks.md).
  const window = o.tokenSkew + 6
  t.equal(o.replayCacheSize, 500_000)
  t.ok(o.replayCacheSize / window >= 3_500, `${Math.floor(o.replayCacheSize / window)} new parked connections a second`)
})

t.test('a duration past the longest timer Node keeps is refused, not turned into 1 ms', async (t) => {
  const limit = 2 ** 31 - 1
  t.equal(resolveOptions({ waitTimeout: limit }).waitTimeout, limit, 'the longest timer is fine')
  for (const options of [{ waitTimeout: 3e9 }, { connectTimeout: 5e12 }, { closeGracePeriod: limit + 1 }, { authFailures: { coolOff: 1e10 } }, { authFailures: { roomWait: 1e10 } }, { unknownIdFailures: { window: 1e10 } }]) {
    t.throws(() => resolveOptions(options), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /must be at most 2147483647 ms/ }, JSON.stringify(options))
  }
  t.equal(resolveOptions({ maxParked: 3e9 }).maxParked, 3e9, 'counts are not timers')
})

t.test('a keep-alive delay the kernel would not take is refused, not replaced by the system\'s two hours', async (t) => {
  // Node hands the kernel whole seconds, and Linux takes 1 to 32767 of them; 500 ms became 0 s and 40,000 s was refused by setsockopt, both unsaid.
  for (const keepAliveInitialDelay of [0, 1000, 1500, 32_767_000]) {
    t.equal(resolveOptions({ keepAliveInitialDelay }).keepAliveInitialDelay, keepAliveInitialDelay, `${keepAliveInitialDelay} is taken`)
  }
  for (const keepAliveInitialDelay of [1, 500, 999, 32_767_001, 40_000_000, 3e9]) {
    t.throws(() => resolveOptions({ keepAliveInitialDelay }), {
      code: 'FST_RENDEZVOUS_BAD_OPTION',
      message: `keepAliveInitialDelay must be 0 (the system's) or from 1000 to 32767000 ms (1 s to 32767 s, what the kernel takes; outside it the system's own delay is used unsaid), got ${keepAliveInitialDelay}`
    }, `${keepAliveInitialDelay} is refused`)
  }
})

t.test('an object given for a registry, a store or metrics is checked by name, not left to fail later as a TypeError', async (t) => {
  const cases: Array<[string, Parameters<typeof resolveOptions>[0], RegExp]> = [
    ['registry', { registry: {} as never }, /registry must be an object with ready, get, list, add, remove, onRemove; ready, get, list, add, remove, onRemove missing/],
    ['replayCache', { replayCache: { remember: 1 } as never }, /replayCache must be an object with remember; remember missing/],
    ['throttleStore', { throttleStore: 'redis' as never }, /throttleStore must be an object with hit, block, blockedFor$/],
    ['metrics', { metrics: {} as never }, /metrics must be a prom-client Registry or false/],
    ['replayCacheSize', { replayCacheSize: 0 }, /replayCacheSize must be a positive integer, got 0/],
    // 0 would refuse every CONNECT.
    ['maxParked', { maxParked: 0 }, /maxParked must be a positive integer, got 0/],
    ['maxParkedPerId', { maxParkedPerId: 1.5 }, /maxParkedPerId must be a positive integer, got 1\.5/],
    ['a string', { waitTimeout: '10' as never }, /waitTimeout must be a non-negative number, got the string "10"/]
  ]
  for (const [name, options, message] of cases) {
    t.throws(() => resolveOptions(options), { code: 'FST_RENDEZVOUS_BAD_OPTION', message }, name)
  }
})

t.test('a RENDEZVOUS_SPLICE that names no data path is refused, not taken for auto', async (t) => {
  restoreEnvAfter(t, 'RENDEZVOUS_SPLICE')
  process.env.RENDEZVOUS_SPLICE = 'JS'
  t.throws(() => resolveOptions(), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /RENDEZVOUS_SPLICE must be auto, native or js, got "JS"/ })
  t.equal(resolveOptions({ splice: 'js' }).splice, 'js', 'the option, when given, is what counts')
  process.env.RENDEZVOUS_SPLICE = ''
  t.equal(resolveOptions().splice, 'auto', 'empty is unset')
  process.env.RENDEZVOUS_SPLICE = 'js'
  t.equal(resolveOptions().splice, 'js')
})

const ADMIN = { port: 0, token: 'x'.repeat(16) }

// Each of these was once taken silently: the defaults used, false read, or cluster mode dropped.
const WRONG_TYPES: Array<[string, unknown, string]> = [
  ['authFailures a string', { authFailures: 'x' }, 'authFailures must be an object with any of perPair, perAddress, perIdTotp, window, coolOff, roomWait, got the string "x"'],
  ['authFailures a number', { authFailures: 5 }, 'authFailures must be an object with any of perPair, perAddress, perIdTotp, window, coolOff, roomWait, got 5'],
  ['authFailures an array', { authFailures: [] }, 'authFailures must be an object with any of perPair, perAddress, perIdTotp, window, coolOff, roomWait, got an array'],
  ['authFailures null', { authFailures: null }, 'authFailures must be an object with any of perPair, perAddress, perIdTotp, window, coolOff, roomWait, got null'],
  ['unknownIdFailures a string', { unknownIdFailures: 'x' }, 'unknownIdFailures must be an object with any of perAddress, window, coolOff, got the string "x"'],
  ['unknownIdFailures an array', { unknownIdFailures: [1] }, 'unknownIdFailures must be an object with any of perAddress, window, coolOff, got an array'],
  ['a misspelt authFailures key', { authFailures: { perpair: 3 } }, "authFailures has no 'perpair'; it takes perPair, perAddress, perIdTotp, window, coolOff"],
  ['two unknown authFailures keys', { authFailures: { perPair: 3, windowMS: 1, cooloff: 2 } }, "authFailures has no 'windowMS', 'cooloff'; it takes perPair, perAddress, perIdTotp, window, coolOff"],
  ['a misspelt unknownIdFailures key', { unknownIdFailures: { perAdress: 5 } }, "unknownIdFailures has no 'perAdress'; it takes perAddress, window, coolOff"],
  ['a fractional count', { maxWaiters: 2.5 }, 'maxWaiters must be a whole number, got 2.5'],
  ['a fractional failure count', { authFailures: { perPair: 0.5 } }, 'authFailures.perPair must be a whole number, got 0.5'],
  ['a fractional unknown-ID count', { unknownIdFailures: { perAddress: 1.5 } }, 'unknownIdFailures.perAddress must be a whole number, got 1.5'],
  ['a fractional wait buffer', { maxWaitBuffer: 1024.5 }, 'maxWaitBuffer must be a whole number, got 1024.5'],
  ['an auth-failure window of 0', { authFailures: { window: 0 } }, 'authFailures.window must be more than 0 ms while authFailures.perPair, authFailures.perAddress or authFailures.perIdTotp counts; to turn the throttle off, set authFailures.perPair, authFailures.perAddress and authFailures.perIdTotp to 0'],
  ['an auth-failure window of 0 with one counter on', { authFailures: { window: 0, perPair: 0 } }, 'authFailures.window must be more than 0 ms while authFailures.perAddress or authFailures.perIdTotp counts; to turn the throttle off, set authFailures.perPair, authFailures.perAddress and authFailures.perIdTotp to 0'],
  ['an unknown-ID window of 0', { unknownIdFailures: { window: 0 } }, 'unknownIdFailures.window must be more than 0 ms while unknownIdFailures.perAddress counts; to turn the throttle off, set unknownIdFailures.perAddress to 0'],
  ['metricsPerId a string', { metricsPerId: 'yes' }, 'metricsPerId must be true or false, got the string "yes"'],
  ['metricsPerId 1', { metricsPerId: 1 }, 'metricsPerId must be true or false, got 1'],
  ['cluster without redis', { cluster: { secret: 'a'.repeat(32) } }, 'cluster needs the redis option too (a Redis URL or an ioredis client); without it this node would run alone'],
  ['cluster not an object', { redis: 'redis://127.0.0.1:1', cluster: 'secret' }, 'cluster must be an object with secret and the other cluster options, got the string "secret"'],
  ['cluster null', { redis: 'redis://127.0.0.1:1', cluster: null }, 'cluster must be an object with secret and the other cluster options, got null'],
  ['realm a number', { realm: 5 }, 'realm must be a string of printable ASCII without quotes or backslashes, got 5'],
  ['one path for both routes', { healthPath: '/h', readyPath: '/h' }, 'readyPath must differ from healthPath, both are /h'],
  ['admin true', { admin: true }, 'admin must be an object with port and token, or false, got true'],
  ['admin an array', { admin: [] }, 'admin must be an object with port and token, or false, got an array'],
  ['admin.port a string', { admin: { ...ADMIN, port: '80' } }, 'admin.port must be an integer from 0 to 65535, got the string "80"'],
  ['admin.publicUrl a number', { admin: { ...ADMIN, publicUrl: 5 } }, 'admin.publicUrl must be a URL string or a function that returns one, got 5'],
  ['admin.caFile true', { admin: { ...ADMIN, caFile: true } }, 'admin.caFile must be a non-empty string, the path of a CA file, got true']
]

t.test('an option of the wrong type is refused by name, with what it must be', async (t) => {
  for (const [name, options, message] of WRONG_TYPES) {
    t.throws(() => resolveOptions(options as RendezvousOptions), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: ${message}` }, name)
  }
  const o = resolveOptions({ authFailures: {}, unknownIdFailures: {}, metricsPerId: true, healthPath: '/healthz', readyPath: '/readyz' })
  t.same([o.authFailures.perPair, o.unknownIdFailures.perAddress, o.metricsPerId], [10, 100, true], 'empty limits objects and a boolean are fine')
  t.equal(resolveOptions({ metricsPerId: false }).metricsPerId, false)
  const off = resolveOptions({ authFailures: { perPair: 0, perAddress: 0, perIdTotp: 0, coolOff: 0, windowMs: 500, roomWait: 0 }, unknownIdFailures: { perAddress: 0 }, maxWaiters: 0, waitTimeout: 2.5 })
  t.same([off.authFailures, off.unknownIdFailures.perAddress, off.maxWaiters, off.waitTimeout],
    [{ perPair: 0, perAddress: 0, perIdTotp: 0, window: 500, coolOff: 0, roomWait: 0 }, 0, 0, 2.5], 'counts of 0, a cool-off and a room wait of 0, the old window name and a fractional duration are fine')
  const none = resolveOptions({ authFailures: { perPair: 0, perAddress: 0, perIdTotp: 0, window: 0 }, unknownIdFailures: { perAddress: 0, window: 0 } })
  t.same([none.authFailures.window, none.unknownIdFailures.window], [0, 0], 'a window of 0 with its counters off is fine')
  t.equal(resolveOptions({ admin: { ...ADMIN, publicUrl: () => 'https://relay.example', caFile: '/etc/ca.pem' } })?.admin?.caFile, '/etc/ca.pem')
})

t.test('registering the plugin with a wrongly typed option fails with the option error', async (t) => {
  for (const [name, options, message] of WRONG_TYPES) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(rendezvous, options as RendezvousOptions); await app.ready() },
      { code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: ${message}` }, name)
    await app.close().catch(() => {})
  }
})

t.test('a count that must be at least 1 says so, whatever the wrong value', async (t) => {
  for (const name of ['maxParked', 'maxParkedPerId', 'replayCacheSize'] as const) {
    for (const [value, got] of [[-5, '-5'], [0, '0'], [1.5, '1.5'], ['3', 'the string "3"'], [Number.NaN, 'NaN']] as const) {
      t.throws(() => resolveOptions({ [name]: value }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: ${name} must be a positive integer, got ${got}` }, `${name} ${got}`)
    }
    t.equal(resolveOptions({ [name]: 1 })[name], 1)
  }
})

t.test('ipv6Subnet is a prefix length from 1 to 128; maxConnections a whole count, 0 for no cap', async (t) => {
  for (const [value, message] of [[0, 'must be a positive integer, got 0'], [129, 'must be a prefix length from 1 to 128, got 129'], [48.5, 'must be a positive integer, got 48.5'], ['64', 'must be a positive integer, got the string "64"']] as const) {
    t.throws(() => resolveOptions({ ipv6Subnet: value as number }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: `Invalid rendezvous option: ipv6Subnet ${message}` }, `ipv6Subnet ${String(value)}`)
  }
  t.same([resolveOptions({}).ipv6Subnet, resolveOptions({ ipv6Subnet: 128 }).ipv6Subnet, resolveOptions({ ipv6Subnet: 1 }).ipv6Subnet], [64, 128, 1])
  t.throws(() => resolveOptions({ maxConnections: 2.5 }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: 'Invalid rendezvous option: maxConnections must be a whole number, got 2.5' })
  t.throws(() => resolveOptions({ maxConnections: -1 }), { code: 'FST_RENDEZVOUS_BAD_OPTION' })
  t.same([resolveOptions({}).maxConnections, resolveOptions({ maxConnections: 5 }).maxConnections], [0, 5], 'off in the plugin unless given')
})
