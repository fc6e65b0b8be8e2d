// Trimming HTTP whitespace (SP and HTAB only) by hand: a regex such as
// /[ \t]+$/ restarts at every blank of a long run that does not end the value,
// which is quadratic, and these run on every request head before anything is
// authenticated.

const isOws = (code: number): boolean => code === 0x20 || code === 0x09

/** `value` without the SP and HTAB at its end. */
export function trimOwsEnd (value: string): string {
  let end = value.length
  while (end > 0 && isOws(value.charCodeAt(end - 1))) end--
  return end === value.length ? value : value.slice(0, end)
}

/** `value` without the SP and HTAB at either edge; String#trim would also take a latin1 0xA0, a legitimate byte of a field. */
export function trimOws (value: string): string {
  let start = 0
  while (start < value.length && isOws(value.charCodeAt(start))) start++
  return trimOwsEnd(start === 0 ? value : value.slice(start))
}
