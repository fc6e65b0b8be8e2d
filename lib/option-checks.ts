import type { ClusterOptions } from './cluster/options'
import { RendezvousOptionError } from './errors'
import { shown } from './option-value'

/*
 * The checks of the plugin's options that are not numbers: each wrong value
 * refused by name when the plugin is registered.
 */

export function boolean (name: string, value: unknown): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw new RendezvousOptionError(`${name} must be true or false, got ${shown(value)}`)
  return value
}

// An object the app passed in for one of ours: checked here, so that a wrong one is a named option error, not a TypeError later.
export function objectWith (name: string, value: unknown, methods: string[], what = `an object with ${methods.join(', ')}`): void {
  if (value === undefined) return
  const missing = methods.filter(m => typeof (value as Record<string, unknown> | null)?.[m] !== 'function')
  if (typeof value !== 'object' || value === null || missing.length > 0) {
    throw new RendezvousOptionError(`${name} must be ${what}${typeof value === 'object' && value !== null ? `; ${missing.join(', ')} missing` : ''}`)
  }
}

function routePath (name: string, value: unknown): string | false {
  if (value === undefined || value === false) return false
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~\-/]+$/.test(value)) {
    throw new RendezvousOptionError(`${name} must be a path such as /${name.replace('Path', 'z')} (not /), or false, got ${typeof value === 'string' ? value : shown(value)}`)
  }
  return value
}

export function routePaths (opts: { healthPath?: string | false, readyPath?: string | false }): { healthPath: string | false, readyPath: string | false } {
  const healthPath = routePath('healthPath', opts.healthPath)
  const readyPath = routePath('readyPath', opts.readyPath)
  if (healthPath !== false && healthPath === readyPath) {
    throw new RendezvousOptionError(`readyPath must differ from healthPath, both are ${healthPath}`)
  }
  return { healthPath, readyPath }
}

// The cluster options themselves are read where the cluster opens; here only what would otherwise pass unsaid.
export function clusterOption (opts: { cluster?: ClusterOptions, redis?: unknown }): ClusterOptions | undefined {
  const { cluster } = opts
  if (cluster === undefined) return undefined
  if (typeof cluster !== 'object' || cluster === null || Array.isArray(cluster)) {
    throw new RendezvousOptionError(`cluster must be an object with secret and the other cluster options, got ${shown(cluster)}`)
  }
  if (opts.redis === undefined) {
    throw new RendezvousOptionError('cluster needs the redis option too (a Redis URL or an ioredis client); without it this node would run alone')
  }
  return cluster
}
