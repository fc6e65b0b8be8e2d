import type { Server as HttpServer } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { Registry as PromRegistry } from 'prom-client'
import type { ClusterNode } from './cluster/cluster'
import type { ResolvedOptions } from './options'
import { AuthThrottle } from './relay/auth-throttle'
import { unroutedAnswer, type AnswerUnrouted } from './relay/challenge'
import { addressKeyer, type AddressKey } from './relay/address-group'
import { capConnections, type CapRefusal } from './relay/connection-cap'
import { closeFailedHandshakes, installHandoff, setHandshakeTimeout, takeHostCheck } from './relay/handoff'
import { logLimiter } from './relay/log-limit'
import { createHiddenSide } from './relay/hidden-side'
import type { RendezvousMetrics } from './relay/metrics'
import { createMobileSide, type SplicedPair } from './relay/mobile-side'
import { requireHost, type Ticket } from './relay/mobile-decide'
import { ParkingLot } from './relay/parking-lot'
import { SpliceSet } from './relay/splice-set'
import { answerAsMain, watchParserRefusals } from './relay/parser-refusals'
import { answerPlainHttpOnTls } from './relay/plain-on-tls'
import { countFailedHandshakes } from './relay/tls-failures'
import type { RelayState } from './state'

export interface RelayParts {
  state: RelayState
  cluster: ClusterNode | undefined
  metrics: RendezvousMetrics
  promRegistry: PromRegistry | undefined
  log: FastifyBaseLogger
  underPressure: () => boolean
}

/** The relay as installed on one HTTP server. */
export interface Relay {
  lot: ParkingLot
  splices: Set<SplicedPair>
  /** The answer to a request no route handles: the challenge, or 404 for an unknown ID. */
  answerUnrouted: AnswerUnrouted
  closing: () => boolean
  /** Refuses new work, closes parked connections, and gives spliced pairs the grace period before cutting them. */
  drain: () => Promise<void>
  /**
   * Hooks another server of the same app into the relay (Fastify's second
   * binding of `localhost`): its CONNECTs park in the same lot, its clients
   * are matched against it, its connections count against the same caps,
   * and its refusals get the answers of the app's main server.
   */
  attach: (server: HttpServer) => void
  /** Takes back what was installed on the server and the registry. */
  uninstall: () => void
}

/** Builds the relay's two sides around one parking lot and hooks them into the server's parser. */
export async function assembleRelay (server: HttpServer, o: ResolvedOptions, parts: RelayParts): Promise<Relay> {
  const { state, cluster, metrics, log } = parts
  const lot = createLot(o, parts)
  const splices = new SpliceSet()
  let closing = false
  const isClosing = (): boolean => closing
  const keyOf = addressKeyer(o.ipv6Subnet)
  const hidden = hiddenSide(server, o, parts, { lot, keyOf, isClosing })
  const probes = unknownIdThrottle(o, state, keyOf)
  const remote = await cluster?.start({ lot, splices, spliceIdleTimeout: o.spliceIdleTimeout, lingerTimeout: o.lingerTimeout, splice: o.splice, relayMetrics: metrics, isClosing, metrics: parts.promRegistry })
  const mobile = createMobileSide({
    registry: state.registry,
    remote,
    lot,
    metrics,
    log,
    limits: o,
    refusing: () => closing ? 'shutting_down' : parts.underPressure() ? 'under_pressure' : undefined,
    coolingOff: async address => probes === undefined ? 0 : await probes.check(address, ''),
    sourceOf: keyOf,
    splices
  })
  const hook = (target: HttpServer): () => void => {
    const giveBackHostCheck = takeHostCheck(target)
    const decide = giveBackHostCheck === undefined ? mobile.decide : requireHost(target, mobile.decide)
    const unhook = installHandoff<Ticket>(target, { decide, onClaimed: mobile.onClaimed, onConnect: hidden.onConnect })
    const unwatch = watchParserRefusals(target, metrics, log, keyOf)
    const unanswer = answerPlainHttpOnTls(target, metrics, log, keyOf)
    if (o.handshakeTimeout > 0) setHandshakeTimeout(target, o.handshakeTimeout)
    const unclose = closeFailedHandshakes(target)
    const uncount = countFailedHandshakes(target, metrics, log)
    // Fastify gives the app's clientErrorHandler to its main server only.
    const unshare = target === server ? undefined : answerAsMain(target, server, log)
    hidden.cap?.add(target)
    return () => {
      unhook()
      giveBackHostCheck?.()
      unwatch()
      unanswer()
      unclose()
      uncount()
      unshare?.()
    }
  }
  const unhooks = [hook(server)]
  const unsubscribe = state.registry.onRemove(id => {
    const closed = lot.evict(id)
    log.info({ id, closed }, 'the ID was removed or its old secret cut off; its parked connections were closed')
  })
  return {
    lot,
    splices,
    answerUnrouted: unroutedAnswer(o.realm, metrics, probes, { closing: isClosing, retryAfter: o.retryAfter, lingerTimeout: o.lingerTimeout }, log),
    closing: isClosing,
    drain: async () => {
      closing = true
      // Waits end before any grace period: a client waiting here, or for another node, gets its 503 now.
      mobile.endWaits()
      lot.closeAll()
      for (const cut of hidden.handshakes.values()) cut()
      await endSplices(splices, o.closeGracePeriod)
    },
    attach: target => { unhooks.push(hook(target)) },
    uninstall: () => {
      for (const unhook of unhooks) unhook()
      hidden.cap?.remove()
      unsubscribe()
    }
  }
}

