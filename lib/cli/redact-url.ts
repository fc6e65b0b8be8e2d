/**
 * A URL as a message or a log line may show it: a password in its userinfo,
 * or in a `password` query parameter, becomes `***`. Where the parser finds no userinfo although there may be
 * one (the URL does not parse, or a mistyped `redis:/` put it in the path),
 * everything from its first `:` to the last `@` is masked: more than the
 * password rather than less.
 */
export function redactUrl (value: string | URL): string {
  const text = String(value)
  const url = URL.canParse(text) ? new URL(text) : undefined
  // ioredis also reads a password from the query (?password=).
  const inQuery = url !== undefined && url.searchParams.has('password')
  if (url !== undefined && (url.password !== '' || inQuery)) {
    if (url.password !== '') url.password = '***'
    if (inQuery) url.searchParams.set('password', '***')
    return text.endsWith('/') ? url.href : url.href.replace(/\/$/, '')
  }
  const at = text.lastIndexOf('@')
  // Anything else is shown as the user typed it.
  if (at < 0 || (url !== undefined && url.host !== '')) return text
  const kept = /^[a-z][a-z0-9+.-]*:\/\/[^:@/?#]*:/i.exec(text)?.[0] ?? /^[^:@]*:/.exec(text)?.[0] ?? ''
  return `${kept}***${text.slice(at)}`
}
