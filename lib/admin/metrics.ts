import { Counter, type Registry as PromRegistry } from 'prom-client'
import { metric } from '../relay/metrics'

/** What an admin request did, from its method and route: a fixed set, so the series stay few. */
const ACTIONS: Record<string, string> = {
  'GET /api/ids': 'list',
  'POST /api/ids': 'add',
  'DELETE /api/ids/:id': 'remove',
  'POST /api/ids/:id/rotate': 'rotate',
  'POST /api/ids/:id/disconnect': 'disconnect',
  'GET /': 'page',
  'GET /admin.js': 'page'
}

export type AdminCount = (method: string, route: string | undefined, status: number) => void

/**
 * `rendezvous_admin_requests_total{action,status}`: every answer of the
 * admin listener, refusals of the bearer token (401) included, so that
 * changes to the IDs and attempts at them can be watched and alerted on.
 */
export function adminRequestCounter (registry: PromRegistry | undefined): AdminCount {
  if (registry === undefined) return () => {}
  const counter = metric(registry, 'rendezvous_admin_requests_total', () => new Counter({
    name: 'rendezvous_admin_requests_total',
    help: 'Requests to the admin listener, by action (list, add, remove, rotate, disconnect, page, other) and HTTP status',
    labelNames: ['action', 'status'],
    registers: [registry]
  }))
  return (method, route, status) => {
    counter.inc({ action: ACTIONS[`${method} ${route ?? ''}`] ?? 'other', status: String(status) })
  }
}
