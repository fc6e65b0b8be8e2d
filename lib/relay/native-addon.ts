import { join } from 'node:path'
import { NativeSpliceUnavailableError } from '../errors'

/** Which data path a splice takes: `auto` picks native where it is loaded and the pair is plain TCP. */
export type SplicePath = 'auto' | 'native' | 'js'
export const SPLICE_PATHS: readonly SplicePath[] = ['auto', 'native', 'js']

/** Whether `auto` takes the native path where it can: decided by the measurements in docs/performance.md. */
export const AUTO_NATIVE = true

/** Whether a splice on this path looks for the addon at all. */
export function triesNative (path: SplicePath): boolean {
  return path === 'native' || (path === 'auto' && AUTO_NATIVE)
}

/**
 * How a native pair ended, as the addon reports it: `unanswered` only where
 * go() asked for it, when the hidden side ended or failed before its first
 * byte to the client, whose socket the addon then left as it was.
 */
export type NativeEnd = 'closed' | 'error' | 'idle' | 'aborted' | 'unanswered'

interface Binding {
  init: (onEnd: (slot: number, end: NativeEnd, toHidden: number, toClient: number) => void) => void
  start: (clientFd: number, hiddenFd: number, idleMs: number) => number
  go: (slot: number, answersUnanswered: boolean) => void
  bytes: (slot: number, out: number[]) => boolean
  abort: (slot: number) => void
  stats: () => { pairs: number, thread: boolean }
}

/** The native data path as the JS side uses it (docs/performance.md). */
export interface NativeSplicer {
  /**
   * Duplicates both descriptors and reserves a pair; nothing moves yet.
   * Throws (code EMFILE) when the descriptors cannot be duplicated.
   * `onEnd` is called once, after go(), when the pair has ended.
   */
  start: (clientFd: number, hiddenFd: number, idleMs: number, onEnd: (end: NativeEnd, toHidden: number, toClient: number) => void) => number
  /**
   * The I/O thread takes over: call it once, after everything JavaScript
   * owed either side was flushed. `answersUnanswered`: a hidden side that
   * ends or fails before its first byte to the client ends the pair as
   * `unanswered`, with the client's socket untouched, for the caller to answer.
   */
  go: (slot: number, answersUnanswered?: boolean) => void
  /** Bytes moved so far each way, into `out`; false once the pair ended. */
  bytes: (slot: number, out: number[]) => boolean
  abort: (slot: number) => void
  stats: () => { pairs: number, thread: boolean }
}

/** Where the install script puts the build: native/build/ at the package root, the same two levels up from lib/relay and dist/relay. */
export const ADDON_PATH = join(__dirname, '..', '..', 'native', 'build', 'splice.node')

let loaded: { splicer: NativeSplicer } | { reason: string } | undefined

function load (): { splicer: NativeSplicer } | { reason: string } {
  if (process.platform !== 'linux') return { reason: `splice(2) is Linux only, this is ${process.platform}` }
  let binding: Binding
  try {
    binding = require(ADDON_PATH) as Binding
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { reason: code === 'MODULE_NOT_FOUND' ? 'not built (no C compiler at install, or RENDEZVOUS_NATIVE=0)' : `cannot be loaded: ${(err as Error).message}` }
  }
  // One callback for the whole process; each pair's own is found by its slot.
  const ends = new Map<number, (end: NativeEnd, toHidden: number, toClient: number) => void>()
  binding.init((slot, end, toHidden, toClient) => {
    const onEnd = ends.get(slot)
    ends.delete(slot)
    onEnd?.(end, toHidden, toClient)
  })
  return {
    splicer: {
      start: (clientFd, hiddenFd, idleMs, onEnd) => {
        const slot = binding.start(clientFd, hiddenFd, idleMs)
        ends.set(slot, onEnd)
        return slot
      },
      go: (slot, answersUnanswered) => binding.go(slot, answersUnanswered === true),
      bytes: (slot, out) => binding.bytes(slot, out),
      abort: slot => binding.abort(slot),
      stats: () => binding.stats()
    }
  }
}

/** The loaded addon, or why there is none. Loaded once, on first use. */
export function nativeSplicer (): { splicer: NativeSplicer } | { reason: string } {
  loaded ??= load()
  return loaded
}

/** The addon a splice on `path` uses for its plain-TCP pairs: undefined for `js`, or when it is not loaded. */
export function splicerFor (path: SplicePath): NativeSplicer | undefined {
  if (!triesNative(path)) return undefined
  const native = nativeSplicer()
  return 'splicer' in native ? native.splicer : undefined
}

/**
 * The path a splice takes when its caller names none: RENDEZVOUS_SPLICE
 * (which the test suite sets to run once per path), else `auto`.
 */
export function defaultSplicePath (): SplicePath {
  const env = process.env.RENDEZVOUS_SPLICE
  if (env === undefined || env === '') return 'auto'
  // A typo (JS for js) would otherwise take the addon its user meant to avoid.
  if (!SPLICE_PATHS.includes(env as SplicePath)) throw new RangeError(`RENDEZVOUS_SPLICE must be auto, native or js, got ${JSON.stringify(env)}`)
  return env as SplicePath
}

/**
 * At startup: fails when `native` was asked for and cannot be had, and logs
 * once which data path spliced pairs will take.
 */
export function announceSplicePath (path: SplicePath, log: { info: (obj: object, msg: string) => void }): void {
  if (!triesNative(path)) {
    log.info({ splice: 'js' }, 'spliced pairs use the JavaScript data path')
    return
  }
  const native = nativeSplicer()
  if ('reason' in native) {
    if (path === 'native') throw new NativeSpliceUnavailableError(native.reason)
    log.info({ splice: 'js', native: native.reason }, 'spliced pairs use the JavaScript data path: the native one is not available')
    return
  }
  log.info({ splice: 'native' }, 'plain-TCP spliced pairs use the native data path (splice(2)); TLS pairs the JavaScript one')
}
