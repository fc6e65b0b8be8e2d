/** A wrong option value as a message names it: `got 5`, `got the string "5"`, `got an array`. */
export function shown (value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'object' && value !== null) return 'an object'
  return String(value)
}
