import { connect as connectTcp, isIP, type Socket } from 'node:net'
import { connect as connectTls, type ConnectionOptions } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import type { RemoteSource } from '../relay/remote-source'
import type { ClusterMetrics } from './metrics'
import type { PeerTokens } from './peer-token'
import { logLimiter, SECRET_HINT, WARN_EVERY_MS } from './log-limit'
import { kConnId } from '../relay/symbols'
import { GO_LINE, lineEnd, looksLikeTls, MAX_PAYLOAD, PEER_PROTOCOL, PEER_VERSION, parseAnswerConnId, parseAnswerLine, peerVersionOf, readFrame, requestLine, VERSION_HINT } from './peer-wire'
import { parseHostPort } from './options'
import type { PeerNode, Presence } from './presence'

export interface ForwarderDeps {
  presence: Pick<Presence, 'lookup'>
  tokens: PeerTokens
  metrics: ClusterMetrics
  log: FastifyBaseLogger
  /** Whether the cluster state can be read at all. */
  reachable: () => boolean
  /** Time one node gets to connect and answer, in ms. */
  timeout: number
  /** TLS options for the next link, read at each dial (they can be replaced while running); plain TCP when undefined. */
  tls: () => ConnectionOptions | undefined
  retryInterval: number
}

/**
 * Serves a rendezvous from a socket parked on another node: finds the nodes
 * that hold some for the ID, asks them in turn, and returns the first link
 * whose node answered 200. A node that fails is skipped for the next one.
 */
