import { within } from '../deadline'

/** Why a node should not take new traffic now. */
export type NotReadyReason = 'not_listening' | 'registry_unreachable' | 'replay_journal_failing' | 'replay_store_failing' | 'replay_cache_full' | 'throttle_store_failing' | 'under_pressure' | 'lot_full' | 'shutting_down'

export interface ReadinessProbe {
  listening: () => boolean
  closing: () => boolean
  underPressure: () => boolean
  lotFull: () => boolean
  /** The registry's own reachability check (Registry.check), if it has one. */
  checkRegistry?: () => Promise<void>
  /** How long the registry check may take before it counts as unreachable, in ms. */
  registryTimeout: number
  /** False while the replay journal cannot be written, so that every token is refused with 503. */
  journalWritable?: () => boolean
  /** Tokens the replay cache can still take; at 0 every new one-time token is refused with 503. */
  replayCacheRoom?: () => number
  /** The replay cache's own check (ReplayCache.check), if it has one: rejects while it cannot store a token. Bounded by registryTimeout too. */
  checkReplayCache?: () => Promise<void>
  /** An app's throttle store's check: rejects while it cannot count failed attempts, when every CONNECT gets 503. Bounded by registryTimeout too. */
  checkThrottleStore?: () => Promise<void>
}

export interface Readiness { ready: boolean, reasons: NotReadyReason[] }

/** Every reason at once, so an operator sees the whole picture in one probe. */
export async function readiness (probe: ReadinessProbe): Promise<Readiness> {
  const reasons: NotReadyReason[] = []
  if (probe.closing()) reasons.push('shutting_down')
  if (!probe.listening()) reasons.push('not_listening')
  // At once: a hung Redis would otherwise make one probe wait out both timeouts.
  const [registryUp, storeUp, throttleUp] = await Promise.all([
    registryReachable(probe), passes(probe.checkReplayCache, probe.registryTimeout), passes(probe.checkThrottleStore, probe.registryTimeout)
  ])
  if (!registryUp) reasons.push('registry_unreachable')
  if (probe.journalWritable?.() === false) reasons.push('replay_journal_failing')
  if (!storeUp) reasons.push('replay_store_failing')
  if (probe.replayCacheRoom?.() === 0) reasons.push('replay_cache_full')
  if (!throttleUp) reasons.push('throttle_store_failing')
  if (probe.underPressure()) reasons.push('under_pressure')
  if (probe.lotFull()) reasons.push('lot_full')
  return { ready: reasons.length === 0, reasons }
}

async function registryReachable (probe: ReadinessProbe): Promise<boolean> {
  return await passes(probe.checkRegistry, probe.registryTimeout)
}

async function passes (check: (() => Promise<void>) | undefined, timeoutMs: number): Promise<boolean> {
  if (check === undefined) return true
  return await within(check().then(() => true, () => false), timeoutMs, () => false)
}
