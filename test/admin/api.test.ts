import t from 'tap'
import { FileRegistry } from '../../lib/index'
import { startRendezvous as startRelay, untilParked } from '../helpers/rendezvous'
import { SECRET } from '../helpers/fixtures'
import { adminUrl, api, idsCli, TOKEN, parks } from './helpers'
import { until } from '../helpers/until'

const ADMIN = { port: 0, token: TOKEN, publicUrl: 'https://relay.example:8443/' }

t.test('the admin API refuses without the right bearer token, and is not on the public port', async t => {
  const relay = await startRelay({ plugin: { admin: ADMIN } })
  t.teardown(relay.close)
  t.not(relay.app.rendezvous.adminAddress()?.port, relay.port)
  for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${TOKEN}x` }, { authorization: `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}` }, { authorization: 'Bearer' }]) {
    for (const [method, path] of [['GET', '/api/ids'], ['POST', '/api/ids'], ['DELETE', '/api/ids/hub-1'], ['POST', '/api/ids/hub-1/rotate'], ['POST', '/api/ids/hub-1/disconnect']]) {
      const res = await fetch(adminUrl(relay, path), { method, headers })
      t.equal(res.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`)
      t.equal(res.headers.get('www-authenticate'), 'Bearer realm="rendezvous-admin"')
    }
  }
  t.ok(relay.registry.get('hub-1'), 'nothing was removed')
  t.equal((await fetch(`http://127.0.0.1:${relay.port}/api/ids`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 401, 'the public port only challenges')
  const page = await fetch(adminUrl(relay, '/'))
  t.equal(page.status, 200, 'the page itself holds nothing and loads without the token')
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/)
})

t.test('an admin token shorter than 16 characters is refused', async t => {
  await t.rejects(startRelay({ plugin: { admin: { port: 0, token: 'short' } } }), /admin\.token/)
})

t.test('list, add, disconnect and remove', async t => {
  const relay = await startRelay({ plugin: { admin: ADMIN } })
  t.teardown(relay.close)
  const added = await api(relay, 'POST', '/api/ids', { id: 'Hub-2' })
  t.equal(added.status, 201)
  t.equal(added.body.id, 'hub-2')
  t.match(added.body.secret, /^[A-Z2-7]{32,}$/)
  t.match(added.body.otpauth, /^otpauth:\/\/totp\//)
  t.equal(added.body.agentCommand, `rendezvous agent --server https://relay.example:8443/ --id=hub-2 --secret ${added.body.secret as string} --to http://127.0.0.1:PORT`)
  t.equal((await api(relay, 'POST', '/api/ids', { id: 'hub-2' })).status, 409, 'taken')
  t.equal((await api(relay, 'POST', '/api/ids', { id: 'bad id!' })).status, 400)

  const hidden = [await relay.park('hub-2', added.body.secret), await relay.park('hub-2', added.body.secret), await relay.park('hub-1')]
  await untilParked(relay, 3)
  const client = await relay.open()
  client.write('GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Digest username="hub-2"\r\n\r\n')
  // Handed out newest first.
  await hidden[1].untilText('\r\n\r\n')
  const list = await api(relay, 'GET', '/api/ids')
  t.equal(list.status, 200)
  t.same(list.body.ids.map((r: any) => [r.id, r.parked, r.waiting, r.spliced]), [['hub-1', 1, 0, 0], ['hub-2', 1, 0, 1]])
  t.notOk(JSON.stringify(list.body).includes(SECRET), 'the list holds no secret')

  const cut = await api(relay, 'POST', '/api/ids/HUB-2/disconnect')
  t.same(cut.body, { id: 'hub-2', parked: 1, spliced: 1 })
  await Promise.all([hidden[0].untilClosed(), hidden[1].untilClosed(), client.untilClosed()])
  // The peers see the close before the relay has run its own close handlers.
  await until(() => relay.app.rendezvous.stats().spliced === 0, 2000, 'the cut splice to be counted out')
  t.same(relay.app.rendezvous.stats(), { parked: 1, waiting: 0, spliced: 0 }, 'hub-1 untouched')

  t.same((await api(relay, 'DELETE', '/api/ids/hub-1')).body, { id: 'hub-1', removed: true })
  await hidden[2].untilClosed()
  t.equal((await api(relay, 'DELETE', '/api/ids/hub-1')).status, 404)
  t.equal((await api(relay, 'POST', '/api/ids/nobody/disconnect')).status, 404)
  t.notOk(await parks(relay, 'hub-1', SECRET), 'a removed ID is refused')
})

t.test('rotation: the old secret works for the overlap, then is refused', async t => {
  const relay = await startRelay({ plugin: { admin: ADMIN } })
  t.teardown(relay.close)
  const parked = await relay.park('hub-1')
  await untilParked(relay, 1)
  t.equal((await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: -1 })).status, 400)
  t.equal((await api(relay, 'POST', '/api/ids/nobody/rotate', {})).status, 404)
  const rotated = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 1.5 })
  t.equal(rotated.status, 200)
  const fresh = rotated.body.secret as string
  t.not(fresh, SECRET)
  t.match(rotated.body.agentCommand, `--secret ${fresh}`)
  t.equal(relay.app.rendezvous.stats().parked, 1, 'a rotation leaves parked connections alone')
  t.ok(await parks(relay, 'hub-1', SECRET), 'old secret during the overlap')
  t.ok(await parks(relay, 'hub-1', fresh), 'new secret')
  const list = await api(relay, 'GET', '/api/ids')
  t.equal(list.body.ids[0].previousSecretUntil, rotated.body.previousSecretUntil)
  await new Promise(resolve => setTimeout(resolve, Date.parse(rotated.body.previousSecretUntil) - Date.now() + 100))
  t.notOk(await parks(relay, 'hub-1', SECRET), 'old secret after the overlap')
  t.ok(await parks(relay, 'hub-1', fresh), 'new secret still')
  const now = await api(relay, 'POST', '/api/ids/hub-1/rotate', { overlapSeconds: 0 })
  t.equal(now.body.previousSecretUntil, null)
  t.notOk(await parks(relay, 'hub-1', fresh), 'overlap 0 refuses the old secret at once')
  parked.socket.destroy()
})

