import createError from '@fastify/error'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { trustOptions } from './certificates'
import { defaultSplicePath, splicerFor, type NativeSplicer } from '../relay/native-addon'
import { nativeSplice } from '../relay/native-splice'
import { loggedPath } from '../http/log-text'
import { isOutOfDescriptors, outOfDescriptors } from './descriptors'
import { localTlsError, speaksTls, tlsHint } from './local-tls'

export interface LocalTarget {
  host: string
  port: number
  /** Set for an https:// backend: how to verify it. */
  tls?: { ca?: tls.SecureContextOptions['ca'], insecure: boolean }
  /** Time allowed to reach the backend (TCP, and TLS for https), in ms. */
  connectTimeout: number
  /** The process's open-file limit, named when a dial fails for want of a descriptor. */
  openFileLimit?: number
}

/** How a relayed connection ended, for the agent's one log line per request. */
export interface RelayOutcome {
  /** The request line as the mobile client sent it, when it was readable. */
  request?: string
  /** The answer the agent wrote itself when the backend could not be reached, or dropped the connection before a byte. */
  answered?: 502 | 503 | 504
  error?: Error
  /** The data path the bytes took: the native splice (both connections plain TCP, the addon loaded) or Node streams. */
  path?: 'native' | 'js'
}

// After one side closed, the other gets this long to flush and say goodbye.
const LINGER_MS = 5000

