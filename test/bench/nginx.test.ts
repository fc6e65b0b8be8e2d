import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import t from 'tap'
import { nginxMissing, startNginx } from '../../bench/lib/nginx'
import { freePort, stop } from '../../bench/lib/procs'
import { tlsCertPath, tlsKeyPath, tlsCert, tlsKey } from '../helpers/tls'

/* nginx-tls, the relay's peer in the bench, negotiates what the relay does with Node on both sides: TLS 1.3, AES-256-GCM. */

t.test('nginx-tls speaks TLS 1.3 to the client and to the backend', { skip: nginxMissing() }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // Stands in for the HTTPS backend: notes what nginx's upstream connection negotiated.
  const upstream: Array<{ protocol: string | null, cipher: string }> = []
  const backend = tls.createServer({ cert: tlsCert, key: tlsKey }, socket => {
    upstream.push({ protocol: socket.getProtocol(), cipher: socket.getCipher().standardName })
    socket.end('hello')
  })
  backend.listen(0, '127.0.0.1')
  await once(backend, 'listening')
  t.teardown(() => backend.close())
  const nginx = await startNginx(dir, { port: await freePort(), tlsPort: (backend.address() as net.AddressInfo).port }, { cert: tlsCertPath, key: tlsKeyPath })
  t.teardown(() => stop(nginx.child))

  const client = tls.connect({ port: nginx.tlsPort, host: '127.0.0.1', rejectUnauthorized: false })
  await once(client, 'secureConnect')
  t.equal(client.getProtocol(), 'TLSv1.3', 'client side')
  t.equal(client.getCipher().standardName, 'TLS_AES_256_GCM_SHA384')
  let got = ''
  client.on('data', (chunk: Buffer) => { got += chunk.toString() })
  await once(client, 'end')
  client.destroy()
  t.equal(got, 'hello', 'relayed from the backend')
  t.same(upstream, [{ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }], 'backend side')
})
