import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { buildProblem, ROOT, runCli } from './helpers/cli'

/*
 * docs/migrating.md is what an operator of hubs built for the original relay
 * follows step by step: its links must lead somewhere, the flags it names
 * must exist, and the refusals it quotes must be the ones they will see.
 */

const MIGRATING = join(ROOT, 'docs', 'migrating.md')
const text = readFileSync(MIGRATING, 'utf8')

// GitHub's anchors: lower case, punctuation but hyphens dropped, spaces to hyphens.
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').replace(/\s/g, '-')

function anchors (file: string): Set<string> {
  const body = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '')
  return new Set([...body.matchAll(/^#{1,6} (.+)$/gm)].map(m => slug(m[1]!)))
}

t.test('every link of migrating.md leads to a file and a heading that exist', async t => {
  const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map(m => m[1]!).filter(link => !/^https?:/.test(link))
  t.ok(links.length >= 8, `found ${links.length} links`)
  for (const link of links) {
    const [path, anchor] = link.split('#') as [string, string | undefined]
    const file = path === '' ? MIGRATING : join(dirname(MIGRATING), path)
    t.ok(existsSync(file), `${link}: the file exists`)
    if (anchor !== undefined && existsSync(file)) t.ok(anchors(file).has(anchor), `${link}: the heading exists`)
  }
})

t.test('README.md and protocol.md lead to it', async t => {
  t.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), /\*\*Coming from the original relay\*\*[\s\S]*\]\(docs\/migrating\.md\)/)
  t.match(readFileSync(join(ROOT, 'docs', 'protocol.md'), 'utf8'), '](migrating.md)')
})

t.test('every flag it names is one of serve, ids or agent', { skip: buildProblem(t) ?? false }, async t => {
  let help = ''
  for (const command of ['serve', 'ids', 'agent']) {
    const res = await runCli(t, [command, '--help'])
    t.equal(res.code, 0, `${command} --help`)
    help += res.stdout
  }
  const flags = new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]+)/g)].map(m => m[1]!))
  // Node's own, in the NODE_OPTIONS workaround for old TLS clients.
  for (const node of ['tls-min-v1', 'tls-cipher-list']) flags.delete(node)
  t.ok(flags.size >= 6, [...flags].join(' '))
  for (const flag of flags) t.match(help, new RegExp(`--${flag}\\b`), `--${flag}`)
})

t.test('the refusal it quotes for a short secret is what ids add prints, exit 2', { skip: buildProblem(t) ?? false }, async t => {
  const quoted = /`(it holds only 10 bytes[^`]*)`/.exec(text)?.[1]
  t.ok(quoted, 'the page quotes the refusal')
  const res = await runCli(t, ['ids', 'add', '--data-dir', join(ROOT, 'no-such-dir-of-the-docs-test'), '--id', 'hub', '--secret', 'JBSWY3DPEHPK3PXP'])
  t.equal(res.code, 2)
  t.ok(res.stderr.includes(quoted ?? '\0'), res.stderr)
  t.notOk(existsSync(join(ROOT, 'no-such-dir-of-the-docs-test')), 'nothing was written')
})
