import { readdirSync, readFileSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

/*
 * The direction of imports inside lib/ (docs/architecture.md), checked so
 * that it stays true:
 * - the library core never imports the products built on it (agent, client,
 *   server, demo, cli, and entry, the package's subpath entries);
 * - nothing but lib/cli imports lib/cli: only the CLI knows the command line;
 * - no two units import each other, directly or around a loop.
 * A unit is a folder of lib/, or a file at its root (index.ts, options.ts, errors.ts).
 */

const LIB = resolve(__dirname, '..', 'lib')
// Built on the core; `entry` holds the package's subpath entries (fastify-rendezvous/agent, /client).
const PRODUCTS = new Set(['agent', 'client', 'server', 'demo', 'cli', 'entry'])

export type Graph = Map<string, Set<string>>
export interface Edge { from: string, to: string, file: string }

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

// Static imports and re-exports, `import type` included, and dynamic import()/require() of a literal.
const SPECIFIER = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g

/** The unit of a path relative to lib/: its first folder, or the file itself at the root. */
export function unitOf (path: string): string {
  const [first, ...rest] = path.split('/')
  return rest.length === 0 ? first.replace(/\.ts$/, '') : first
}

/** Every import between two different units of lib/. */
export function importEdges (root: string): Edge[] {
  const edges: Edge[] = []
  for (const file of sources(root)) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(SPECIFIER)) {
      const specifier = m[1] ?? m[2] ?? m[3]
      if (!specifier.startsWith('.')) continue
      const target = relative(root, resolve(dirname(file), specifier))
      if (target.startsWith('..')) continue
      const from = unitOf(relative(root, file))
      const to = unitOf(target)
      if (from !== to) edges.push({ from, to, file: relative(root, file) })
    }
  }
  return edges
}

/** What is wrong with a set of edges, one line each; empty when the layout holds. */
export function violations (edges: Edge[]): string[] {
  const problems: string[] = []
  const graph: Graph = new Map()
  for (const { from, to, file } of edges) {
    if (!PRODUCTS.has(from) && PRODUCTS.has(to)) problems.push(`the core imports a product: ${file} (${from}) imports ${to}/`)
    if (to === 'cli' && from !== 'cli') problems.push(`only lib/cli may know the command line: ${file} imports cli/`)
    if (!graph.has(from)) graph.set(from, new Set())
    graph.get(from)!.add(to)
  }
  for (const cycle of cycles(graph)) problems.push(`units import each other: ${cycle.join(' -> ')}`)
  return [...new Set(problems)]
}

/** Each loop in the graph once, as the path that closes it. */
export function cycles (graph: Graph): string[][] {
  const found = new Map<string, string[]>()
  const visit = (node: string, path: string[]): void => {
    const at = path.indexOf(node)
    if (at !== -1) {
      const loop = path.slice(at)
      // One key per loop, whichever node the walk entered it by.
      const key = [...loop].sort().join(',')
      if (!found.has(key)) found.set(key, [...loop, node])
      return
    }
    for (const next of graph.get(node) ?? []) visit(next, [...path, node])
  }
  for (const node of graph.keys()) visit(node, [])
  return [...found.values()]
}

t.test('lib/ imports run one way', async t => {
  const edges = importEdges(LIB)
  t.ok(edges.length > 20, `the parser finds the imports (${edges.length})`)
  t.ok(edges.some(e => e.from === 'index' && e.to === 'relay'), 'index imports relay/')
  t.ok(edges.some(e => e.from === 'cli' && e.to === 'server'), 'cli imports server/')
  t.same(violations(edges), [])
})

