import { test } from 'tap'
import { markdown, roundRatios, targets, type Results } from '../../bench/lib/report'

const rate = (rps: number) => ({ rps, p50: 1, p99: 2, errors: 0 })

function results (): Results {
  return {
    meta: { date: '2026-11-26 12:00 UTC', node: '20', cpus: '2 × test', quick: false, rounds: 3, seconds: {}, bulkBytes: 1, skipped: [], durationSeconds: 1 },
    paths: [
      { name: 'direct', group: 'one hop', label: 'direct' },
      { name: 'relay', group: 'one hop', label: 'relay' },
      { name: 'nginx', group: 'one hop', label: 'nginx' }
    ],
    // nginx has one lucky round: best against best says 0.75x, round by round the relay wins twice.
    keepAlive: {
      relay: { best: rate(30), rounds: [24, 30, 27] },
      nginx: { best: rate(40), rounds: [40, 25, 20] }
    },
    fresh: {},
    bulkDown: {},
    bulkUp: {},
    memory: {}
  } as unknown as Results
}

test('a target is best against best, and each round is given beside it', async t => {
  const r = results()
  t.same(roundRatios(r, 'keepAlive', 'relay', 'nginx'), [0.6, 1.2, 1.35])
  const keepAlive = targets(r).find(x => x.what.startsWith('keep-alive, one hop'))
  t.equal(keepAlive?.measured, '0.75x')
  t.equal(keepAlive?.met, false)
  t.equal(keepAlive?.rounds, '0.60x, 1.20x, 1.35x')
  t.match(markdown(r), /\| keep-alive, one hop: ≥ 1\.0x nginx stream \| 0\.75x \| no \| 0\.60x, 1\.20x, 1\.35x \| {2}\|$/m)
})

test('a path missing from a round gives no ratio for it, and an unmeasured target no rounds', async t => {
  const r = results()
  r.keepAlive.nginx.rounds = [40]
  t.same(roundRatios(r, 'keepAlive', 'relay', 'nginx'), [0.6])
  t.equal(targets(r).find(x => x.what.startsWith('bulk download'))?.rounds, undefined)
})

test('each rate target names what the bare Node relay of its kind reached against the same peer', async t => {
  const r = results()
  r.paths.push({ name: 'floor', group: 'one hop', label: 'floor' }, { name: 'pipe', group: 'one hop', label: 'pipe' })
  r.keepAlive.pipe = { best: rate(28), rounds: [28] }
  r.fresh = { direct: { best: rate(100), rounds: [100] }, relay: { best: rate(20), rounds: [20] }, floor: { best: rate(35), rounds: [35] } }
  const fresh = targets(r).find(x => x.what.startsWith('new rendezvous'))
  t.equal(fresh?.measured, '0.20x')
  t.equal(fresh?.floor, '0.35x floor', 'a floor that was not measured is left out')
  r.fresh['floor-http'] = { best: rate(27), rounds: [27] }
  t.equal(targets(r).find(x => x.what.startsWith('new rendezvous'))?.floor, '0.35x floor, 0.27x floor-http')
  t.equal(targets(r).find(x => x.what.startsWith('keep-alive, one hop'))?.floor, '0.70x pipe')
  t.equal(targets(r).find(x => x.what.startsWith('keep-alive, TLS'))?.floor, undefined, 'no pipe-tls measured, no floor given')
  t.match(markdown(r), /\| new rendezvous per request, plain: ≥ 0\.5x direct \| 0\.20x \| no \| 0\.20x \| 0\.35x floor, 0\.27x floor-http \|/)
})

test('a parked connection a few bytes below the bare socket reads 0.0 KiB, not -0.0', async t => {
  const r = results()
  r.memory.plain = { connections: 10_000, relayBytesPerConnection: 2252, bareBytesPerConnection: 2276, overheadBytes: -24, relayHeapPerConnection: 1435, bareHeapPerConnection: 874, heapOverheadBytes: 561 }
  t.equal(targets(r).find(x => x.what.startsWith('parked connection, plain'))?.measured, '0.0 KiB')
  t.match(markdown(r), /\| plain \| 10,000 \| 2\.2 KiB \| 2\.2 KiB \| 0\.0 KiB \| 0\.5 KiB \|/)
})

test('bulk tables give the CPU per GiB of what sits in between, and rate tables the CPU per request', async t => {
  const r = results()
  r.keepAlive.relay.best = { ...rate(30), cpuUs: 1322 }
  r.bulkDown = {
    direct: { best: { mbps: 1000 }, rounds: [1000] },
    relay: { best: { mbps: 900, cpuMsPerGiB: 210 }, rounds: [900] },
    nginx: { best: { mbps: 950, cpuMsPerGiB: 1410 }, rounds: [950] }
  }
  const md = markdown(r)
  t.match(md, /### 3\. Bulk download through one connection\n\n\| path \| MB\/s \| p50 ms \| p99 ms \| errors \| vs direct \| vs peer \| CPU ms\/GiB in between \|/)
  t.match(md, /\| relay \(relay\) \| 900 \| {2}\| {2}\| {2}\| 0\.90x \| 0\.95x nginx \| 210 \|/)
  t.match(md, /\| nginx \(nginx\) \| 950 \| {2}\| {2}\| {2}\| 0\.95x \| {2}\| 1,410 \|/)
  t.match(md, /\| direct \(direct\) \| 1,000 \| {2}\| {2}\| {2}\| 1\.00x \| {2}\| {2}\|/)
  t.match(md, /\| relay \(relay\) \| 30 \| 1 \| 2 \| 0 \| .* \| 1,322 \|/)
})
