import t from 'tap'
import net from 'node:net'
import { startRendezvous } from '../helpers/rendezvous'
import { TOKEN } from './helpers'

/*
 * The token check used to look at the raw URL's text (`/api/...`), while the
 * router decodes percent-escapes and takes the path out of an absolute-form
 * target: `/%61pi/ids` or `GET http://x/api/ids` reached the API with no
 * token at all, secrets included, and a page on another origin could make
 * an operator's browser rotate or remove IDs that way. The check now
 * follows the route the router matched.
 */
async function raw (port: number, head: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', chunk => chunks.push(chunk))
  socket.write(head)
  await new Promise(resolve => socket.once('close', resolve))
  return Buffer.concat(chunks).toString('latin1')
}

t.test('every spelling of an API path needs the token', async t => {
  const relay = await startRendezvous({ plugin: { admin: { port: 0, token: TOKEN } } })
  t.teardown(relay.close)
  const port = relay.app.rendezvous.adminAddress()!.port
  const targets = ['/%61pi/ids', '/ap%69/ids', '/%61%70%69/ids', 'http://127.0.0.1/api/ids', 'http://elsewhere.example/%61pi/ids']
  for (const target of targets) {
    for (const [method, path] of [['GET', ''], ['POST', ''], ['POST', '/hub-1/rotate'], ['POST', '/hub-1/disconnect'], ['DELETE', '/hub-1']]) {
      const answer = await raw(port, `${method} ${target}${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
      t.match(answer, /^HTTP\/1\.1 401 /, `${method} ${target}${path}`)
      t.notMatch(answer, /"secret"|"ids"/, 'nothing of the API')
    }
  }
  t.ok(relay.registry.get('hub-1'), 'hub-1 is still there')
  t.same((await relay.registry.list()).map(r => r.id), ['hub-1'], 'nothing was added')
  // With the token, the same spellings are the API (so the check above is not a 404 in disguise).
  const listed = await raw(port, `GET /%61pi/ids HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`)
  t.match(listed, /^HTTP\/1\.1 200 [^]*"ids":\[/)
  // The page, its script and unknown paths need no token.
  t.match(await raw(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /)
  t.match(await raw(port, 'GET /admin.js HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 200 /)
  t.match(await raw(port, 'GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 404 /)
})