/** The agent's own answer; to a HEAD, the head alone (RFC 9110 §9.3.2), with the Content-Length the body would have had. */
function answer (status: 502 | 503 | 504, body: string): { full: string, head: string } {
  const phrase = status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : 'Gateway Timeout'
  const head = `HTTP/1.1 ${status} ${phrase}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n'
  return { full: head + body, head }
}

/**
 * The local service accepted the connection, then closed (`closed`: a FIN) or
 * reset it (`reset`) before it sent a byte back: the mobile client got 502.
 * The third argument is a hint, or empty.
 */
export const LocalClosedError = createError<'FST_RENDEZVOUS_AGENT_LOCAL_CLOSED', 502, [where: string, how: string, hint: string, options?: { cause?: Error }]>('FST_RENDEZVOUS_AGENT_LOCAL_CLOSED', 'the local service %s %s the connection before it answered%s', 502)

// How long a plain local service that dropped a request gets to show it speaks TLS (local-tls.ts), at most.
const TLS_PROBE_MS = 2000

const BAD_GATEWAY = answer(502, 'The hidden server\'s local service cannot be reached.\n')
const GATEWAY_TIMEOUT = answer(504, 'The hidden server\'s local service did not accept the connection in time.\n')
const SHUTTING_DOWN = answer(503, 'The hidden server is shutting down.\n')
// Not the local service's fault: the agent could not open the connection to it.
const OUT_OF_RESOURCES = answer(502, 'The hidden server is out of resources.\n')

// How a closing agent cuts each relay it still has (cutRelay).
const cutters = new WeakMap<net.Socket, () => void>()
// A 503 written at the cut is read within moments by a relay that works: the close does not wait LINGER_MS for it.
const CUT_LINGER_MS = 1000

/**
 * Cuts a relay at the end of a closing agent's grace. One whose local
 * service has not answered yet (not reached, or still working on the
 * request) has sent nothing, so its client still gets a real answer, 503;
 * any other is destroyed.
 */
export function cutRelay (remote: net.Socket): void {
  const cut = cutters.get(remote)
  if (cut !== undefined) cut()
  // Answered already (502, 503, 504): its linger ends it, and cutting it now could lose that answer.
  else if (!remote.writableEnded) remote.destroy()
}

/**
 * Splices a taken rendezvous connection to a local service: `head` (the
 * bytes already read from the rendezvous) goes first, then both directions
 * flow through pipe(), which gives backpressure both ways. Until the backend
 * has sent a byte back, its failure is answered to the mobile client: 502
 * when it refuses the connection, or accepts it and then closes or resets it
 * without a byte; 504 when it did not accept within the target's connect
 * timeout. A dial that fails for want of a file descriptor is the agent's
 * own failure, not the backend's: still 502, with a body that says so.
 *
 * When both connections are plain TCP and the relay's native data path is
 * loaded, the bytes go through it instead, as the relay's own pairs do
 * (docs/performance.md), from the backend's first byte on: the addon passes
 * a backend's FIN on the moment it reads it, after which no 502 can be
 * written, so until then the request (and any body) goes through
 * JavaScript. That costs the first chunk of each answer one read and one
 * write in Node; the rest of the connection, every later exchange on a
 * keep-alive one included, takes the native path.
 */
export function forwardToLocal (
  remote: net.Socket,
  head: Buffer,
  target: LocalTarget,
  /** `either` when the native path failed: the addon cannot say which side did. */
  onError: (err: Error, side: 'local' | 'remote' | 'either') => void,
  onDone: (outcome: RelayOutcome) => void = () => {}
): net.Socket {
  // Half-open from the moment it is taken, on both data paths: a mobile client may send its request and its
  // FIN at once, and the FIN can arrive while the backend is still being dialled. Without this Node would end
  // the connection's writing side then, at the peer's FIN, and the answer would have nowhere to go.
  remote.allowHalfOpen = true
  const local = dialLocal(target)
  const outcome: RelayOutcome = { request: requestLine(head) }
  const where = `${target.host}:${target.port}`
  let connected = false
  let stopClosing = (): void => {}
  // Whether the backend sent a byte, and so the mobile client may have received one: from then on, no answer of the agent's own.
  let replied = false
  const timer = setTimeout(() => {
    const err = Object.assign(new Error(`the local service ${where} did not accept within ${target.connectTimeout} ms`), { code: 'ETIMEDOUT' })
    giveUp(err, 504)
  }, target.connectTimeout)
  const native = target.tls === undefined ? nativeFor(remote) : undefined
  local.once(target.tls === undefined ? 'connect' : 'secureConnect', () => {
    connected = true
    clearTimeout(timer)
    if (remote.destroyed) {
      local.destroy()
      return
    }
    local.write(head)
    remote.pipe(local)
    stopClosing = closeTogether(remote, local)
    local.once('data', onFirstBytes)
    local.once('end', onEmptyEnd)
  })

  function onFirstBytes (chunk: Buffer): void {
    replied = true
    local.off('end', onEmptyEnd)
    // The mobile side is gone (closeTogether is ending this one): nowhere to relay to.
    if (remote.destroyed) return
    // Back in front, for whichever path relays it: both read the socket's buffer first.
    local.pause()
    local.unshift(chunk)
    if (native !== undefined && goNative(native)) return
    outcome.path = 'js'
    local.pipe(remote)
    closeTogether(local, remote)
  }

  // The pair's ends are the native splice's from here. A FIN Node read with the first chunk is no loss: recv() reports it again to the addon.
  function goNative (splicer: NativeSplicer): boolean {
    remote.unpipe(local)
    // A backend that resets after its answer: the relay gets the answer and a FIN, as closeTogether gives it on the JavaScript path.
    const pair = nativeSplice(remote, local, { idleTimeout: 0, lingerTimeout: LINGER_MS }, splicer)
    if (pair === undefined) {
      remote.pipe(local)
      return false
    }
    stopClosing()
    outcome.path = 'native'
    pair.done.then(r => { if (r.end === 'error') failedNatively() })
    return true
  }

  // The addon saw a read or a write fail: reported as the JavaScript path reports a socket's 'error', which it does not emit here.
  function failedNatively (): void {
    if (outcome.error !== undefined) return
    const err = Object.assign(new Error('a connection was reset while relayed'), { code: 'ECONNRESET' })
    outcome.error = err
    onError(err, 'either')
  }

  // A FIN before any byte: the backend took the request and will never answer it.
  function onEmptyEnd (): void {
    if (!replied) dropped('closed')
  }

  // A TLS server closes or resets a plain request without a byte (it sends no alert to tell): asked before answering
  // 502, so that an http:// --to for a TLS service says so. An ordinary crash costs one refused dial more.
  function dropped (how: 'closed' | 'reset', cause?: Error): void {
    const err = new LocalClosedError(where, how, '', { cause })
    if (target.tls !== undefined) return giveUp(err, 502)
    // Set now: the 'relayed' event of a client that leaves meanwhile still says why.
    outcome.error = err
    speaksTls(target, Math.min(target.connectTimeout, TLS_PROBE_MS)).then((yes) => {
      giveUp(yes ? new LocalClosedError(where, how, tlsHint(target), { cause }) : err, 502)
    }, () => giveUp(err, 502))
  }

  function giveUp (err: Error, status: 502 | 504): void {
    outcome.error = err
    onError(err, 'local')
    answerInstead(status)
  }

  // Nothing was relayed back yet, so the mobile client can still get a real answer.
  function answerInstead (status: 502 | 503 | 504, lingerMs = LINGER_MS): void {
    clearTimeout(timer)
    cutters.delete(remote)
    // answered already: a cut while a probe (dropped) was out.
    if (!replied && !remote.destroyed && outcome.answered === undefined) {
      outcome.answered = status
      remote.unpipe(local)
      // Paused while the backend was dialled; its FIN must still be read for it to close.
      remote.resume()
      const own = status === 502 ? (isOutOfDescriptors(outcome.error) ? OUT_OF_RESOURCES : BAD_GATEWAY) : status === 503 ? SHUTTING_DOWN : GATEWAY_TIMEOUT
      remote.end(isHead(head) ? own.head : own.full)
      // Half-open (see above), it would wait for the relay's FIN as long as that takes.
      setTimeout(() => remote.destroy(), lingerMs).unref()
    }
    local.destroy()
  }
  // Until the local service sends its first byte, the client has had nothing: a 503 still tells it the truth.
  cutters.set(remote, () => {
    if (replied) remote.destroy()
    else answerInstead(503, CUT_LINGER_MS)
  })

  local.on('error', (err) => {
    if (outcome.error !== undefined) return
    // A reset once connected, before any byte back, is the backend dropping the request: named as such, with Node's error as the cause.
    // A dial that found no descriptor left is named too: the local service was never tried.
    if (connected && !replied) return dropped('reset', err)
    giveUp(outOfDescriptors(err, target.openFileLimit) ?? localTlsError(err, target) ?? err, 502)
  })
  remote.on('error', (err) => { outcome.error ??= err; onError(err, 'remote') })
  remote.once('close', () => {
    clearTimeout(timer)
    if (!connected) local.destroy()
    onDone(outcome)
  })
  return local
}

/** The native splicer, when this pair may take it: a plain rendezvous connection, the addon loaded, and RENDEZVOUS_SPLICE not `js`. */
function nativeFor (remote: net.Socket): NativeSplicer | undefined {
  return (remote as net.Socket & { encrypted?: boolean }).encrypted === true ? undefined : splicerFor(defaultSplicePath())
}

const HALF_OPEN: Pick<net.SocketConstructorOpts, 'allowHalfOpen'> = { allowHalfOpen: true }

function dialLocal (target: LocalTarget): net.Socket {
  // Half-open, for the same reason as the rendezvous connection (forwardToLocal): a backend's FIN ends only its direction.
  const socket = target.tls === undefined
    ? net.connect({ host: target.host, port: target.port, ...HALF_OPEN })
    : tls.connect({
      host: target.host,
      port: target.port,
      // tls.connect passes net's socket options on, though its typings leave this one out.
      ...HALF_OPEN,
      // SNI must not carry an IP address (RFC 6066); the identity check still uses `host`.
      servername: net.isIP(target.host) === 0 ? target.host : undefined,
      ...trustOptions(target.tls.ca),
      rejectUnauthorized: !target.tls.insecure
    })
  socket.setNoDelay(true)
  return socket
}

function isHead (head: Buffer): boolean {
  return head.subarray(0, 5).toString('latin1') === 'HEAD '
}

// Logged, so only the method and the path (loggedPath: no query, no userinfo): never a header, which may carry a credential.
function requestLine (head: Buffer): string | undefined {
  const end = head.indexOf('\n')
  const line = head.subarray(0, end === -1 ? Math.min(head.length, 200) : Math.min(end, 200)).toString('latin1').trim()
  const m = /^([A-Z]+) (\S+) HTTP\/\d\.\d$/.exec(line)
  return m === null ? undefined : `${m[1]} ${loggedPath(m[2]!)}`
}

/**
 * Hands a taken connection to an in-process server. The bytes already read
 * go back in front of the stream first, so the server's parser sees the
 * request from its first byte.
 */
export function forwardToServer (remote: net.Socket, head: Buffer, server: net.Server): void {
  if (head.length > 0) remote.unshift(head)
  server.emit('connection', remote)
  // The socket was paused to hold those bytes, and a server's on('data') does not undo an explicit pause.
  remote.resume()
}

/** Returns the function that stops it, for a pair the native path takes over. */
function closeTogether (a: net.Socket, b: net.Socket): () => void {
  const onClose = (): void => {
    if (b.destroyed) return
    // Anything b still receives has nowhere to go; read it so b sees the peer's FIN.
    b.unpipe(a)
    b.resume()
    // end(), not destroy(): what a already sent through b must still be flushed.
    b.end()
    const timer = setTimeout(() => b.destroy(), LINGER_MS)
    timer.unref()
    b.once('close', () => clearTimeout(timer))
  }
  a.once('close', onClose)
  return () => a.off('close', onClose)
}
