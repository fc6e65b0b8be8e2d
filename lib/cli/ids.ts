import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { FileRegistry } from '../registry/file-registry'
import { otpauthUri } from '../registry/otpauth-uri'
import type { Registry } from '../registry/registry'
import { argsError } from './arg-errors'
import { CliError, type CliIo } from './cli-error'
import { selfCommand, shellQuote } from './invocation'
import { report } from './report'

const USAGE = [
  'usage: rendezvous ids add    [--data-dir DIR] [--id ID] [--secret BASE32] [--json]',
  '       rendezvous ids list   [--data-dir DIR] [--json] [--show-secret]',
  '       rendezvous ids remove ID [--data-dir DIR]'
].join('\n') + '\n'

const DEFAULT_DATA_DIR = '.rendezvous'

const COMMON = {
  'data-dir': { type: 'string' },
  // Part of the command-line contract (docs/cli.md) before cluster mode exists,
  // so that it is refused with a clear message rather than as an unknown flag.
  redis: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

const ADD = { ...COMMON, id: { type: 'string' }, secret: { type: 'string' }, json: { type: 'boolean' } } as const
const LIST = { ...COMMON, json: { type: 'boolean' }, 'show-secret': { type: 'boolean' } } as const
const REMOVE = COMMON

/** `rendezvous ids ...`: `args` is the argv after `ids`. Resolves to the exit code. */
export async function runIds (args: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(args, io)
  } catch (err) {
    return report(err, io)
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
  const dataDir = dataDirOf(values)

  const record = await withRegistry(dataDir, (registry) => registry.add({
    id: values.id,
    // Authenticator apps show keys in lower case, in groups, sometimes padded.
    secret: values.secret?.replace(/[\s=]+/g, '').toUpperCase()
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
    `  ${agentHint(dataDir, record.id, record.secret)}`,
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
  const dataDir = dataDirOf(values)
  const showSecret = values['show-secret'] === true

  const records = await withRegistry(dataDir, (registry) => registry.list())

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
  const dataDir = dataDirOf(values)
  const id = positionals[0]

  const removed = await withRegistry(dataDir, (registry) => registry.remove(id))
  if (!removed) throw new CliError(`no such ID: ${id}`, 1)
  io.stdout.write(`Removed ${id.toLowerCase()}.\n`)
  return 0
}

type Options = NonNullable<ParseArgsConfig['options']>

function parse<T extends Options> (args: string[], options: T, command: string) {
  let parsed
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    throw argsError(err, `ids ${command}`)
  }
  if ((parsed.values as { redis?: unknown }).redis !== undefined) {
    throw new CliError('cluster mode (--redis) is not available in this version', 1)
  }
  return parsed
}

// HOST and PORT are the operator's to fill in; the rest works as printed, --ca included when serve generated its certificate here.
function agentHint (dataDir: string, id: string, secret: string): string {
  const cert = join(dataDir, 'tls', 'cert.pem')
  const near = relative(process.cwd(), cert)
  const ca = existsSync(cert) ? ` --ca ${shellQuote(near.startsWith('..') ? cert : near)}` : ''
  return `${selfCommand()} agent --server https://HOST:8443 --id ${id} --secret ${secret} --to http://127.0.0.1:PORT${ca}`
}

function dataDirOf (values: { 'data-dir'?: string | boolean }): string {
  const dir = values['data-dir']
  if (dir === '') throw new CliError('--data-dir needs a directory')
  return resolve(typeof dir === 'string' ? dir : DEFAULT_DATA_DIR)
}

function noPositionals (command: string, positionals: string[]): void {
  if (positionals.length > 0) throw new CliError(`ids ${command} takes no argument, got ${JSON.stringify(positionals[0])}`)
}

function usage (io: CliIo): number {
  io.stdout.write(USAGE)
  return 0
}

async function withRegistry<T> (dataDir: string, job: (registry: Registry) => Promise<T>): Promise<T> {
  const registry = new FileRegistry({ dataDir })
  try {
    await registry.ready()
    return await job(registry)
  } finally {
    await registry.close()
  }
}