export function createForwarder (deps: ForwarderDeps): RemoteSource {
  const warnNow = logLimiter(WARN_EVERY_MS)
  async function open (id: string, head: Buffer, signal: AbortSignal): Promise<Socket | 'none' | 'unavailable'> {
    if (!deps.reachable()) {
      deps.metrics.forward('unavailable')
      return 'unavailable'
    }
    let nodes: PeerNode[]
    try {
      nodes = await deps.presence.lookup(id)
    } catch (err) {
      // The message is enough: the cause (Redis gone or hung) is logged once, when the node loses it.
      deps.log.warn({ error: (err as Error).message, id }, 'cannot look up nodes holding this ID')
      deps.metrics.forward('unavailable')
      return 'unavailable'
    }
    for (const node of nodes) {
      if (signal.aborted) break
      try {
        const link = await ask(node, id, head, signal)
        if (link !== undefined) {
          deps.metrics.forward('forwarded')
          return link
        }
      } catch (err) {
        deps.metrics.forward('peer_failed')
        const error = (err as Error).message
        const level = warnNow(`${node.address} ${error}`) ? 'warn' : 'debug'
        deps.log[level]({ error, id, peer: node.nodeId, address: node.address }, `node did not hand over a connection; trying the next${hint(error)}`)
      }
    }
    deps.metrics.forward('none_parked')
    return 'none'
  }

  async function ask (node: PeerNode, id: string, head: Buffer, signal: AbortSignal): Promise<Socket | undefined> {
    const tls = deps.tls()
    const link = await dial(node.address, deps.timeout, tls, signal)
    const onAbort = (): void => { link.destroy() }
    signal.addEventListener('abort', onAbort, { once: true })
    let tlsError: Error | undefined
    link.once('error', (err: NodeJS.ErrnoException) => { if (isTlsError(err)) tlsError = err })
    try {
      // The line declares at most MAX_PAYLOAD bytes (a node refuses more unread); the rest of the head follows GO.
      const framed = head.subarray(0, MAX_PAYLOAD)
      link.write(requestLine({ target: node.nodeId, id, token: deps.tokens.create(node.nodeId, id, framed), length: framed.length }))
      link.write(framed)
      const line = await readFrame(link, answerEnd, deps.timeout)
      const text = line.toString('latin1')
      const status = parseAnswerLine(text)
      if (status === 200) {
        // The node reserved a connection and delivers the head only on GO: a client that stopped waiting
        // meanwhile (the abort closed the link, and readFrame failed) never has its request delivered.
        if (signal.aborted) throw new Error('the client stopped waiting')
        link.write(GO_LINE)
        if (head.length > framed.length) link.write(head.subarray(framed.length))
        // The holding node's connId of the parked connection: this node's 'relay closed' line names it, as for one parked here.
        ;(link as { [kConnId]?: string })[kConnId] = parseAnswerConnId(text)
        return link
      }
      if (status === 404) {
        link.destroy()
        return undefined
      }
      throw new Error(unexpectedAnswer(line))
    } catch (err) {
      link.destroy()
      // The client's wait ended (it left, or its deadline came) and the abort closed the link: not the node's doing.
      if (signal.aborted) throw new Error('the client stopped waiting')
      if (tlsError !== undefined) throw new Error(`the TLS session failed: ${tlsError.message}`)
      // Under TLS 1.3 the listener checks this node's certificate after the handshake is done here, and refuses it by closing, without an alert.
      if (tls !== undefined && (err as Error).message === 'peer link closed') throw new Error(`the TLS link closed before any answer: most likely the node refused this node's certificate${CERT_HINT}`)
      // A TLS listener closes a plain link it cannot read, after an alert or without a word.
      if (tls === undefined && (err as Error).message === 'peer link closed') throw new Error(`the link closed before any answer${TLS_LISTENER_HINT}`)
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  return { open, retryInterval: deps.retryInterval }
}

// A node answering 401 holds connections for the ID but does not accept this node's token: made too far from its clock,
// as its reason says, or else (that of an older node too) made with another secret.
function hint (error: string): string {
  if (/ 401 token made .* clock/.test(error)) return CLOCK_HINT
  return / 401 authentication failed/.test(error) ? SECRET_HINT : ''
}

const CLOCK_HINT = ' (are the nodes\' clocks set? that node refused this node\'s token as made too far from its own clock)'

/** The answer line, or at once a TLS record: a TLS listener answering this plain link sends no line. */
function answerEnd (buffered: Buffer): number | undefined {
  return looksLikeTls(buffered) ? buffered.length : lineEnd(buffered)
}

/** Why an answer other than 200 or 404 fails the ask, in words that say what to check. */
function unexpectedAnswer (line: Buffer): string {
  if (looksLikeTls(line)) return `the node answered in TLS: its peer listener speaks TLS, this node dials plain TCP${TLS_LISTENER_HINT}`
  const text = line.toString('latin1').trim()
  if (/^RENDEZVOUS-PEER\/\S+ 421 /.test(text)) return `node answered ${text}: another node answers at that address (after a restart, its registration soon replaces this one; if this lasts, two live nodes advertise one address, and both log it)`
  const version = peerVersionOf(text)
  if (version !== undefined && version !== PEER_VERSION) {
    return `node answered ${text}: it speaks RENDEZVOUS-PEER/${version}, this node ${PEER_PROTOCOL}${VERSION_HINT}`
  }
  return `node answered ${text.slice(0, 200)}`
}

function dial (address: string, timeoutMs: number, tls: ConnectionOptions | undefined, signal: AbortSignal): Promise<Socket> {
  const { host, port } = splitAddress(address)
  if (signal.aborted) return Promise.reject(new Error('the client stopped waiting'))
  return new Promise((resolve, reject) => {
    const socket: Socket = tls === undefined
      ? connectTcp({ host, port })
      : connectTls({ servername: isIP(host) === 0 ? host : undefined, ...tls, host, port })
    const ready = tls === undefined ? 'connect' : 'secureConnect'
    // Once TCP is up, a failure before secureConnect is one of the TLS handshake.
    let tcpUp = false
    socket.once('connect', () => { tcpUp = true })
    const ours = new Set<Error>()
    const stop = (message: string): void => {
      const err = new Error(message)
      ours.add(err)
      socket.destroy(err)
    }
    // A plain listener waits for a line and never answers a ClientHello (older nodes): the handshake just times out.
    const timer = setTimeout(() => stop(tls !== undefined && tcpUp ? `the TLS handshake with ${address} timed out${PLAIN_LISTENER_HINT}` : `connecting to ${address} timed out`), timeoutMs)
    // A node that accepts and never finishes its TLS handshake must not hold a client past its wait.
    const onAbort = (): void => { stop('the client stopped waiting') }
    signal.addEventListener('abort', onAbort, { once: true })
    socket.once(ready, () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      socket.removeListener('error', onError)
      socket.on('error', () => {})
      resolve(socket)
    })
    const onError = (err: Error): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      reject(tls !== undefined && tcpUp && !ours.has(err) ? new Error(`the TLS handshake failed: ${err.message.trim()}${plainListenerHint(err.message)}`) : err)
    }
    socket.once('error', onError)
  })
}

const CERT_HINT = ' (does that node\'s --peer-ca sign this node\'s --peer-tls-cert?)'
const TLS_LISTENER_HINT = ' (does that node speak TLS on the peer link? give every node --peer-tls-cert, --peer-tls-key and --peer-ca, or none)'
const PLAIN_LISTENER_HINT = ' (does that node speak TLS on the peer link? it seems to listen in plain TCP: give every node --peer-tls-cert, --peer-tls-key and --peer-ca, or none)'

// What OpenSSL says when the other end does not speak TLS at all: a plain line, or silence.
function plainListenerHint (message: string): string {
  return /wrong version number|packet length too long|unexpected eof|record layer failure|http request/i.test(message) ? PLAIN_LISTENER_HINT : ''
}

// OpenSSL's errors, alerts from the other side included, and Node's TLS ones.
function isTlsError (err: NodeJS.ErrnoException): boolean {
  return /^ERR_(SSL|TLS)_/.test(err.code ?? '') || (err as { library?: string }).library === 'SSL routines'
}

/** host:port, with IPv6 hosts in brackets. */
export function splitAddress (address: string): { host: string, port: number } {
  const parsed = parseHostPort(address)
  if (parsed === undefined || parsed.port < 1 || parsed.port > 65535) throw new Error(`not a host:port address: ${JSON.stringify(address)}`)
  return parsed
}
