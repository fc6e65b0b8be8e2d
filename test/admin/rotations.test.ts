import t, { type Test } from 'tap'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createTotp, FileRegistry } from '../../lib/index'
import { startRendezvous as startRelay, untilParked, type TestRendezvous as Relay } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { api, TOKEN, parks } from './helpers'

// Rotations through the admin API, as an operator does them on `serve`:
// every rotated-out secret keeps the deadline its rotation answered with.

const ADMIN = { port: 0, token: TOKEN }

// A TOTP code instead of a v1 token: the old secrets are tried for both.
async function parksWithCode (relay: Relay, id: string, secret: string): Promise<string> {
  const wire = await relay.open()
  wire.write(`CONNECT uuid:${id}?response=${createTotp(secret)} HTTP/1.1\r\nHost: h\r\n\r\n`)
  await wire.untilText('\r\n\r\n')
  wire.socket.destroy()
  return wire.text.split('\r\n')[0]!
}

async function relayOnDisk (t: Test): Promise<{ relay: Relay, onDisk: () => Promise<any> }> {
  const dir = t.testdir()
  const registry = new FileRegistry({ dataDir: dir })
  await registry.add({ id: 'hub-1', secret: SECRET })
  const relay = await startRelay({ ids: [], plugin: { admin: ADMIN, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  return { relay, onDisk: async () => JSON.parse(await readFile(join(dir, 'ids.json'), 'utf8')).ids['hub-1'] }
}

t.test('a second rotation inside the first one\'s overlap keeps the first secret until the deadline the first promised', async t => {
  const { relay, onDisk } = await relayOnDisk(t)
  const parkedWithA = await relay.park('hub-1', SECRET)
  await untilParked(relay, 1)
  const first = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 600 })
  t.equal(first.status, 200)
  const second = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 600 })
  t.equal(second.status, 200)
  const [b, c] = [first.body.secret as string, second.body.secret as string]
  t.ok(second.body.previousSecretUntil >= first.body.previousSecretUntil, 'the answer names the deadline of the secret it replaced')
  t.equal(relay.app.rendezvous.parkedFor('hub-1'), 1, 'what parked with the first secret stays, as it is still accepted')

  t.ok(await parks(relay, 'hub-1', SECRET), 'the first secret still parks: its overlap has not ended')
  t.ok(await parks(relay, 'hub-1', b), 'the second too')
  t.ok(await parks(relay, 'hub-1', c), 'and the new one')
  t.equal(await parksWithCode(relay, 'hub-1', SECRET), 'HTTP/1.1 200 OK', 'a TOTP code of the first secret too')

  const listed = (await api(relay, 'GET', '/api/ids')).body.ids[0]
  t.same(listed.previousSecretsUntil, [first.body.previousSecretUntil, second.body.previousSecretUntil], 'the list shows both deadlines')
  t.equal(listed.previousSecretUntil, second.body.previousSecretUntil, 'and until when some old secret is accepted')
  t.same(await onDisk(), {
    secret: c,
    createdAt: relay.app.rendezvous.registry.get('hub-1')?.createdAt,
    previousSecret: b,
    previousExpiresAt: second.body.previousSecretUntil,
    olderSecrets: [{ secret: SECRET, expiresAt: first.body.previousSecretUntil }]
  }, 'the secret the last rotation replaced where it always was, the earlier one beside it')
  parkedWithA.socket.destroy()
})

t.test('an overlap-0 rotation revokes every old secret at once, and closes what parked with any of them', async t => {
  const { relay, onDisk } = await relayOnDisk(t)
  const parkedWithA = await relay.park('hub-1', SECRET)
  await untilParked(relay, 1)
  const first = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 600 })
  const b = first.body.secret as string
  const parkedWithB = await relay.park('hub-1', b)
  await untilParked(relay, 2)
  const cut = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 0 })
  t.equal(cut.status, 200)
  t.equal(cut.body.previousSecretUntil, null, 'nothing of the replaced secret is kept')
  await Promise.all([parkedWithA.untilClosed(), parkedWithB.untilClosed()])
  t.pass('what parked with the first secret is closed, and what parked with the second')
  t.notOk(await parks(relay, 'hub-1', SECRET), 'the first secret is refused at once, though its own overlap has not ended')
  t.notOk(await parks(relay, 'hub-1', b), 'the replaced one too')
  t.equal(await parksWithCode(relay, 'hub-1', SECRET), 'HTTP/1.1 401 Unauthorized', 'a TOTP code of the first secret too')
  t.equal(await parksWithCode(relay, 'hub-1', b), 'HTTP/1.1 401 Unauthorized', 'and of the second')
  t.ok(await parks(relay, 'hub-1', cut.body.secret), 'the new secret parks')
  t.same((await api(relay, 'GET', '/api/ids')).body.ids[0], { id: 'hub-1', createdAt: relay.app.rendezvous.registry.get('hub-1')?.createdAt, parked: 0, waiting: 0, spliced: 0 }, 'no old secret listed')
  t.same(Object.keys(await onDisk()).sort(), ['createdAt', 'secret'], 'and none on disk')
})

t.test('a rotation to the current secret is refused with 400, and changes nothing', async t => {
  const { relay, onDisk } = await relayOnDisk(t)
  const first = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 600 })
  const before = await onDisk()
  // Lower case and spaces: the same secret as the registry keeps it, once made canonical.
  const typed = (first.body.secret as string).toLowerCase().replace(/(.{8})/g, '$1 ')
  const same = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 60, secret: typed })
  t.same([same.status, same.body], [400, { error: 'bad_request', message: 'The ID hub-1 already has this secret: a rotation must give it another one (or none, to have one generated)' }])
  t.same(await onDisk(), before, 'nothing written: the first secret keeps its deadline')
  const listed = (await api(relay, 'GET', '/api/ids')).body.ids[0]
  t.same(listed.previousSecretsUntil, [first.body.previousSecretUntil])
  t.ok(await parks(relay, 'hub-1', SECRET), 'the first secret still parks')

  const back = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 60, secret: SECRET })
  t.equal(back.status, 200, 'a rotation back to an old secret is taken')
  t.equal(back.body.previousSecretUntil, (await onDisk()).previousExpiresAt, 'and answers with the deadline of the secret it replaced')
  t.ok(Date.parse(back.body.previousSecretUntil) < Date.parse(first.body.previousSecretUntil), 'its own 60 s, not the 600 s of another')
})

t.test('past four old secrets still accepted, a rotation is refused with 409 naming the first deadline, and changes nothing', async t => {
  const { relay, onDisk } = await relayOnDisk(t)
  const answers = []
  for (let i = 0; i < 4; i++) answers.push(await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 600 - i }))
  t.same(answers.map(a => a.status), [200, 200, 200, 200])
  const before = await onDisk()
  const refused = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 600 })
  t.equal(refused.status, 409)
  t.equal(refused.body.error, 'conflict')
  const next = answers[3]!.body.previousSecretUntil as string
  t.equal(refused.body.message, `The ID hub-1 already has 4 old secrets still accepted, the next to expire at ${next}: rotate again after that, or now with an overlap of 0, which revokes every old secret at once`)
  t.same(await onDisk(), before, 'nothing written')
  const cut = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 0 })
  t.equal(cut.status, 200, 'an overlap of 0 adds no old secret, and is taken')
  t.notOk(await parks(relay, 'hub-1', SECRET), 'and it revokes the old ones, as the message says')
  t.same(Object.keys(await onDisk()).sort(), ['createdAt', 'secret'])
})
