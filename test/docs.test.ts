import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import ts from 'typescript'
import Fastify from 'fastify'
import rendezvous, { MemoryRegistry } from '../lib/index'
import * as errors from '../lib/errors'
import * as agent from '../lib/entry/agent'

/*
 * What the operator's page says against what the code can do: every value a
 * label can take, and every log line above debug, read from lib/ itself, so
 * that a new outcome or a reworded line cannot go undocumented.
 */

const ROOT = join(__dirname, '..')
const LIB = join(ROOT, 'lib')
const operations = readFileSync(join(ROOT, 'docs', 'operations.md'), 'utf8')
const pluginDoc = readFileSync(join(ROOT, 'docs', 'plugin.md'), 'utf8')

const program = ts.createProgram(['metrics.ts', 'parking-lot.ts', 'splice.ts'].map(f => join(LIB, 'relay', f)), { strict: true, noEmit: true })
const checker = program.getTypeChecker()

function exported (file: string, name: string): ts.Symbol {
  const source = program.getSourceFile(join(LIB, 'relay', file))
  const symbol = checker.getExportsOfModule(checker.getSymbolAtLocation(source!)!).find(s => s.name === name)
  if (symbol === undefined) throw new Error(`${file} exports no ${name}`)
  return symbol
}

function literals (type: ts.Type): string[] {
  const parts = type.isUnion() ? type.types : [type]
  return parts.map(p => {
    if (!p.isStringLiteral()) throw new Error(`not a string literal: ${checker.typeToString(p)}`)
    return p.value
  }).sort()
}

const alias = (file: string, name: string): string[] => literals(checker.getDeclaredTypeOfSymbol(exported(file, name)))

function member (file: string, owner: string, name: string): ts.Type {
  const type = checker.getDeclaredTypeOfSymbol(exported(file, owner))
  const property = type.getProperty(name)!
  return checker.getTypeOfSymbol(property)
}

/** The first column of the table that follows the paragraph beginning with `intro`, under "Label values". */
function tableAfter (intro: string): string[] {
  const section = operations.slice(operations.indexOf('### Label values'))
  const at = section.indexOf(intro)
  if (at < 0) throw new Error(`no paragraph ${intro}`)
  const rows: string[] = []
  let inTable = false
  for (const line of section.slice(at).split('\n')) {
    if (line.startsWith('|')) inTable = true
    else if (inTable) break
    const code = /^\| `([a-z_]+)` \|/.exec(line)
    if (code !== null) rows.push(code[1])
  }
  return rows.sort()
}

t.test('every label value the relay can count is in a table of operations.md, and no other', async t => {
  const connect = alias('metrics.ts', 'ConnectOutcome')
  const request = alias('metrics.ts', 'RequestOutcome')
  t.same(tableAfter('`rendezvous_connect_total{outcome}`'), connect)
  t.same(tableAfter('`rendezvous_requests_total{outcome}`'), request)
  t.same(tableAfter('`rendezvous_refusals_total{side,reason}`'), alias('metrics.ts', 'ParserRefusal'))
  t.same(tableAfter('`rendezvous_parked_exits_total{reason}`'), alias('parking-lot.ts', 'ParkedExit'))
  t.same(tableAfter('`rendezvous_splices_total{end}`'), literals(member('splice.ts', 'SpliceResult', 'end')))
  // The one reason a connection is closed at accept is named in the metric's own row.
  const [refused] = checker.getSignaturesOfType(member('metrics.ts', 'RendezvousMetrics', 'connectionRefused'), ts.SignatureKind.Call)
  for (const reason of literals(checker.getTypeOfSymbol(refused.parameters[0]))) {
    t.match(operations, new RegExp(`\\| \`rendezvous_connections_refused_total\` \\|[^\\n]*\`${reason}\``), reason)
  }
})

/** Files whose lines the Logs section of operations.md lists; the cluster's are in cluster.md, the plugin's registration warnings in plugin.md. */
function relayFiles (): string[] {
  const inDir = (dir: string): string[] => readdirSync(join(LIB, dir)).filter(f => f.endsWith('.ts')).map(f => join(LIB, dir, f))
  return [...inDir('relay'), ...inDir('stores'), ...['relay-assembly.ts', 'operations.ts', 'state.ts'].map(f => join(LIB, f))]
}

