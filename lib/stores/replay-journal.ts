import { randomBytes } from 'node:crypto'
import { open, readdir, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ReplayJournalError } from '../errors'
import { processGone } from '../registry/file-lock'
import { assertPrivate } from '../registry/permissions'

// The on-disk format of the replay journal, apart from how it is appended to.
// One line per accepted key: `<expiry, ms since the epoch> <key as JSON>\n`.
// JSON keeps a key on one line whatever it holds. The first line,
// `#window <ms>\n`, is the token window the expiries were computed with:
// a journal written before it existed has none, and counts as window 0.

export interface JournalEntry { key: string, at: number }

const HEADER = /^#window ([0-9]{1,16})$/

/**
 * A cache's journal: `replay.<pid>.<random>.journal`, so that processes
 * sharing a data dir, and caches sharing a process, never write to one file.
 */
export const journalName = (): string => `replay.${process.pid}.${randomBytes(4).toString('hex')}.journal`
const JOURNAL = /^replay\.([1-9][0-9]{0,9})\.[0-9a-f]{8}\.journal$/
// This process's open journals: any other file with our pid is a predecessor's that had the same pid.
const openHere = new Set<string>()

export function claimJournal (path: string): void {
  openHere.add(path)
}

export function releaseJournal (path: string): void {
  openHere.delete(path)
}
const TEMP = /^\.replay\.([1-9][0-9]{0,9})\.[0-9a-f]+\.tmp$/

export function journalLine (key: string, at: number): string {
  return `${Math.ceil(at)} ${JSON.stringify(key)}\n`
}

export function journalHeader (windowMs: number): string {
  return `#window ${Math.floor(windowMs)}\n`
}

/**
 * The entries of a journal's text. A line that cannot be read (a write torn
 * by a crash or a full disk, a hand edit) is skipped and counted: the lines
 * around it are still good.
 */
export function parseJournal (text: string): { entries: JournalEntry[], bad: number, windowMs: number } {
  const entries: JournalEntry[] = []
  let bad = 0
  let start = 0
  let windowMs = 0
  const first = text.indexOf('\n')
  const header = first < 0 ? null : HEADER.exec(text.slice(0, first))
  if (header !== null) {
    windowMs = Number(header[1])
    start = first + 1
  }
  // Line by line with indexOf rather than split: a journal of millions of lines read at start, where
  // split's array of strings doubled the time.
  while (start < text.length) {
    const end = text.indexOf('\n', start)
    // The text after the last newline is a line whose write never finished.
    if (end < 0) {
      bad++
      break
    }
    if (end > start) {
      const entry = parseLine(text, start, end)
      if (entry === undefined) bad++
      else entries.push(entry)
    }
    start = end + 1
  }
  return { entries, bad, windowMs }
}

// A key as JSON.stringify writes most of them: nothing escaped, so the text between the quotes is the key.
// JSON.parse refuses a raw control character, so this does too.
// eslint-disable-next-line no-control-regex
const PLAIN_KEY = /^"[^"\\\u0000-\u001f]*"$/

function parseLine (text: string, start: number, end: number): JournalEntry | undefined {
  const space = text.indexOf(' ', start)
  if (space < 0 || space >= end || space === start || space - start > 16) return undefined
  for (let i = start; i < space; i++) {
    const c = text.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  const at = Number(text.slice(start, space))
  const json = text.slice(space + 1, end)
  if (PLAIN_KEY.test(json)) return { key: json.slice(1, -1), at }
  try {
    const key: unknown = JSON.parse(json)
    return typeof key === 'string' ? { key, at } : undefined
  } catch {
    return undefined
  }
}

export interface FoundJournal {
  path: string
  /** Whether the process that wrote it is gone, so that its file may be removed once its entries are copied. */
  orphaned: boolean
  entries: JournalEntry[]
  bad: number
  /** The token window its expiries were computed with (0 for a journal older than the header). */
  windowMs: number
}

/**
 * Reads every process's journal in `dir`. A journal other users can write
 * is refused as ids.json is (RegistryInsecureError): whoever can edit it can
 * make the relay forget a token.
 */
export async function readJournals (dir: string): Promise<{ journals: FoundJournal[], orphanedTemps: string[] }> {
  const journals: FoundJournal[] = []
  const orphanedTemps: string[] = []
  for (const name of await readdir(dir)) {
    const temp = TEMP.exec(name)
    if (temp !== null && isGone(Number(temp[1]))) orphanedTemps.push(join(dir, name))
    const match = JOURNAL.exec(name)
    if (match === null) continue
    const path = join(dir, name)
    const text = await readPrivate(path)
    if (text === undefined) continue
    journals.push({ path, orphaned: !openHere.has(path) && isGone(Number(match[1])), ...parseJournal(text) })
  }
  return { journals, orphanedTemps }
}

async function readPrivate (path: string): Promise<string | undefined> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    // Removed by another process starting at the same time, which copied its entries first.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ReplayJournalError(path, `cannot be read: ${(err as Error).message}`)
  }
  try {
    const st = await handle.stat()
    // A directory opens for reading: only the read fails, with an error that names no file.
    if (!st.isFile()) throw new ReplayJournalError(path, 'is not a regular file; move it out of the data dir')
    assertPrivate(path, st, 'file')
    return await handle.readFile('utf8').catch((err: Error) => { throw new ReplayJournalError(path, `cannot be read: ${err.message}`) })
  } finally {
    await handle.close()
  }
}

/** Removes files whose entries are now in this process's journal. */
export async function removeAll (paths: string[]): Promise<void> {
  for (const path of paths) {
    await unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
  }
}

/**
 * Whether the process `pid` is gone. A file with our own pid that we have
 * not opened is a predecessor's that happened to get the same number (pid 1
 * in every container start).
 */
function isGone (pid: number): boolean {
  return pid === process.pid || processGone(pid)
}
