import { closeSync, fstatSync, openSync, readFileSync, type Stats } from 'node:fs'
import { parseArgs } from 'node:util'
import { looseness } from '../registry/permissions'
import { argsError } from './arg-errors'
import { repeatedKey } from './json-keys'
import { CliError } from './cli-error'
import { jsonFaultAt } from './json-problem'

/**
 * Table-driven configuration of a command: each option is one entry, and is
 * settable by flag, by environment variable and by config file, with the
 * precedence flag > env > file > default. Values are checked by the entry's
 * parser wherever they come from, and a bad one is a one-line CliError that
 * names the option, where it came from, the value and what is allowed.
 */

/** Thrown by a parser: what the option allows, to finish "X must be ...". */
export class NotAllowed extends Error {}

export interface OptionSpec<K extends string, T> {
  /** camelCase: the config file key. The flag is its kebab-case, the variable RENDEZVOUS_ + SNAKE_CASE. */
  key: K
  /** Placeholder in --help, e.g. SECONDS. Absent: a boolean flag that takes no value. */
  value?: string
  help: string
  /** The default, as text, checked by `parse` like any other value. */
  default?: string
  /** Text shown as the default in --help when it differs from `default`. */
  shownDefault?: string
  parse: (raw: string) => T
  /** May be given more than once; the value is then an array. */
  multiple?: boolean
  /** Never echo the value in error messages. */
  secret?: boolean
  /** How error messages echo the value, when not as it is (a URL with its password masked). */
  show?: (raw: string) => string
  /** Only a flag: no variable, no file key (e.g. --help, --config). */
  flagOnly?: boolean
  short?: string
  /** Where the value goes in the plugin's options, e.g. 'authFailures.perPair'; see pluginOptionsOf. */
  to?: string
}

export type AnyOption = OptionSpec<string, any>

/** One entry of a table; `const` keeps `key`, `multiple` and `default` literal, so ConfigOf can type the result. */
export function option<const S extends AnyOption> (spec: S): S {
  return spec
}

type ValueOf<O> = O extends { parse: (raw: string) => infer T }
  ? O extends { multiple: true } ? T[] : O extends { default: string } ? T : T | undefined
  : never

/** The resolved configuration of a table: one typed field per option. */
export type ConfigOf<Table extends readonly AnyOption[]> = { [O in Table[number] as O['key']]: ValueOf<O> }

export interface ConfigSources {
  args: string[]
  env: NodeJS.ProcessEnv
  /** The option that names the config file. Default 'config'. */
  fileKey?: string
}

export const flagOf = (key: string): string => key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)
export const envOf = (key: string): string => `RENDEZVOUS_${key.replace(/[A-Z]/g, c => `_${c}`).toUpperCase()}`

/** The kinds of source, highest precedence first. */
export const ORIGINS = ['flag', 'env', 'file'] as const
export type Origin = typeof ORIGINS[number]

const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

/**
 * What resolveConfig adds to the options: which were given, from where, and
 * the warnings the config file earned. A type, not an interface, so that the
 * result still passes as a Record of its keys.
 */
export type Resolved = {
  explicit: Set<string>
  sources: Map<string, string>
  /** Which kind of source gave each given value, for options that are one setting together (serve's TLS mode). */
  origins: Map<string, Origin>
  /** One line each, for the command to print as `rendezvous: warning: ...`. */
  warnings: string[]
}

export function resolveConfig<Table extends readonly AnyOption[]> (command: string, table: Table, sources: ConfigSources): ConfigOf<Table> & Resolved {
  const flags = readFlags(command, table, sources.args)
  const fileKey = sources.fileKey ?? 'config'
  const fileName = (flags.get(fileKey)?.[0]) ?? sources.env[envOf(fileKey)]
  const { values: file, warning } = fileName === undefined || fileName === '' ? { values: new Map<string, unknown>() } : readConfigFile(fileName, table)
  const out: Record<string, unknown> = {}
  const explicit = new Set<string>()
  // Where each given value came from (a flag, a variable, the file), for messages that must name it.
  const from = new Map<string, string>()
  const origins = new Map<string, Origin>()
  for (const spec of table) {
    const raw = rawValue(spec, flags, sources.env, file, fileName)
    if (raw !== undefined) {
      explicit.add(spec.key)
      from.set(spec.key, raw.from)
      origins.set(spec.key, raw.origin)
    }
    const given = raw ?? (spec.default === undefined ? undefined : { values: [spec.default], from: `the default of --${flagOf(spec.key)}` })
    if (given === undefined) {
      out[spec.key] = spec.multiple === true ? [] : undefined
      continue
    }
    const parsed = given.values.map(value => checkValue(spec, value, given.from))
    out[spec.key] = spec.multiple === true ? parsed : parsed[parsed.length - 1]
  }
  return Object.assign(out as ConfigOf<Table>, { explicit, sources: from, origins, warnings: warning === undefined ? [] : [warning] })
}

