// C0 controls, DEL and C1 controls. Node reads header values as latin-1, so a
// byte 0x85 arrives as U+0085 (NEL), which some log readers take for a line
// break, and 0x9b as U+009B (CSI), which a terminal obeys as an escape.
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g // eslint-disable-line no-control-regex

/**
 * A remote party's text as a log line may carry it: every control character
 * written as `\xHH`. Lines are read by terminals and by tools that split on
 * more than `\n`; a peer must not be able to forge a line or drive a terminal.
 */
export function printable (text: string): string {
  return text.replace(CONTROLS, c => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

// A scheme and `//`: an absolute-form target (`GET http://host/path`), whose authority may carry userinfo.
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i

/**
 * A request target as log lines show it: its path without the query (or a
 * fragment), and without the userinfo of an absolute-form target
 * (`http://user:password@host/path` gives `http://host/path`). A query can
 * carry a token (`?access_token=`, as some OAuth tools send it), or in
 * `?rendezvous=` a name that is no ID but an app's key typed into the wrong
 * field; userinfo is a password. Control characters are escaped (printable).
 */
export function loggedPath (target: string): string {
  const cut = target.search(/[?#]/)
  const path = cut === -1 ? target : target.slice(0, cut)
  return printable(withoutUserinfo(path))
}

function withoutUserinfo (path: string): string {
  if (path.startsWith('/')) return path
  // Absolute form: the authority follows `//`; anything else not a path (authority form, `host:port`) is one whole.
  const start = SCHEME.exec(path)?.[0].length ?? 0
  const slash = path.indexOf('/', start)
  const authorityEnd = slash === -1 ? path.length : slash
  const at = path.lastIndexOf('@', authorityEnd - 1)
  return at < start ? path : path.slice(0, start) + path.slice(at + 1)
}

/**
 * An error message as a log line may carry it: any URL in it loses the
 * password of its userinfo (`redis://:secret@host` gives `redis://***@host`)
 * and of a `password` query parameter, which ioredis also reads.
 */
export function withoutUrlPasswords (text: string): string {
  return text
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@')
    .replace(/([?&]password=)[^\s&#]*/gi, '$1***')
}
