import type { FastifyInstance, FastifyReply } from 'fastify'
import type { Registry } from '../registry/registry'
import type { IdCounts } from '../relay/live-metrics'
import { otpauthUri } from '../registry/otpauth-uri'
import { canonicalId } from '../registry/ids'
import { oldSecrets } from '../registry/records'
import { syncGet } from '../registry/sync-get'
import type { IdentityRecord } from '../registry/registry'
import { ADD_BODY, EMPTY_BODY, ID_PARAMS, ROTATE_BODY } from './validation'
import { refuse } from './refusal'
import { MAX_ROTATE_OVERLAP_S } from './options'

export interface AdminTarget {
  registry: Registry
  /** Live counts of the IDs that have parked, waiting or spliced connections. */
  counts: () => Map<string, IdCounts>
  /** Closes an ID's parked connections (its waiting clients get 503) and its spliced pairs. */
  disconnect: (id: string) => { parked: number, spliced: number }
  /** The `rendezvous agent` command line for an ID and its secret. */
  agentCommand: (id: string, secret: string) => string
  /** Default overlap of a rotation, in ms. */
  rotateOverlap: number
}

const ZERO = { parked: 0, waiting: 0, spliced: 0 }

interface IdParams { id: string }
interface AddBody { id?: string, secret?: string }
interface RotateBody { overlapSeconds?: number, secret?: string }

const ID_ROUTE = { schema: { params: ID_PARAMS, body: EMPTY_BODY } }

/** When each old secret still accepted stops being accepted, the earliest first; nothing when none is. */
function oldSecretsUntil (record: IdentityRecord, nowMs: number): { previousSecretUntil?: string, previousSecretsUntil?: string[] } {
  const until = oldSecrets(record).map(o => o.expiresAt).filter(at => Date.parse(at) > nowMs).sort((a, b) => Date.parse(a) - Date.parse(b))
  return until.length === 0 ? {} : { previousSecretUntil: until[until.length - 1], previousSecretsUntil: until }
}

/**
 * The admin JSON API; the bearer guard in front of it has already checked
 * the token. Whether an ID exists is asked of the registry itself (under its
 * lock, or of Redis), never of the view get() answers from, which may be one
 * poll old.
 */
export function addAdminApi (app: FastifyInstance, target: AdminTarget): void {
  const { registry } = target
  const noSuchId = async (reply: FastifyReply): Promise<FastifyReply> => await refuse(reply, 404, 'no such ID')

  app.get('/api/ids', async () => {
    const counts = target.counts()
    const records = await registry.list()
    return {
      ids: records.map(r => ({
        id: r.id,
        createdAt: r.createdAt,
        ...(counts.get(r.id) ?? ZERO),
        ...oldSecretsUntil(r, Date.now())
      }))
    }
  })

  app.post<{ Body: AddBody }>('/api/ids', { schema: { body: ADD_BODY } }, async (request, reply) => {
    const body = request.body
    const record = await registry.add({ id: body.id, secret: body.secret })
    reply.code(201)
    return { id: record.id, secret: record.secret, otpauth: otpauthUri(record), createdAt: record.createdAt, agentCommand: target.agentCommand(record.id, record.secret) }
  })

  app.delete<{ Params: IdParams }>('/api/ids/:id', ID_ROUTE, async (request, reply) => {
    const id = canonicalId(request.params.id)
    if (id === undefined || !(await registry.remove(id))) return await noSuchId(reply)
    return { id, removed: true }
  })

  app.post<{ Params: IdParams, Body: RotateBody }>('/api/ids/:id/rotate', { schema: { params: ID_PARAMS, body: ROTATE_BODY } }, async (request, reply) => {
    if (registry.rotate === undefined) return await refuse(reply, 501, 'this registry cannot rotate secrets')
    const body = request.body
    const seconds = body.overlapSeconds ?? target.rotateOverlap / 1000
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_ROTATE_OVERLAP_S) {
      return await refuse(reply, 400, `overlapSeconds must be a number from 0 to ${MAX_ROTATE_OVERLAP_S}`)
    }
    const id = canonicalId(request.params.id)
    const overlapMs = Math.round(seconds * 1000)
    const record = id === undefined ? undefined : await registry.rotate(id, { overlapMs, secret: body.secret })
    if (id === undefined || record === undefined) return await noSuchId(reply)
    // The replaced secret comes first among the old ones; with no overlap it is not among them.
    const previousSecretUntil = overlapMs === 0 ? null : record.previousExpiresAt ?? null
    return { id, secret: record.secret, otpauth: otpauthUri(record), previousSecretUntil, agentCommand: target.agentCommand(id, record.secret) }
  })

  // Cutting is local: what this node holds for the ID is cut even while the
  // registry cannot be read (Redis away), and whatever the registry says.
  app.post<{ Params: IdParams }>('/api/ids/:id/disconnect', ID_ROUTE, async (request, reply) => {
    const id = canonicalId(request.params.id)
    if (id === undefined) return await noSuchId(reply)
    if (!heldHere(target.counts().get(id)) && !(await knownNow(registry, id, reply))) return await noSuchId(reply)
    return { id, ...target.disconnect(id) }
  })
}

const heldHere = (c: IdCounts | undefined): boolean => c !== undefined && c.parked + c.waiting + c.spliced > 0

/** Whether the ID exists on the registry as it is now; on the view when the registry cannot be read. */
async function knownNow (registry: Registry, id: string, reply: FastifyReply): Promise<boolean> {
  try {
    return (await registry.list()).some(r => r.id === id)
  } catch (err) {
    reply.log.warn({ id, error: (err as Error)?.message ?? String(err) }, 'cannot read the registry; the ID is looked up in the IDs last read')
    return syncGet(registry, id) !== undefined
  }
}