interface Raw { values: string[], from: string, origin: Origin }

function rawValue (spec: AnyOption, flags: Map<string, string[]>, env: NodeJS.ProcessEnv, file: Map<string, unknown>, fileName: string | undefined): Raw | undefined {
  const flag = flags.get(spec.key)
  if (flag !== undefined) return { values: flag, from: `--${flagOf(spec.key)}`, origin: 'flag' }
  if (spec.flagOnly === true) return undefined
  const name = envOf(spec.key)
  const fromEnv = env[name]
  if (fromEnv !== undefined && fromEnv !== '') {
    return { values: spec.multiple === true ? fromEnv.split(',').map(v => v.trim()) : [boolText(spec, fromEnv, name)], from: name, origin: 'env' }
  }
  if (!file.has(spec.key)) return undefined
  const from = `${spec.key} in ${fileName as string}`
  return { values: fileValues(spec, file.get(spec.key), from), from, origin: 'file' }
}

/** `value` of `spec` parsed, or a one-line CliError naming `from` (a flag, a variable, a key of the file) and what is allowed. */
export function checkValue (spec: AnyOption, value: string, from: string): unknown {
  try {
    return spec.parse(value)
  } catch (err) {
    if (!(err instanceof NotAllowed)) throw err
    const got = spec.secret === true ? '' : `, got ${JSON.stringify(spec.show?.(value) ?? value)}`
    throw new CliError(`${from} must be ${err.message}${got}`)
  }
}

function boolText (spec: AnyOption, value: string, from: string): string {
  if (spec.value !== undefined) return value
  const v = value.trim().toLowerCase()
  if (TRUE.has(v)) return 'true'
  if (FALSE.has(v)) return 'false'
  throw new CliError(`${from} must be true or false, got ${JSON.stringify(value)}`)
}

function fileValues (spec: AnyOption, value: unknown, from: string): string[] {
  const one = (v: unknown): string => {
    if (typeof v === 'string') return spec.value === undefined ? boolText(spec, v, from) : v
    if (typeof v === 'number' && spec.value !== undefined) return digits(v)
    if (typeof v === 'boolean' && spec.value === undefined) return String(v)
    // A value of the wrong type is echoed only where a right one would be: a secret or a masked one, not at all.
    const got = spec.secret === true || spec.show !== undefined ? 'a value' : JSON.stringify(v)
    throw new CliError(`${from} must be ${spec.value === undefined ? 'true or false' : `a ${typeof v === 'object' ? 'single value' : 'string or number'}`}, got ${got}`)
  }
  if (spec.multiple === true) return (Array.isArray(value) ? value : [value]).map(one)
  return [one(value)]
}

/**
 * A JSON number of the config file, in the plain decimal digits the parsers
 * take: it is the number it is, however it was written (1e3, 1.50), while
 * String() would give 1e-7 or 1e+21, which they refuse.
 */
function digits (n: number): string {
  // Past 1e21, which no option's range reaches, as JavaScript writes it rather than in 22 digits or more.
  if (Math.abs(n) >= 1e21) return String(n)
  return (n === 0 ? 0 : n).toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 })
}

function readFlags (command: string, table: readonly AnyOption[], args: string[]): Map<string, string[]> {
  const options: Record<string, { type: 'string' | 'boolean', multiple?: boolean, short?: string }> = {}
  const keyOf = new Map<string, string>()
  for (const spec of table) {
    const flag = flagOf(spec.key)
    keyOf.set(flag, spec.key)
    options[flag] = { type: spec.value === undefined ? 'boolean' : 'string', ...(spec.multiple === true ? { multiple: true } : {}), ...(spec.short === undefined ? {} : { short: spec.short }) }
  }
  let values: Record<string, unknown>
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw argsError(err, command)
  }
  const out = new Map<string, string[]>()
  for (const [flag, value] of Object.entries(values)) {
    const key = keyOf.get(flag) as string
    out.set(key, (Array.isArray(value) ? value : [value]).map(String))
  }
  return out
}

const CANNOT_READ: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' }

/**
 * A JSON object of option keys (camelCase, or the flag names) and values.
 * The file can set where IDs live, the admin token file, the address and
 * TLS, so it is judged as ids.json and the admin token file are: refused
 * when other users can write it, and, when it holds a secret (the cluster
 * secret, a Redis URL's password), worth a warning when they can read it.
 */