/** The picture in docs/architecture.md: each unit and what it imports, and the units that import nothing of lib/. */
function documentedGraph (): { graph: Map<string, string[]>, leaves: string[] } {
  const doc = readFileSync(resolve(LIB, '..', 'docs', 'architecture.md'), 'utf8')
  const section = doc.split('## Which way imports run')[1] ?? ''
  const block = section.split('```')[1] ?? ''
  const graph = new Map(block.trim().split('\n').map(line => {
    const [from, to] = line.split('->').map(part => part.trim())
    return [from, to.split(',').map(unit => unit.trim())]
  }))
  const sentence = section.split('```')[2]?.match(/^\s*([^\n]+(?:\n[^\n]+)*?) import nothing else from `lib\/`/)?.[1] ?? ''
  const leaves = [...sentence.matchAll(/`([^`]+)`/g)].map(m => m[1].replace(/\/$|\.ts$/g, ''))
  return { graph, leaves }
}

t.test('docs/architecture.md draws the imports as they are', async t => {
  const real = new Map<string, Set<string>>()
  for (const { from, to } of importEdges(LIB)) real.set(from, (real.get(from) ?? new Set()).add(to))
  const { graph, leaves } = documentedGraph()
  t.ok(graph.size > 10 && leaves.length > 5, 'the picture is found')
  t.same([...graph.keys()].sort(), [...real.keys()].sort(), 'a line for each unit that imports another, and for no other')
  for (const [from, to] of graph) t.same([...to].sort(), [...(real.get(from) ?? [])].sort(), `${from} imports what its line says`)
  const units = new Set(sources(LIB).map(f => unitOf(relative(LIB, f))))
  t.same(leaves.sort(), [...units].filter(unit => !real.has(unit) && [...real.values()].some(to => to.has(unit))).sort(),
    'the units that import nothing else are named')
})

t.test('the checker catches each kind of violation', async t => {
  const edge = (from: string, to: string): Edge => ({ from, to, file: `${from}/x.ts` })
  t.same(violations([edge('cli', 'server'), edge('server', 'relay'), edge('relay', 'http')]), [], 'a clean graph')
  t.match(violations([edge('relay', 'agent')]), [/the core imports a product: relay\/x\.ts \(relay\) imports agent\//])
  t.match(violations([edge('index', 'server')]), [/the core imports a product/], 'a root file is core too')
  t.match(violations([edge('server', 'cli')]), [/only lib\/cli may know the command line: server\/x\.ts/])
  t.match(violations([edge('relay', 'http'), edge('http', 'relay')]), [/units import each other: (relay -> http -> relay|http -> relay -> http)/])
  t.same(violations([edge('a', 'b'), edge('b', 'c'), edge('c', 'a')]).length, 1, 'a loop of three, reported once')
  t.same(cycles(new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set<string>()]])), [])
})

t.test('the parser reads every form of import', async t => {
  const root = t.testdir({
    'index.ts': "import a from './relay/a'\nexport { b } from './http/b'\nimport type { C } from './tokens/c'\nimport './stores/d'\nconst e = require('./registry/e')\nconst f = import('./cli/f')\nimport x from 'node:fs'\n",
    relay: { 'a.ts': "import { y } from './same-unit'\nimport {\n  z\n} from '../errors'\n" }
  })
  const edges = importEdges(root).map(e => `${e.from}->${e.to}`).sort()
  t.same(edges, ['index->cli', 'index->http', 'index->registry', 'index->relay', 'index->stores', 'index->tokens', 'relay->errors'])
  t.equal(unitOf('index.ts'), 'index')
  t.equal(unitOf('relay/splice.ts'), 'relay')
})

// Node's private state (the parser hook, a socket's libuv handle, stream internals) is reached from two modules only.
const INTERNALS = /\._handle\b|\._parent\b|\.parser\b|_readableState|_writableState|\bkHandle\b/
const ALLOWED_INTERNALS = new Set(['relay/handoff.ts', 'relay/socket-fd.ts'])

t.test('only relay/handoff.ts and relay/socket-fd.ts touch Node internals', async t => {
  const touching = sources(LIB).map(f => relative(LIB, f)).filter(f => INTERNALS.test(readFileSync(join(LIB, f), 'utf8')))
  t.same(touching.filter(f => !ALLOWED_INTERNALS.has(f)), [])
  t.same(touching.sort(), [...ALLOWED_INTERNALS].sort(), 'the check finds both')
})

// A default import of a Node module is kept in the emitted .d.ts, where a consumer compiling
// without esModuleInterop or allowSyntheticDefaultImports gets TS1192: node:net has no default export.
const DEFAULT_IMPORT = /(?:^|\n)\s*import\s+(?:type\s+)?([A-Za-z_$][\w$]*)\s*(?:,[^'"]*)?from\s*['"]([^'"]+)['"]/g
const isNodeModule = (specifier: string): boolean => specifier.startsWith('node:') || builtinModules.includes(specifier)

/** Each default import of a Node module under `root`, as `file: import name from 'module'`. */
export function nodeDefaultImports (root: string): string[] {
  return sources(root).flatMap(file => [...readFileSync(file, 'utf8').matchAll(DEFAULT_IMPORT)]
    .filter(m => isNodeModule(m[2]))
    .map(m => `${relative(root, file)}: import ${m[1]} from '${m[2]}'`))
}

t.test('no file of lib/ default-imports a Node module, so its types need no esModuleInterop', async t => {
  t.same(nodeDefaultImports(LIB), [])
})

t.test('the check finds every form of a default import of a Node module, and nothing else', async t => {
  const root = t.testdir({
    'a.ts': "import net from 'node:net'\nimport type tls from 'node:tls'\nimport fs, { readFileSync } from 'fs'\n",
    'b.ts': "import * as net from 'node:net'\nimport type * as tls from 'node:tls'\nimport type { Socket } from 'node:net'\nimport { connect } from 'node:tls'\nimport fp from 'fastify-plugin'\nimport x from './x'\n"
  })
  t.same(nodeDefaultImports(root), ["a.ts: import net from 'node:net'", "a.ts: import tls from 'node:tls'", "a.ts: import fs from 'fs'"])
})
