import { spawnSync } from 'node:child_process'
import t from 'tap'
import { buildProblem, ROOT } from '../helpers/cli'

// What each kind of consumer gets from the built package at run time, by its
// name (self-reference through package.json "exports"): require() and ESM
// import must both see the plugin and every named export. The types of the
// same entry points are checked by the consumers in types/.

const MAIN = ['FileRegistry', 'MemoryRegistry', 'MemoryReplayCache', 'MemoryThrottleStore', 'clientErrorHandler', 'createTotp', 'createV1Token', 'default', 'errors', 'fastifyRendezvous', 'frameworkErrors', 'rendezvous']
const AGENT = ['AgentClosedError', 'AgentOptionError', 'RendezvousAgent', 'RendezvousAuthError', 'RendezvousCertificateError', 'createTotp', 'createV1Token']
const CLIENT = ['createRendezvousFetch', 'rendezvousFetch']

function node (args: string[]): unknown {
  const out = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, timeout: 30_000 })
  if (out.status !== 0) throw new Error(`node ${args.join(' ')} exited ${out.status}: ${out.stderr}`)
  return JSON.parse(out.stdout)
}

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('require() gives the plugin itself, carrying every export', async t => {
    const seen = node(['-e', `
      const m = require('fastify-rendezvous')
      console.log(JSON.stringify({
        type: typeof m, self: [m.default, m.rendezvous, m.fastifyRendezvous].every(x => x === m),
        main: Object.keys(m).sort(),
        agent: Object.keys(require('fastify-rendezvous/agent')).sort(),
        client: Object.keys(require('fastify-rendezvous/client')).sort()
      }))`])
    t.same(seen, { type: 'function', self: true, main: MAIN, agent: AGENT, client: CLIENT })
  })

  t.test('ESM import: the default and the named exports, as Node detects them in CommonJS', async t => {
    // Node 23 and later also offer the whole CommonJS object under the name 'module.exports'; that is Node's, not ours.
    const seen = node(['--input-type=module', '-e', `
      import plugin, * as m from 'fastify-rendezvous'
      import * as agent from 'fastify-rendezvous/agent'
      import * as client from 'fastify-rendezvous/client'
      const names = (ns) => Object.keys(ns).filter(k => k !== '__esModule' && k !== 'default' && k !== 'module.exports').sort()
      console.log(JSON.stringify({
        type: typeof plugin, named: m.rendezvous === plugin && m.fastifyRendezvous === plugin,
        main: names(m), agent: names(agent), client: names(client)
      }))`])
    t.same(seen, {
      type: 'function',
      named: true,
      main: MAIN.filter(k => k !== 'default'),
      agent: AGENT,
      client: CLIENT
    })
  })
}