t.test('the ids CLI and the admin API see each other\'s changes within a second', async t => {
  const dir = t.testdir()
  const registry = new FileRegistry({ dataDir: dir })
  const relay = await startRelay({ ids: [], plugin: { admin: ADMIN, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  const cli = await idsCli('add', '--data-dir', dir, '--id', 'from-cli', '--json')
  t.equal(cli.code, 0)
  const started = Date.now()
  await until(async () => (await api(relay, 'GET', '/api/ids')).body.ids.some((r: any) => r.id === 'from-cli'), 1000)
  t.ok(Date.now() - started <= 1000)
  t.ok(await parks(relay, 'from-cli', JSON.parse(cli.stdout).secret))

  const added = await api(relay, 'POST', '/api/ids', { id: 'from-admin' })
  const listed = JSON.parse((await idsCli('list', '--data-dir', dir, '--json')).stdout)
  t.same(listed.map((r: any) => r.id).sort(), ['from-admin', 'from-cli'])
  t.ok(added.body.secret)

  await api(relay, 'POST', '/api/ids/from-admin/rotate', { overlapSeconds: 60 })
  const shown = JSON.parse((await idsCli('list', '--data-dir', dir, '--json', '--show-secret')).stdout)
  t.not(shown.find((r: any) => r.id === 'from-admin').secret, added.body.secret, 'the rotated secret is on disk')
  t.equal((await idsCli('remove', 'from-admin', '--data-dir', dir)).code, 0)
  await until(async () => !(await api(relay, 'GET', '/api/ids')).body.ids.some((r: any) => r.id === 'from-admin'), 1000)
})

t.test('the ids CLI and the admin API take and refuse the same secrets, with the same message', async t => {
  const dir = t.testdir()
  const registry = new FileRegistry({ dataDir: dir })
  const relay = await startRelay({ ids: [], plugin: { admin: ADMIN, registry } })
  t.teardown(async () => { await relay.close(); await registry.close() })
  // 33 characters: 1 past a multiple of 8, which no whole number of bytes encodes.
  const refused: Array<[string, RegExp]> = [
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZ2345672', /33 characters is not a possible length of base32/],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZ2345', /30 characters is not a possible length/],
    ['ABCDEFGHIJKLMNOPQRSTUVWX', /holds only 15 bytes/],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZ23456!', /characters other than A-Z and 2-7/],
    ['AB=CDEFGHIJKLMNOPQRSTUVWXYZ234567', /characters other than A-Z and 2-7/],
    ['', /it is empty/]
  ]
  for (const [secret, message] of refused) {
    const cli = await idsCli('add', '--data-dir', dir, '--id', 'refused', '--secret', secret)
    t.equal(cli.code, 2, `CLI refuses ${JSON.stringify(secret)}`)
    t.match(cli.stderr, message)
    const res = await api(relay, 'POST', '/api/ids', { id: 'refused', secret })
    t.equal(res.status, 400, `API refuses ${JSON.stringify(secret)}`)
    t.match(res.body.message, message)
    t.equal(res.body.message, cli.stderr.replace(/^rendezvous: /, '').trim(), 'the same words')
  }
  t.same(await registry.list(), [], 'nothing was provisioned')

  // Typed or pasted forms are accepted by both and stored in the canonical form.
  const canonical = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  // 39 characters hold 24 bytes and 3 bits that belong to none: G (00110) sets them, A (00000) is the same key.
  const typed = ['abcdefghijklmnopqrstuvwxyz234567', 'ABCD EFGH IJKL MNOP QRST UVWX YZ23 4567', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFG=', ' abcdefghijklmnopqrstuvwxyz234567\n']
  const canonicalOf = ['ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFA', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567']
  for (const [i, secret] of typed.entries()) {
    const cli = await idsCli('add', '--data-dir', dir, '--id', `cli-${i}`, '--secret', secret, '--json')
    t.equal(cli.code, 0, `CLI takes ${JSON.stringify(secret)}`)
    const res = await api(relay, 'POST', '/api/ids', { id: `api-${i}`, secret })
    t.equal(res.status, 201, `API takes ${JSON.stringify(secret)}`)
    const expected = canonicalOf[i]
    t.equal(JSON.parse(cli.stdout).secret, expected)
    t.equal(res.body.secret, expected)
    t.equal(registry.get(`api-${i}`)?.secret, expected, 'stored as printed')
  }
  t.equal(registry.get('api-0')?.secret, canonical)
  const rotated = await api(relay, 'POST', '/api/ids/api-0/rotate', { secret: 'ijklmnopqrstuvwxyz234567abcdefgh', overlapSeconds: 0 })
  t.equal(rotated.body.secret, 'IJKLMNOPQRSTUVWXYZ234567ABCDEFGH', 'rotate takes the same forms')
  const trailing = await api(relay, 'POST', '/api/ids/api-2/rotate', { secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSP', overlapSeconds: 0 })
  t.equal(trailing.body.secret, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSA', 'and stores its canonical encoding too')
  t.equal(registry.get('api-2')?.secret, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSA')
  const bad = await api(relay, 'POST', '/api/ids/api-0/rotate', { secret: canonical + 'A' })
  t.equal(bad.status, 400)
  t.match(bad.body.message, /33 characters/)
  t.ok(await parks(relay, 'api-1', canonical), 'a secret typed with spaces parks with its canonical form')
})

t.test('malformed IDs in the path and malformed bodies get 400 or 415, and nothing is provisioned or removed', async t => {
  const relay = await startRelay({ plugin: { admin: ADMIN } })
  t.teardown(relay.close)
  const long = 'x'.repeat(129)
  const invalidId = /^Invalid ID .*: use 1 to 128 characters of \[A-Za-z0-9\._~-\]$/
  for (const id of ['a%20b', '%C3%A9', 'a%2Fb', long, 'y'.repeat(2000), '%E0%A4%A']) {
    for (const [method, suffix] of [['DELETE', ''], ['POST', '/rotate'], ['POST', '/disconnect']]) {
      const res = await api(relay, method, `/api/ids/${id}${suffix}`, method === 'POST' ? {} : undefined)
      t.equal(res.status, 400, `${method} /api/ids/${id.slice(0, 20)}${suffix}`)
      t.equal(res.body?.error, 'bad_request')
      t.match(res.body?.message, invalidId)
    }
  }
  const refusedLong = await api(relay, 'DELETE', `/api/ids/${'y'.repeat(2000)}`, undefined, `${TOKEN}x`)
  t.equal(refusedLong.status, 401, 'a path the router refuses still needs the token')
  t.equal((await api(relay, 'DELETE', `/api/ids/${'z'.repeat(128)}`)).status, 404, 'a 128-character ID is an ID')
  t.equal((await api(relay, 'POST', '/api/ids', { id: 'k'.repeat(128) })).status, 201)
  t.same((await api(relay, 'DELETE', `/api/ids/${'K'.repeat(128)}`)).body, { id: 'k'.repeat(128), removed: true }, 'and can be removed')

  const raw = async (path: string, body: string, type: string): Promise<{ status: number, body: any }> => {
    const res = await fetch(adminUrl(relay, path), { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': type }, body })
    return { status: res.status, body: await res.json().catch(() => undefined) }
  }
  const cases: Array<[string, string, string, number, RegExp]> = [
    ['/api/ids', '[]', 'application/json', 400, /^the body must be a JSON object$/],
    ['/api/ids', 'null', 'application/json', 400, /^the body must be a JSON object$/],
    ['/api/ids', '"hub-9"', 'application/json', 400, /^the body must be a JSON object$/],
    ['/api/ids', 'id=x', 'text/plain', 415, /Content-Type: application\/json/],
    ['/api/ids', 'id=x', 'application/x-www-form-urlencoded', 415, /Content-Type: application\/json/],
    ['/api/ids', '{"id":12345}', 'application/json', 400, /^id must be a string$/],
    ['/api/ids', '{"id":["a"]}', 'application/json', 400, /^id must be a string$/],
    ['/api/ids', '{"secret":12345}', 'application/json', 400, /^secret must be a string$/],
    ['/api/ids', '{"ID":"hub-9"}', 'application/json', 400, /^unknown field "ID" in the JSON body$/],
    ['/api/ids', '{"id":', 'application/json', 400, /JSON/],
    ['/api/ids/hub-1/rotate', '[]', 'application/json', 400, /^the body must be a JSON object$/],
    ['/api/ids/hub-1/rotate', '{"overlapSeconds":"60"}', 'application/json', 400, /^overlapSeconds must be a number$/],
    ['/api/ids/hub-1/rotate', '{"overlap":60}', 'application/json', 400, /^unknown field "overlap"/],
    ['/api/ids/hub-1/rotate', 'overlapSeconds=0', 'text/plain', 415, /application\/json/],
    ['/api/ids/hub-1/disconnect', '{"now":true}', 'application/json', 400, /^unknown field "now"/],
    ['/api/ids/hub-1/disconnect', 'null', 'application/json', 400, /^the body must be a JSON object$/]
  ]
  for (const [path, body, type, status, message] of cases) {
    const res = await raw(path, body, type)
    t.equal(res.status, status, `${path} ${type} ${body}`)
    t.match(res.body?.message, message)
  }
  const del = await fetch(adminUrl(relay, '/api/ids/hub-1'), { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '[]' })
  t.equal(del.status, 400, 'DELETE with a body that is not an object')
  t.same((await api(relay, 'GET', '/api/ids')).body.ids.map((r: any) => r.id), ['hub-1'], 'nothing provisioned, rotated away or removed')
  t.equal(relay.registry.get('hub-1')?.secret, SECRET)
  // Without a body at all, the routes work as before.
  t.equal((await api(relay, 'POST', '/api/ids/hub-1/disconnect')).status, 200)
  t.equal((await api(relay, 'POST', '/api/ids')).status, 201, 'no body: a fresh UUID')
})