/**
 * Counts every connection a cap closes, and writes a line at most once a
 * minute per address (or IPv6 subnet) for the per-address cap, and once a
 * minute in all for the total: a flood past a cap repeats it thousands of
 * times a second.
 */
function capRefusalLog (metrics: RendezvousMetrics, log: FastifyBaseLogger, o: ResolvedOptions): (refusal: CapRefusal) => void {
  const logNow = logLimiter(60_000)
  return ({ reason, address, key }) => {
    metrics.connectionRefused(reason)
    const subnet = key === address ? {} : { subnet: key }
    if (reason === 'per_address_cap') {
      const level = logNow(key) ? 'info' : 'debug'
      log[level]({ address, ...subnet, outcome: reason, max: o.maxConnectionsPerAddress }, 'connection closed at accept: this address holds the most connections allowed (maxConnectionsPerAddress); repeats within a minute are debug lines')
    } else {
      const level = logNow(reason) ? 'info' : 'debug'
      log[level]({ address, outcome: reason, max: o.maxConnections }, 'connection closed at accept: the server holds the most connections allowed (maxConnections); repeats within a minute are debug lines')
    }
  }
}

function hiddenSide (server: HttpServer, o: ResolvedOptions, parts: RelayParts, { lot, keyOf, isClosing }: { lot: ParkingLot, keyOf: AddressKey, isClosing: () => boolean }) {
  const { state, metrics, log } = parts
  // CONNECTs between accept and their answer, so that a shutdown can answer them and close.
  const handshakes = new Map<Socket, () => void>()
  const cap = o.maxConnectionsPerAddress > 0 || o.maxConnections > 0
    ? capConnections(server, { perAddress: o.maxConnectionsPerAddress, total: o.maxConnections }, keyOf, capRefusalLog(metrics, log, o))
    : undefined
  const onConnect = createHiddenSide({
    verify: state.verify,
    registryStale: () => state.registry.stale?.() === true,
    throttle: new AuthThrottle(state.throttleStore, o.authFailures, 'authfail', keyOf),
    lot,
    metrics,
    log,
    limits: o,
    isClosing,
    track: (socket, cut) => {
      handshakes.set(socket, cut)
      return () => handshakes.delete(socket)
    },
    // Parked, a hidden server's connection is bounded by the parking limits and maxSpliced, not by its address.
    onParked: socket => cap?.exempt(socket)
  })
  return { onConnect, handshakes, cap }
}

function createLot (o: ResolvedOptions, { metrics, cluster, log }: RelayParts): ParkingLot {
  return new ParkingLot({
    maxPerId: o.maxParkedPerId,
    maxTotal: o.maxParked,
    maxWaitersPerId: o.maxWaitersPerId,
    maxWaiters: o.maxWaiters,
    maxWaitersPerSource: o.maxWaitersPerAddress,
    keepAliveInitialDelay: o.keepAliveInitialDelay
  }, {
    onChange: (_parked, _waiting, id) => {
      if (id !== undefined) cluster?.parkedChanged(id)
    },
    onParkedExit: (id, why) => {
      metrics.parkedExit(why)
      // A retirement is routine, one per parked connection every few minutes (the agent's --max-age).
      log[why === 'retired' ? 'debug' : 'info']({ id, reason: why }, 'parked connection left')
    }
  })
}

// Counts requests naming unknown IDs per address, so that scanning for IDs from the mobile side is cooled off too.
function unknownIdThrottle (o: ResolvedOptions, state: RelayState, keyOf: AddressKey): AuthThrottle | undefined {
  const { perAddress, window, coolOff } = o.unknownIdFailures
  return perAddress > 0 ? new AuthThrottle(state.throttleStore, { perPair: 0, perAddress, perIdTotp: 0, window, coolOff }, 'unknownid', keyOf) : undefined
}

async function endSplices (splices: Set<SplicedPair>, grace: number): Promise<void> {
  if (grace > 0 && splices.size > 0) {
    const drained = Promise.all([...splices].map(s => s.done))
    await Promise.race([drained, new Promise(resolve => setTimeout(resolve, grace).unref())])
  }
  for (const pair of splices) pair.abort()
}
