import { createHash, randomBytes } from 'node:crypto'
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, createServer, type TLSSocket } from 'node:tls'
import t from 'tap'
import fc from 'fast-check'
import { nativeSplicer } from '../../lib/relay/native-addon'
import { splice, type Splice, type SpliceResult } from '../../lib/relay/splice'
import { socketPair, socketPairs, type SocketPair } from '../helpers/socket-pair'
import { tlsCert, tlsKey } from '../helpers/tls'

// The native data path (native/) through the splice's public API, on
// real loopback sockets, with the path forced. `client` and `hidden` are the
// relay's ends; their `far` ends are the mobile client and the hidden server.

type Test = Parameters<Parameters<typeof t.test>[0]>[0]
const native = nativeSplicer()

if ('reason' in native) {
  t.plan(0, `the native splice is not available here (${native.reason}): install a C compiler and run npm ci`)
} else {
  const { splicer } = native
  const openFds = (): number => readdirSync('/proc/self/fd').length
  const threads = (): number => Number(/^Threads:\s+(\d+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1])
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

  async function spliced (t: Test, opts: { idleTimeout?: number, first?: Buffer[] } = {}): Promise<{ client: SocketPair, hidden: SocketPair } & Splice> {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    const pair = splice(client.near, hidden.near, { idleTimeout: opts.idleTimeout ?? 0, first: opts.first, path: 'native' })
    return { client, hidden, ...pair }
  }

  t.test('plain TCP pairs take the native path; bytes flow both ways and are counted', async t => {
    const { client, hidden, done, path, bytes } = await spliced(t, { first: [Buffer.from('HEAD\r\n\r\n')] })
    t.equal(path, 'native')
    client.far.write('up')
    hidden.far.write('down')
    await hidden.far.untilText('HEAD\r\n\r\nup')
    await client.far.untilText('down')
    t.same(bytes(), { toHidden: 10, toClient: 4 }, 'live counts, the replayed head included')
    client.far.socket.end()
    hidden.far.socket.end()
    const result = await done
    t.match(result, { end: 'closed', toHidden: 10, toClient: 4 })
  })

  t.test('a FIN half-closes only, in both directions', async t => {
    for (const first of ['client', 'hidden'] as const) {
      const pair = await spliced(t)
      const [a, b] = first === 'client' ? [pair.client, pair.hidden] : [pair.hidden, pair.client]
      a.far.write('before the FIN')
      a.far.socket.end()
      await b.far.until(c => c.ended, 5000, 'the FIN')
      t.equal(b.far.text, 'before the FIN', `${first} FIN: everything before it arrived first`)
      t.notOk(a.far.closed, `${first} FIN: its sender still reads`)
      b.far.write('answer after the FIN')
      await a.far.untilText('answer after the FIN')
      b.far.socket.end()
      await a.far.until(c => c.ended, 5000, 'the answer\'s FIN')
      t.match(await pair.done, { end: 'closed', toHidden: 'before the FIN'.length + (first === 'client' ? 0 : 6) })
    }
  })

  t.test('a reset on either side closes the other and ends as an error', async t => {
    for (const side of ['client', 'hidden'] as const) {
      const pair = await spliced(t)
      const [a, b] = side === 'client' ? [pair.client, pair.hidden] : [pair.hidden, pair.client]
      a.far.write('x')
      await b.far.untilBytes(1)
      a.far.socket.resetAndDestroy()
      await b.far.until(c => c.closed || c.ended, 5000, 'the other side to be closed')
      t.equal((await pair.done).end, 'error', `a reset from the ${side}`)
    }
  })

  t.test('the idle timer closes a silent pair; traffic keeps it open', async t => {
    const { client, hidden, done } = await spliced(t, { idleTimeout: 600 })
    for (let i = 0; i < 5; i++) {
      client.far.write('.')
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    await hidden.far.untilBytes(5)
    t.notOk(hidden.far.closed || hidden.far.ended, 'still open after 1 s of traffic')
    const result = await done
    t.equal(result.end, 'idle')
    t.ok(result.durationMs >= 1000 + 600 - 250, `lived on past the last byte (${result.durationMs} ms)`)
    await client.far.until(c => c.closed || c.ended, 5000, 'the client side to be closed')
    await hidden.far.until(c => c.closed || c.ended, 5000, 'the hidden side to be closed')
  })

  t.test('abort() and a socket destroyed from outside both end the pair', async t => {
    const a = await spliced(t)
    a.client.far.write('x')
    await a.hidden.far.untilBytes(1)
    a.abort()
    t.equal((await a.done).end, 'aborted')
    await a.client.far.until(c => c.closed || c.ended, 5000, 'the client side to be closed')
    await a.hidden.far.until(c => c.closed || c.ended, 5000, 'the hidden side to be closed')

    const b = await spliced(t)
    b.client.near.destroy()
    t.equal((await b.done).end, 'closed', 'as the JavaScript splice reports it')
    await b.hidden.far.until(c => c.closed || c.ended, 5000, 'the hidden side to be closed')
  })

  t.test('abort() of a pair that already ended leaves alone the pair that took its place', async t => {
    const old = await spliced(t)
    old.client.far.socket.end()
    old.hidden.far.socket.end()
    t.equal((await old.done).end, 'closed')
    // The addon hands out its lowest free slot, so this pair reuses the one the ended pair had.
    const next = await spliced(t)
    next.client.far.write('before;')
    await next.hidden.far.untilText('before;')
    old.abort()
    next.client.far.write('after')
    await next.hidden.far.untilText('before;after')
    next.hidden.far.write('still here')
    await next.client.far.untilText('still here')
    t.equal(next.hidden.far.text, 'before;after', 'the newer pair still relays, both ways')
    next.abort()
    t.equal((await next.done).end, 'aborted')
  })

  t.test('bytes Node read before the hand-over go out first, in order', async t => {
    const client = await socketPair(t)
    const hidden = await socketPair(t)
    client.near.pause()
    client.far.write('buffered in Node;')
    await new Promise(resolve => setTimeout(resolve, 100))
    t.ok(client.near.readableLength > 0, 'Node holds unread bytes')
    const { done } = splice(client.near, hidden.near, { idleTimeout: 0, first: [Buffer.from('head;'), Buffer.from('rest;')], path: 'native' })
    client.far.write('after;')
    await hidden.far.untilText('head;rest;buffered in Node;after;')
    t.equal(hidden.far.text, 'head;rest;buffered in Node;after;')
    client.far.socket.resetAndDestroy()
    t.equal((await done).end, 'error')
  })

  t.test('backpressure: a reader that stops holds the writer back, and a large transfer arrives whole', async t => {
    const { client, hidden, done, bytes } = await spliced(t)
    const data = randomBytes(32 << 20)
    client.far.socket.pause()
    let written = 0
    const writer = (async () => {
      for (let at = 0; at < data.length; at += 1 << 20) {
        if (!hidden.far.socket.write(data.subarray(at, at + (1 << 20)))) await new Promise(resolve => hidden.far.socket.once('drain', resolve))
        written = at + (1 << 20)
      }
      hidden.far.socket.end()
    })()
    await new Promise(resolve => setTimeout(resolve, 500))
    const held = bytes().toClient
    t.ok(written < data.length, `the writer is held back while nobody reads (${written} of ${data.length} written)`)
    await new Promise(resolve => setTimeout(resolve, 300))
    t.equal(bytes().toClient, held, 'nothing moves while the reader is stopped')
    client.far.socket.resume()
    await writer
    await client.far.until(c => c.ended, 60_000, 'the end of the transfer')
    t.equal(client.far.received.length, data.length)
    t.equal(sha(client.far.received), sha(data), 'byte for byte')
    client.far.socket.end()
    t.match(await done, { end: 'closed', toClient: data.length })
  })

  t.test('random data in random chunks both ways arrives byte for byte', async t => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 70_000 }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 70_000 }), { minLength: 0, maxLength: 8 }),
      async (ups, downs) => {
        const { client, hidden, done } = await spliced(t)
        for (const c of ups) client.far.write(Buffer.from(c))
        for (const c of downs) hidden.far.write(Buffer.from(c))
        client.far.socket.end()
        hidden.far.socket.end()
        const result: SpliceResult = await done
        const up = Buffer.concat(ups)
        const down = Buffer.concat(downs)
        await hidden.far.until(c => c.ended)
        await client.far.until(c => c.ended)
        return hidden.far.received.equals(up) && client.far.received.equals(down) &&
          result.toHidden === up.length && result.toClient === down.length && result.end === 'closed'
      }), { numRuns: 25 })
  })

  t.test('many pairs at once; descriptors and threads return to where they were', async t => {
    // One pair first, so that the addon's thread exists in the baseline.
    const warm = await spliced(t)
    warm.client.far.socket.resetAndDestroy()
    await warm.done
    const fds = openFds()
    const thr = threads()
    const N = 200
    const clients = await socketPairs(t, N)
    const hiddens = await socketPairs(t, N)
    const fdsOpen = openFds()
    const pairs = clients.map((c, i) => splice(c.near, hiddens[i].near, { idleTimeout: 0, path: 'native' }))
    t.ok(pairs.every(p => p.path === 'native'))
    const payloads = clients.map(() => randomBytes(20_000 + Math.floor(Math.random() * 20_000)))
    clients.forEach((c, i) => { c.far.write(payloads[i]); c.far.socket.end() })
    hiddens.forEach((h, i) => { h.far.write(payloads[N - 1 - i]); h.far.socket.end() })
    const results = await Promise.all(pairs.map(p => p.done))
    for (let i = 0; i < N; i++) {
      await hiddens[i].far.until(c => c.ended, 10_000)
      await clients[i].far.until(c => c.ended, 10_000)
    }
    t.ok(results.every(r => r.end === 'closed'), 'all closed')
    t.ok(hiddens.every((h, i) => h.far.received.equals(payloads[i])), 'every pair byte for byte toward the hidden side')
    t.ok(clients.every((c, i) => c.far.received.equals(payloads[N - 1 - i])), 'and toward the clients')
    t.equal(splicer.stats().pairs, 0, 'the addon holds no pair')
    t.ok(openFds() <= fdsOpen - 2 * N, `the addon closed its duplicates and pipes (${openFds()} open, ${fdsOpen} with the sockets)`)
    for (const p of [...clients, ...hiddens]) p.far.destroy()
    await new Promise(resolve => setTimeout(resolve, 200))
    // The two listening servers of socketPairs() stay open until teardown.
    t.ok(openFds() <= fds + 2, `back to the baseline of ${fds} descriptors and the 2 listeners (${openFds()})`)
    t.equal(threads(), thr, 'no thread added')
  })

  t.test('a TLS socket never goes native, even when native is forced', async t => {
    const server = createServer({ cert: tlsCert, key: tlsKey })
    server.listen(0, '127.0.0.1')
    await new Promise(resolve => server.once('listening', resolve))
    t.teardown(() => server.close())
    const accepted = new Promise<TLSSocket>(resolve => server.once('secureConnection', resolve))
    const far = connect({ port: (server.address() as { port: number }).port, host: '127.0.0.1', ca: tlsCert, servername: 'localhost' })
    far.on('error', () => {})
    const near = await accepted
    const hidden = await socketPair(t)
    const pair = splice(near, hidden.near, { idleTimeout: 0, path: 'native' })
    t.equal(pair.path, 'js')
    far.write('over TLS')
    await hidden.far.untilText('over TLS')
    hidden.far.socket.resetAndDestroy()
    t.equal((await pair.done).end, 'error')
    far.destroy()
  })

  t.test('the addon does not keep the process alive once its pairs ended', async t => {
    const script = `
      const { splice } = require('./lib/relay/splice')
      const net = require('node:net')
      const server = net.createServer(s => s.end('bye'))
      server.listen(0, '127.0.0.1', () => {
        const a = net.connect(server.address().port, '127.0.0.1')
        const b = net.connect(server.address().port, '127.0.0.1')
        let n = 0
        const go = () => { if (++n === 2) { const p = splice(a, b, { idleTimeout: 0, path: 'native' }); console.log(p.path); p.done.then(r => { console.log(r.end); server.close() }) } }
        a.on('connect', go); b.on('connect', go)
      })`
    const child = spawn(process.execPath, ['--import=tsx', '-e', script], { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', c => { out += c })
    const timer = setTimeout(() => child.kill(), 30_000)
    const code = await new Promise(resolve => child.once('exit', resolve))
    clearTimeout(timer)
    t.equal(code, 0, 'exited by itself')
    t.equal(out, 'native\nclosed\n')
  })

  t.test('past half the open-file limit, new pairs stay in JavaScript', { skip: spawnSync('prlimit', ['--version']).status === 0 ? false : 'prlimit is not installed' }, async t => {
    // 40 pairs need 160 sockets: with a limit of 256 the duplicates of the later ones would pass 128.
    const script = `
      const { splice } = require('./lib/relay/splice')
      const net = require('node:net')
      const server = net.createServer({ allowHalfOpen: true })
      const accepted = []
      server.on('connection', s => accepted.push(s))
      server.listen(0, '127.0.0.1', async () => {
        const dial = () => new Promise(resolve => { const s = net.connect(server.address().port, '127.0.0.1', () => resolve(s)) })
        const paths = []
        for (let i = 0; i < 40; i++) {
          await dial(); await dial()
          while (accepted.length < 2 * (i + 1)) await new Promise(r => setImmediate(r))
          paths.push(splice(accepted[2 * i], accepted[2 * i + 1], { idleTimeout: 0, path: 'native' }).path)
        }
        console.log(paths.join(','))
        process.exit(0)
      })`
    const result = spawnSync('prlimit', ['--nofile=256:256', '--', process.execPath, '--import=tsx', '-e', script], { cwd: join(__dirname, '..', '..'), encoding: 'utf8', timeout: 60_000 })
    const paths = result.stdout.trim().split(',')
    t.equal(paths.length, 40, result.stderr)
    t.equal(paths[0], 'native', 'the first pairs go native')
    t.equal(paths.at(-1), 'js', 'the last ones stay in JavaScript')
    t.ok(paths.indexOf('js') > 5 && paths.slice(paths.indexOf('js')).every(p => p === 'js'), paths.join(','))
  })
}
