import t from 'tap'
import { decodeSecret, isValidSecret } from '../../lib/registry/ids'
import { MemoryRegistry } from '../../lib/registry/memory-registry'
import { SECRET } from '../helpers/fixtures'

t.test('add generates a UUID and a 20-byte base32 secret', async (t) => {
  const registry = new MemoryRegistry()
  await registry.ready()
  const record = await registry.add()
  t.match(record.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  t.ok(isValidSecret(record.secret))
  t.equal(decodeSecret(record.secret).length, 20)
  t.ok(!Number.isNaN(Date.parse(record.createdAt)))
  t.same(registry.get(record.id), record)
  t.not((await registry.add()).secret, record.secret, 'secrets are random')
})

t.test('IDs are canonical lower case and matched case-insensitively', async (t) => {
  const registry = new MemoryRegistry()
  const record = await registry.add({ id: 'Hidden.Server-1', secret: SECRET })
  t.equal(record.id, 'hidden.server-1')
  t.equal(record.secret, SECRET)
  t.equal(registry.get('HIDDEN.SERVER-1'), record)
  // U+212A KELVIN SIGN lower-cases to "k": it must not alias the ID "k".
  await registry.add({ id: 'k' })
  t.equal(registry.get('\u212A'), undefined)
  t.equal(registry.get('not/valid'), undefined)
})

t.test('add validates and refuses duplicates', async (t) => {
  const registry = new MemoryRegistry()
  await t.rejects(registry.add({ id: '' }), { code: 'FST_RENDEZVOUS_INVALID_ID' })
  await t.rejects(registry.add({ id: 'a'.repeat(129) }), { code: 'FST_RENDEZVOUS_INVALID_ID' })
  await t.rejects(registry.add({ id: 'has space' }), { code: 'FST_RENDEZVOUS_INVALID_ID' })
  await t.rejects(registry.add({ id: 42 as unknown as string }), { code: 'FST_RENDEZVOUS_INVALID_ID' })
  await t.rejects(registry.add({ secret: 'JBSWY3DP' }), { code: 'FST_RENDEZVOUS_INVALID_SECRET' }, 'under 20 bytes')
  await t.rejects(registry.add({ secret: SECRET + 'A' }), { code: 'FST_RENDEZVOUS_INVALID_SECRET', message: /33 characters is not a possible length/ })
  await t.rejects(registry.add({ secret: 12345 as unknown as string }), { code: 'FST_RENDEZVOUS_INVALID_SECRET', message: /must be a string/ })
  t.equal((await registry.add({ id: 'lower', secret: SECRET.toLowerCase() })).secret, SECRET, 'lower case is made upper case')
  t.equal((await registry.add({ id: 'padded', secret: SECRET + 'JBSWY3A=' })).secret, SECRET + 'JBSWY3A', 'padding is dropped')
  // 39 characters hold 24 bytes and 3 bits of no byte: D (00011) sets them, A is the same key.
  t.equal((await registry.add({ id: 'bits', secret: SECRET + 'JBSWY3D' })).secret, SECRET + 'JBSWY3A', 'bits past the last byte are zeroed')
  t.ok(await registry.add({ id: 'a'.repeat(128) }))
  await registry.add({ id: 'dup' })
  await t.rejects(registry.add({ id: 'DUP' }), { code: 'FST_RENDEZVOUS_ID_EXISTS' })
  t.same((await registry.list()).map((r) => r.id).sort(), ['a'.repeat(128), 'bits', 'dup', 'lower', 'padded'])
})

t.test('remove fires onRemove listeners and unsubscribing stops them', async (t) => {
  const registry = new MemoryRegistry()
  await registry.add({ id: 'one' })
  await registry.add({ id: 'two' })
  const seen: string[] = []
  const other: string[] = []
  const off = registry.onRemove((id) => seen.push(id))
  registry.onRemove((id) => other.push(id))
  t.equal(await registry.remove('ONE'), true)
  t.equal(await registry.remove('one'), false)
  t.equal(await registry.remove('no/such'), false)
  t.same(seen, ['one'])
  off()
  await registry.remove('two')
  t.same(seen, ['one'])
  t.same(other, ['one', 'two'])
  t.equal(registry.get('one'), undefined)
  t.same(await registry.list(), [])
})

t.test('a throwing listener neither stops the others nor fails remove', async (t) => {
  const registry = new MemoryRegistry()
  await registry.add({ id: 'x' })
  const warnings: string[] = []
  const onWarning = (w: Error): void => { warnings.push(w.message) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const seen: string[] = []
  registry.onRemove(() => { throw new Error('boom') })
  registry.onRemove((id) => seen.push(id))
  t.equal(await registry.remove('x'), true)
  t.same(seen, ['x'])
  await new Promise((resolve) => setImmediate(resolve))
  t.match(warnings, [/boom/])
})

t.test('list is sorted by creation time, and close resolves', async (t) => {
  const registry = new MemoryRegistry()
  await registry.add({ id: 'zzz' })
  await new Promise((resolve) => setTimeout(resolve, 5))
  await registry.add({ id: 'aaa' })
  t.same((await registry.list()).map((r) => r.id), ['zzz', 'aaa'])
  await registry.close()
})

t.test('a rotation with an overlap keeps parked connections; one without cuts them off, as the file and Redis registries do', async (t) => {
  const registry = new MemoryRegistry()
  await registry.add({ id: 'hub-1' })
  const seen: string[] = []
  registry.onRemove((id) => seen.push(id))
  await registry.rotate('hub-1', { overlapMs: 60_000 })
  t.same(seen, [], 'the old secret is still accepted')
  await registry.rotate('hub-1', { overlapMs: 0 })
  t.same(seen, ['hub-1'], 'the old secret is cut off')
})