// What secret the file holds under this option, if any: a secret option, or a value its display masks (a Redis URL's password).
function secretHeld (spec: AnyOption, data: Record<string, unknown>): string | undefined {
  for (const key of [spec.key, flagOf(spec.key)]) {
    if (!Object.hasOwn(data, key)) continue
    const value = data[key]
    if (spec.secret === true) return key
    if (spec.show !== undefined && typeof value === 'string' && spec.show(value) !== value) return `a password in ${key}`
  }
  return undefined
}

function readConfigFile (file: string, table: readonly AnyOption[]): { values: Map<string, unknown>, warning?: string } {
  const fail: (what: string) => never = what => { throw new CliError(`--config ${file}: ${what}`) }
  let text = ''
  let st: Stats
  try {
    // Judged and read through one descriptor, so that the file judged is the file read.
    const fd = openSync(file, 'r')
    try {
      st = fstatSync(fd)
      text = readFileSync(fd, 'utf8')
    } finally {
      closeSync(fd)
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? ''
    fail(CANNOT_READ[code] ?? (err as Error).message.split('\n')[0])
  }
  let data: unknown
  let syntax: Error | undefined
  try {
    data = JSON.parse(text)
  } catch (err) {
    syntax = err as Error
  }
  const held = typeof data === 'object' && data !== null ? table.map(spec => secretHeld(spec, data as Record<string, unknown>)).find(found => found !== undefined) : undefined
  // A file that holds no secret may be read by anyone, as most of /etc is: only its write bits matter then.
  const judged = looseness(st, 'file', held === undefined ? 'allow' : 'warn')
  if (judged.refuse !== undefined) fail(judged.refuse)
  // V8's message quotes the text around the fault, which may be a secret: only the place is told.
  if (syntax !== undefined) fail(`not valid JSON at ${jsonFaultAt(text) ?? 'its start'}`)
  if (typeof data !== 'object' || data === null || Array.isArray(data)) fail('must hold a JSON object of options')
  const known = new Map<string, string>()
  for (const spec of table) {
    if (spec.flagOnly === true || spec.key === 'config') continue
    known.set(spec.key, spec.key)
    known.set(flagOf(spec.key), spec.key)
  }
  // JSON.parse keeps the last of two equal keys unsaid; so would a key given both as waitTimeout and as wait-timeout.
  const twice = repeatedKey(text)
  if (twice !== undefined) fail(`sets ${JSON.stringify(twice)} twice; give each option once`)
  const values = new Map<string, unknown>()
  const givenAs = new Map<string, string>()
  for (const [name, value] of Object.entries(data)) {
    const key = known.get(name)
    if (key === undefined) fail(`unknown option ${JSON.stringify(name)}`)
    if (givenAs.has(key)) fail(`sets ${key} twice, as ${JSON.stringify(givenAs.get(key))} and ${JSON.stringify(name)}; give each option once`)
    givenAs.set(key, name)
    values.set(key, value)
  }
  return judged.warn === undefined || held === undefined ? { values } : { values, warning: `--config ${file} holds ${held}, but ${judged.warn}` }
}

/** The options part of --help: every option with its placeholder, help, default and variable. */
export function optionsHelp (table: readonly AnyOption[]): string {
  const rows = table.map(spec => {
    const left = `  ${spec.short === undefined ? '' : `-${spec.short}, `}--${flagOf(spec.key)}${spec.value === undefined ? '' : ` ${spec.value}`}`
    const shown = spec.shownDefault ?? spec.default
    const notes = [
      shown === undefined ? undefined : `default ${shown}`,
      spec.multiple === true ? 'repeatable' : undefined,
      spec.flagOnly === true ? undefined : `env ${envOf(spec.key)}`
    ].filter(n => n !== undefined)
    return { left, right: `${spec.help}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}` }
  })
  const width = Math.max(...rows.map(r => r.left.length)) + 2
  return rows.map(r => r.left.padEnd(width) + r.right).join('\n') + '\n'
}

/** The plugin options the table's `to` entries name, from a resolved configuration. */
export function pluginOptionsOf (table: readonly AnyOption[], config: Record<string, unknown>, only?: Set<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const spec of table) {
    const value = config[spec.key]
    if (spec.to === undefined || value === undefined || (only !== undefined && !only.has(spec.key))) continue
    const path = spec.to.split('.')
    let at = out
    for (const part of path.slice(0, -1)) at = (at[part] ??= {}) as Record<string, unknown>
    at[path[path.length - 1]] = value
  }
  return out
}
