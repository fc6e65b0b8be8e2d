import t from 'tap'
import { startRendezvous } from '../helpers/rendezvous'
import { api, TOKEN } from './helpers'
import { capture } from './raw'

/*
 * The plugin's admin.token: a token no request can carry (a space splits
 * it, Node reads header bytes as latin-1 so € never matches) is refused at
 * start, as the CLI refuses it. A function is asked on each request, which
 * is how serve rereads its token file on SIGHUP.
 */

t.test('a token no request can send is refused at start, naming admin.token and not the token', async t => {
  const tokens = ['abcd efgh ijkl mnop', 'admin-token-€-0123456789', 'admin-token-é-0123456789', 'admin\ttoken\t0123456789', 'tiny-tok', 'admin-token-\u0000-0123456789']
  for (const token of tokens) {
    const started = startRendezvous({ plugin: { admin: { port: 0, token } } })
    await t.rejects(started, { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /admin\.token / }, JSON.stringify(token))
    const message = await started.then(() => '', (err: Error) => err.message)
    t.notOk(message.includes(token), 'the token stays out of the message')
    t.match(message, token.length < 16 ? /shorter than 16 characters/ : /visible ASCII/)
  }
  await t.rejects(startRendezvous({ plugin: { admin: { port: 0, token: 42 as unknown as string } } }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /admin\.token must be a string/ })
  await t.rejects(startRendezvous({ plugin: { admin: { port: 0, token: () => 'abcd efgh ijkl mnop' } } }), { code: 'FST_RENDEZVOUS_BAD_OPTION', message: /admin\.token \(a function\) returned a token that has a character other than visible ASCII/ })
})

t.test('spaces around a token are trimmed; every visible ASCII character is allowed', async t => {
  const token = "!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~"
  const relay = await startRendezvous({ plugin: { admin: { port: 0, token: `  ${token}\n` } } })
  t.teardown(relay.close)
  t.equal((await api(relay, 'GET', '/api/ids', undefined, token)).status, 200)
})

t.test('a function token is asked on each request; one that stops giving a usable token refuses everything', async t => {
  const log = capture()
  let current: unknown = TOKEN
  const relay = await startRendezvous({ fastify: { logger: { level: 'info', stream: log.stream } }, plugin: { admin: { port: 0, token: () => (typeof current === 'function' ? current() : current) as string } } })
  t.teardown(relay.close)
  t.equal((await api(relay, 'GET', '/api/ids')).status, 200)
  current = `${TOKEN}-next`
  t.equal((await api(relay, 'GET', '/api/ids')).status, 401, 'the old token is refused at once')
  t.equal((await api(relay, 'GET', '/api/ids', undefined, `${TOKEN}-next`)).status, 200, 'the new one taken')
  const unreachable = (): never => { throw new Error('vault unreachable') }
  for (const bad of ['tiny-tok', 'abcd efgh ijkl mnop', undefined, unreachable]) {
    current = bad
    const res = await api(relay, 'POST', '/api/ids', { id: 'not-added' }, typeof bad === 'string' ? bad : TOKEN)
    t.equal(res.status, 500, `${String(bad)}: refused`)
    t.same(res.body, { error: 'internal_error', message: 'the admin token is not usable; see the log' })
  }
  t.notOk(relay.registry.get('not-added'), 'nothing was let on')
  const lines = log.lines().filter(l => l.msg === 'the admin token is not usable; request refused')
  t.same(lines.map(l => l.level), [50, 50, 50, 50], 'each logged at error')
  t.match(lines[3]?.err?.message, 'vault unreachable')
  t.notMatch(log.text(), 'abcd efgh', 'the token is never logged')
})