/** The message of every log call above debug (or at a level chosen at run time) in `file`. */
function messages (file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const isLog = (e: ts.Expression): boolean => /log$/i.test(e.getText(source))
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.arguments.length > 0) {
      const callee = node.expression
      const logged = (ts.isPropertyAccessExpression(callee) && ['info', 'warn', 'error', 'fatal'].includes(callee.name.text) && isLog(callee.expression)) ||
        (ts.isElementAccessExpression(callee) && isLog(callee.expression))
      if (logged) {
        const last = node.arguments[node.arguments.length - 1]
        if (!ts.isStringLiteralLike(last)) throw new Error(`${file}: a log line whose message is not a plain string: ${node.getText(source)}`)
        found.push(last.text)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

t.test('every log line of the relay above debug is quoted in operations.md as it is written', async t => {
  const flat = operations.replace(/\s+/g, ' ')
  const all = relayFiles().flatMap(messages)
  t.ok(all.length > 20, `found ${all.length} lines`)
  for (const message of new Set(all)) t.ok(flat.includes(`\`${message}\``), message)
})

t.test('plugin.md: the prefix of an encapsulating plugin moves healthPath and readyPath', async t => {
  t.match(pluginDoc.replace(/\s+/g, ' '), "inside a plugin registered with `{ prefix: '/child' }`, `healthPath: '/healthz'` is served at `/child/healthz`")
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(async child => {
    await child.register(rendezvous, { registry: new MemoryRegistry(), healthPath: '/healthz', readyPath: '/readyz', metrics: false })
  }, { prefix: '/child' })
  await app.ready()
  t.equal((await app.inject('/child/healthz')).statusCode, 200)
  // Not listening, so not ready: the route is there all the same.
  t.equal((await app.inject('/child/readyz')).statusCode, 503)
  t.equal((await app.inject('/healthz')).statusCode, 404)
  t.equal((await app.inject('/readyz')).statusCode, 404)
})

/** The rows of the first table after `heading`. */
function errorRows (doc: string, heading: string): string[] {
  const at = doc.indexOf(heading)
  if (at < 0) throw new Error(`no section ${heading}`)
  const rows: string[] = []
  let inTable = false
  for (const line of doc.slice(at).split('\n')) {
    if (line.startsWith('|')) inTable = true
    else if (inTable) break
    if (inTable) rows.push(line)
  }
  return rows
}

t.test('plugin.md: the code of each error the plugin exports is in its table of errors', async t => {
  const rows = errorRows(pluginDoc, '## Errors')
  for (const [name, make] of Object.entries(errors)) {
    const { code } = new (make as new (...args: string[]) => { code: string })('a', 'b', 'c')
    t.ok(rows.some(row => row.split(' | ')[0].includes(`\`${code}\``)), `${name}: ${code}`)
  }
})

t.test('agent.md: each error class of fastify-rendezvous/agent is in its table of errors, with its code', async t => {
  const rows = errorRows(readFileSync(join(ROOT, 'docs', 'agent.md'), 'utf8'), '### Its errors')
  // One of each; a class exported without an entry here fails the first assertion.
  const made: Record<string, () => Error & { code: string }> = {
    AgentClosedError: () => new agent.AgentClosedError(),
    AgentOptionError: () => new agent.AgentOptionError('pool', 'must be an integer from 1 to 1024'),
    RendezvousAuthError: () => new agent.RendezvousAuthError('refused', 401),
    RendezvousCertificateError: () => new agent.RendezvousCertificateError('rejected', { problem: 'expired', reason: 'CERT_HAS_EXPIRED', presented: '', expected: [] })
  }
  const exported = Object.entries(agent).filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error).map(([name]) => name)
  t.same(exported.sort(), Object.keys(made).sort(), 'the error classes the entry exports')
  for (const [name, make] of Object.entries(made)) {
    const { code } = make()
    t.ok(rows.some(row => row.startsWith(`| \`${name}\` | \`${code}\` |`)), `${name}: ${code}`)
  }
})
