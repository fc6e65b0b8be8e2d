import { basename, isAbsolute, relative, resolve, sep } from 'node:path'
import { shellQuote } from '../shell-quote'

/**
 * How to run this very CLI again, so that the commands it prints work when
 * pasted: `rendezvous` when it was run from the PATH (installed globally),
 * `npx rendezvous` from a project's node_modules/.bin, and otherwise
 * `node PATH/dist/cli/main.js` (a clone, where `rendezvous` is on no PATH),
 * PATH absolute with `absolute`, for a command pasted in another directory.
 */
export function selfCommand (script: string | undefined = process.argv[1], cwd = process.cwd(), absolute = false): string {
  if (script === undefined || script === '') return 'rendezvous'
  const path = resolve(cwd, script)
  if (path.includes(`${sep}node_modules${sep}.bin${sep}`)) return 'npx rendezvous'
  if (basename(path).replace(/\.(c|m)?js$/, '') === 'rendezvous') return 'rendezvous'
  const near = relative(cwd, path)
  return `node ${shellQuote(absolute || near.startsWith('..') || isAbsolute(near) ? path : near)}`
}
