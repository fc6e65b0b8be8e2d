import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { FileRegistry } from '../registry/file-registry'
import { reportRegistryWarnings } from '../registry/warnings'
import { withRedisRegistry } from './redis-ids'
import { otpauthUri } from '../registry/otpauth-uri'
import { canonicalId } from '../registry/ids'
import { InvalidIdError } from '../errors'
import { dataDirProblem } from '../data-dir'
import type { Registry } from '../registry/registry'
import { argsError } from './arg-errors'
import { CliError, type CliIo } from './cli-error'
import { shellQuote } from '../shell-quote'
import { selfCommand } from './invocation'
import { report } from './report'
import { checkValue, resolveConfig } from './config'
import { REDIS_OPTION, SERVE_TABLE } from './serve-table'

const USAGE = [
  'usage: rendezvous ids add    [--data-dir DIR | --redis URL | --config FILE] [--id ID] [--secret BASE32] [--json]',
  '       rendezvous ids list   [--data-dir DIR | --redis URL | --config FILE] [--json] [--show-secret]',
  '       rendezvous ids remove ID [--data-dir DIR | --redis URL | --config FILE]',
  '',
  'Without --data-dir or --redis, the IDs are where serve would keep them: RENDEZVOUS_DATA_DIR,',
  "RENDEZVOUS_REDIS, or the dataDir or redis of serve's config file (--config, RENDEZVOUS_CONFIG),",
  'else .rendezvous.'
].join('\n') + '\n'

const COMMON = {
  'data-dir': { type: 'string' },
  // serve's config file: its dataDir or redis is where the IDs are.
  config: { type: 'string' },
  // Cluster mode: the IDs live in Redis, and every node sees a change within a second.
  redis: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

const ADD = { ...COMMON, id: { type: 'string' }, secret: { type: 'string' }, json: { type: 'boolean' } } as const
const LIST = { ...COMMON, json: { type: 'boolean' }, 'show-secret': { type: 'boolean' } } as const
const REMOVE = COMMON

/** `rendezvous ids ...`: `args` is the argv after `ids`. Resolves to the exit code. */
export async function runIds (args: string[], io: CliIo): Promise<number> {
  // As serve tells it: one line, which --no-warnings does not silence.
  const stopWarning = reportRegistryWarnings(message => { io.stderr.write(`rendezvous: warning: ${message}\n`) })
  try {
    return await dispatch(args, io)
  } catch (err) {
    return report(err, io)
  } finally {
    stopWarning()
  }
}

async function dispatch (args: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = args
  switch (command) {
    case 'add': return await add(rest, io)
    case 'list': return await list(rest, io)
    case 'remove': return await remove(rest, io)
    case 'help': case '--help': case '-h':
      io.stdout.write(USAGE)
      return 0
    case undefined:
      throw new CliError('ids needs a subcommand: add, list or remove')
    default:
      throw new CliError(`unknown ids subcommand ${JSON.stringify(command)}: use add, list or remove`)
  }
}

async function add (args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, ADD, 'add')
  if (values.help === true) return usage(io)
  noPositionals('add', positionals)
  const store = storeOf(values, io)

  const record = await withRegistry(store, (registry) => registry.add({
    id: values.id,
    secret: values.secret
  }))
  const otpauth = otpauthUri(record)

  if (values.json === true) {
    io.stdout.write(JSON.stringify({ id: record.id, secret: record.secret, otpauth, createdAt: record.createdAt }) + '\n')
    return 0
  }
  io.stdout.write([
    `ID:       ${record.id}`,
    `Secret:   ${record.secret}`,
    `otpauth:  ${otpauth}`,
    `Created:  ${record.createdAt}`,
    '',
    'Run the agent next to the hidden server with:',
    `  ${agentHint(store, record.id, record.secret)}`,
    '',
    'Warning: store the secret now. It is not shown again.',
    ''
  ].join('\n'))
  return 0
}

async function list (args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, LIST, 'list')
  if (values.help === true) return usage(io)
  noPositionals('list', positionals)
  const store = storeOf(values, io)
  const showSecret = values['show-secret'] === true

  const records = await withRegistry(existing(store), (registry) => registry.list())

  if (records.length === 0 && values.json !== true) {
    // stdout stays empty, for scripts; the note is for the person at the terminal.
    io.stderr.write(`no IDs in ${'dataDir' in store ? store.dataDir : "the cluster's Redis"}\n`)
    return 0
  }
  if (values.json === true) {
    const items = records.map((r) => showSecret
      ? { id: r.id, secret: r.secret, createdAt: r.createdAt }
      : { id: r.id, createdAt: r.createdAt })
    io.stdout.write(JSON.stringify(items) + '\n')
    return 0
  }
  const width = Math.max(0, ...records.map((r) => r.id.length))
  for (const r of records) {
    const columns = [r.id.padEnd(width), r.createdAt]
    if (showSecret) columns.push(r.secret)
    io.stdout.write(columns.join('  ') + '\n')
  }
  return 0
}

