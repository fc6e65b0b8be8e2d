import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { createForwarder } from '../../lib/cluster/forwarder'
import { createClusterMetrics } from '../../lib/cluster/metrics'
import { PeerTokens } from '../../lib/cluster/peer-token'
import { CLUSTER_SECRET, startNode } from './nodes'
import { redisMissing, startRedis } from './redis-server'

/*
 * A node whose clock is off makes peer tokens the others refuse. The node
 * that refused one logged that the clocks may be off, while the node whose
 * clock it was logged only "is --cluster-secret the same on every node?".
 * The refusal now says which way the token's time is off, and the asking
 * node logs it with a hint at the clocks.
 */

const skip = redisMissing() ?? false

/** PeerTokens whose clock runs `skewMs` ahead of this process's. */
class SkewedTokens extends PeerTokens {
  constructor (readonly skewMs: number) { super(CLUSTER_SECRET) }
  override create (target: string, id: string, payload: Buffer, now = Date.now()): string {
    return super.create(target, id, payload, now + this.skewMs)
  }
}

interface Logged { level: string, fields: Record<string, unknown>, msg: string }

function recorder (): { log: FastifyBaseLogger, lines: Logged[] } {
  const lines: Logged[] = []
  const at = (level: string) => (fields: Record<string, unknown>, msg: string): void => { lines.push({ level, fields, msg }) }
  const log = { warn: at('warn'), debug: at('debug'), info: at('info'), error: at('error') } as unknown as FastifyBaseLogger
  return { log, lines }
}

t.test('a node whose clock is off is told so by the node that refuses its token, and logs a hint at the clocks', { skip }, async t => {
  const redis = await startRedis(t)
  const holder = await startNode('b', redis.url)
  t.teardown(async () => { await holder.close() })
  const { id, secret } = await holder.app.rendezvous.registry.add({})
  const hidden = await holder.park(id, secret)
  t.teardown(() => hidden.destroy())
  const address = holder.app.rendezvous.cluster!.peerAddress!

  for (const [skewMs, way] of [[60_000, 'ahead of'], [-60_000, 'behind']] as const) {
    const { log, lines } = recorder()
    const forwarder = createForwarder({
      presence: { lookup: async () => [{ nodeId: 'b', address, parked: 1 }] },
      tokens: new SkewedTokens(skewMs),
      metrics: createClusterMetrics(undefined, () => true),
      log,
      reachable: () => true,
      timeout: 3000,
      retryInterval: 250,
      tls: () => undefined
    })
    const got = await forwarder.open(id, Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n'), new AbortController().signal)
    t.equal(got, 'none', `clock ${way}: no link`)
    const [line] = lines.filter(l => l.level === 'warn')
    t.equal(line?.msg, "node did not hand over a connection; trying the next (are the nodes' clocks set? that node refused this node's token as made too far from its own clock)", `clock ${way}: the hint is the clocks`)
    t.equal(line?.fields.error, `node answered RENDEZVOUS-PEER/2 401 token made more than 30 s ${way} this node's clock`, 'with the refusal as the other node gave it')
    t.notMatch(line?.msg ?? '', /cluster-secret/, 'not the secret')
  }
})
