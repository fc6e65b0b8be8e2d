/**
 * The first key that the top-level object of valid JSON text gives twice, if
 * any: JSON.parse keeps the last of them without a word. The text must have
 * parsed already, so only strings and nesting need telling apart.
 */
export function repeatedKey (text: string): string | undefined {
  const seen = new Set<string>()
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '{' || c === '[') depth++
    else if (c === '}' || c === ']') depth--
    else if (c === '"') {
      const end = closingQuote(text, i)
      if (depth === 1 && text[nextNonSpace(text, end + 1)] === ':') {
        const key = JSON.parse(text.slice(i, end + 1)) as string
        if (seen.has(key)) return key
        seen.add(key)
      }
      i = end
    }
  }
  return undefined
}

function closingQuote (text: string, open: number): number {
  let at = open + 1
  while (text[at] !== '"') at += text[at] === '\\' ? 2 : 1
  return at
}

function nextNonSpace (text: string, from: number): number {
  let at = from
  while (at < text.length && ' \t\r\n'.includes(text[at])) at++
  return at
}
