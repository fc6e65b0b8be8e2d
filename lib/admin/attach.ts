import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { AdminTarget } from './api'
import { currentPublicUrl, type ResolvedAdminOptions } from './options'
import { adminAddress, createAdminServer } from './server'
import type { AdminCount } from './metrics'
import { listenWith } from '../listen-own'
import { shellQuote } from '../shell-quote'

/**
 * Starts the admin listener when the app is ready (so a port in use fails
 * the start, as the public port does) and closes it with the app.
 */
export function attachAdmin (app: FastifyInstance, opts: ResolvedAdminOptions, target: Omit<AdminTarget, 'agentCommand' | 'rotateOverlap'>, count: AdminCount): () => AddressInfo | undefined {
  const log = app.log.child({ plugin: 'rendezvous-admin' })
  const admin = createAdminServer({
    host: opts.host,
    port: opts.port,
    token: opts.token,
    log,
    count,
    target: { ...target, rotateOverlap: opts.rotateOverlap, agentCommand: (id, secret) => agentCommand(opts, id, secret, problem => { log.warn(problem) }) }
  })
  listenWith(app, admin, 'admin', opts)
  return () => adminAddress(admin)
}

function agentCommand (opts: ResolvedAdminOptions, id: string, secret: string, warn: (problem: string) => void): string {
  const url = currentPublicUrl(opts.publicUrl, warn)
  const ca = opts.caFile === undefined ? '' : ` --ca ${shellQuote(opts.caFile)}`
  // --id=VALUE: node's parseArgs takes `--id -x1` for two flags, and refuses it.
  return `${opts.cli} agent --server ${shellQuote(url)} --id=${shellQuote(id)} --secret ${secret} --to http://127.0.0.1:PORT${ca}`
}