async function remove (args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, REMOVE, 'remove')
  if (values.help === true) return usage(io)
  if (positionals.length === 0) throw new CliError('ids remove needs the ID to remove')
  if (positionals.length > 1) throw new CliError(`ids remove takes one ID, got ${positionals.length}`)
  const id = positionals[0]
  // A usage error (exit 2) before the data dir is looked at, as for ids add --id: no such ID could ever exist.
  if (canonicalId(id) === undefined) throw new InvalidIdError(JSON.stringify(id.slice(0, 140)))
  const store = storeOf(values, io)

  const removed = await withRegistry(existing(store), (registry) => registry.remove(id))
  if (!removed) throw new CliError(`no such ID: ${id}`, 1)
  io.stdout.write(`Removed ${id.toLowerCase()}.\n`)
  return 0
}

type Options = NonNullable<ParseArgsConfig['options']>

function parse<T extends Options> (args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    throw argsError(err, `ids ${command}`)
  }
}

type Store = { dataDir: string } | { redis: string }

function storeOf (values: { 'data-dir'?: string | boolean, redis?: string | boolean, config?: string | boolean }, io: CliIo): Store {
  const redis = values.redis
  if (typeof redis === 'string') {
    if (values['data-dir'] !== undefined) throw new CliError('--redis and --data-dir cannot be combined: the IDs live in one place')
    return { redis: checkValue(REDIS_OPTION, redis, '--redis') as string }
  }
  if (values['data-dir'] !== undefined) return { dataDir: dataDirOf(values) }
  return serveStore(typeof values.config === 'string' ? values.config : undefined, io)
}

/**
 * Without --data-dir or --redis, the IDs are where serve keeps them: the same
 * RENDEZVOUS_DATA_DIR, RENDEZVOUS_REDIS and config file (--config or
 * RENDEZVOUS_CONFIG) that serve reads, so that an `ids add` beside a systemd
 * unit reaches the server's registry, not a .rendezvous of its own.
 */
function serveStore (config: string | undefined, io: CliIo): Store {
  const serve = resolveConfig('serve', SERVE_TABLE, { args: config === undefined ? [] : ['--config', config], env: io.env })
  for (const warning of serve.warnings) io.stderr.write(`rendezvous: warning: ${warning}\n`)
  // Checked as serve checks it, the message naming the variable or the file it came from.
  if (serve.redis !== undefined) return { redis: serve.redis }
  return { dataDir: resolve(serve.dataDir) }
}

// HOST and PORT are the operator's to fill in; the rest works as printed, --ca included when serve generated its certificate here.
function agentHint (store: Store, id: string, secret: string): string {
  // A cluster's certificate is wherever its nodes were given it; a data dir's is where serve generated it.
  const cert = 'dataDir' in store ? join(store.dataDir, 'tls', 'cert.pem') : undefined
  const near = cert === undefined ? '' : relative(process.cwd(), cert)
  const ca = cert !== undefined && existsSync(cert) ? ` --ca ${shellQuote(near.startsWith('..') ? cert : near)}` : ''
  return `${selfCommand()} agent --server https://HOST:8443 --id=${shellQuote(id)} --secret ${secret} --to http://127.0.0.1:PORT${ca}`
}

function dataDirOf (values: { 'data-dir'?: string | boolean }): string {
  const dir = values['data-dir']
  if (typeof dir !== 'string' || dir === '') throw new CliError('--data-dir needs a directory')
  return resolve(dir)
}

/** The store of list and remove, which only ids add may create: a data dir that is not there is a typo, not an empty list. */
function existing (store: Store): Store {
  if ('dataDir' in store && !existsSync(store.dataDir)) {
    throw new CliError(`no data dir at ${store.dataDir}: check --data-dir (ids add creates it)`)
  }
  return store
}

function noPositionals (command: string, positionals: string[]): void {
  if (positionals.length > 0) throw new CliError(`ids ${command} takes no argument, got ${JSON.stringify(positionals[0])}`)
}

function usage (io: CliIo): number {
  io.stdout.write(USAGE)
  return 0
}

async function withRegistry<T> (store: Store, job: (registry: Registry) => Promise<T>): Promise<T> {
  if ('redis' in store) return await withRedisRegistry(store.redis, job)
  const registry = new FileRegistry({ dataDir: store.dataDir })
  try {
    await registry.ready()
    return await job(registry)
  } catch (err) {
    throw await dataDirProblem(store.dataDir, err) ?? err
  } finally {
    await registry.close()
  }
}
