const END = /end of JSON input/
const POSITION = /at position (\d+)/

/**
 * Where `text` stops being JSON, as "line L, column C", or undefined when it
 * parses. V8's own message quotes the text around the fault, and a config
 * file may hold a secret there (an unquoted cluster secret, a Redis URL with
 * its password), so it is never shown; only the place is.
 */
export function jsonFaultAt (text: string): string | undefined {
  if (parses(text) === 'ok') return undefined
  // Whether a prefix holds the fault is monotonic: once a prefix has it, every longer one has it too.
  let lo = 0
  let hi = text.length
  if (parses(text) === 'short') return place(text, text.length)
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (parses(text.slice(0, mid + 1)) === 'bad') hi = mid
    else lo = mid + 1
  }
  return place(text, lo)
}

function parses (text: string): 'ok' | 'short' | 'bad' {
  try {
    JSON.parse(text)
    return 'ok'
  } catch (err) {
    const message = (err as Error).message
    if (END.test(message)) return 'short'
    // Some of V8's messages for a text cut short name a position: its end.
    const at = POSITION.exec(message)
    return at !== null && Number(at[1]) >= text.length ? 'short' : 'bad'
  }
}

function place (text: string, offset: number): string {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return `line ${line}, column ${offset - before.lastIndexOf('\n')}`
}
