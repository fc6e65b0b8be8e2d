import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseServeArgs } from '../../lib/cli/serve-args'
import { buildProblem, runCli } from '../helpers/cli'
import { makeCa, makeNodeCert, peerTlsFlags, writePeerFiles, type PeerFiles } from '../cluster/peer-certs'

// The peer TLS flags of `serve` (docs/cli.md, docs/cluster.md): what they need, and one-line errors that name files, never their content.

const CLUSTER = ['--redis', 'redis://127.0.0.1:1', '--cluster-secret', 'a cluster secret for the tests']

t.test('peer TLS flags', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'rendezvous-peer-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const ca = await makeCa('test peer CA')
  const otherCa = await makeCa('another CA')
  const good = await writePeerFiles(dir, 'good', await makeNodeCert(ca, 'node a'), ca)
  const foreign = await writePeerFiles(dir, 'foreign', await makeNodeCert(otherCa, 'node x'), otherCa)
  // An RSA pair: OpenSSL loads its key with an EC certificate (and the other way round) without a word.
  const rsaCa = await makeCa('an RSA CA', 'rsa')
  const rsa = await writePeerFiles(dir, 'rsa', await makeNodeCert(rsaCa, 'node r', undefined, true, 1, 'rsa'), rsaCa)
  // Signed by the right CA, for the right names, outside its dates: the other nodes would refuse it as surely.
  const expired = await writePeerFiles(dir, 'expired', await makeNodeCert(ca, 'node e', undefined, true, 2, 'ec', new Date(Date.now() - 3 * 86_400_000)), ca)
  const early = await writePeerFiles(dir, 'early', await makeNodeCert(ca, 'node f', undefined, true, 2, 'ec', new Date(Date.now() + 86_400_000)), ca)
  const garbage = join(dir, 'garbage.pem')
  await writeFile(garbage, 'not a PEM file\n')
  const keyText = readFileSync(good.key, 'utf8')
  const parse = (flags: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof parseServeArgs> => parseServeArgs(flags, env)
  const tls = (f: Partial<PeerFiles>): string[] => peerTlsFlags({ ...good, ...f })

  t.test('all three files: mutual TLS material, read at start', async t => {
    const parsed = parse([...CLUSTER, ...tls({})])
    t.same(parsed.cluster?.peerTls?.cert.toString(), readFileSync(good.cert, 'utf8'))
    t.equal(parsed.cluster?.peerTls?.name, undefined, 'no name: the advertised host is verified')
    t.equal(parse([...CLUSTER, ...tls({}), '--peer-tls-name', 'Peers.Rendezvous.Test']).cluster?.peerTls?.name, 'peers.rendezvous.test')
    t.equal(parse(CLUSTER).cluster?.peerTls, undefined, 'without the flags the link stays plain TCP')
  })

  t.test('from the environment and from the config file, like every serve option', async t => {
    const env = { RENDEZVOUS_PEER_TLS_CERT: good.cert, RENDEZVOUS_PEER_TLS_KEY: good.key, RENDEZVOUS_PEER_CA: good.ca, RENDEZVOUS_PEER_TLS_NAME: 'peers.rendezvous.test' }
    t.equal(parse(CLUSTER, env).cluster?.peerTls?.name, 'peers.rendezvous.test')
    const config = join(dir, 'config.json')
    await writeFile(config, JSON.stringify({ peerTlsCert: good.cert, 'peer-tls-key': good.key, peerCa: good.ca }))
    t.ok(parse([...CLUSTER, '--config', config]).cluster?.peerTls, 'config file keys, camelCase or flag names')
    t.throws(() => parse([...CLUSTER, '--config', config, '--peer-ca', foreign.ca]), { message: /is not signed by --peer-ca/ }, 'a flag wins over the file')
  })

  const refusals: Array<[string, string[], RegExp]> = [
    ['without --redis', ['--peer-tls-cert', good.cert], /^--peer-tls-cert needs --redis URL \(cluster mode\)$/],
    ['cert without key', [...CLUSTER, '--peer-tls-cert', good.cert, '--peer-ca', good.ca], /^--peer-tls-cert needs --peer-tls-key$/],
    ['key without cert', [...CLUSTER, '--peer-tls-key', good.key, '--peer-ca', good.ca], /^--peer-tls-key needs --peer-tls-cert$/],
    ['a pair without a CA', [...CLUSTER, '--peer-tls-cert', good.cert, '--peer-tls-key', good.key], /^--peer-tls-cert needs --peer-ca/],
    ['a CA without a pair', [...CLUSTER, '--peer-ca', good.ca], /^--peer-ca needs --peer-tls-cert and --peer-tls-key: the peer link is mutual TLS$/],
    ['a name without the files', [...CLUSTER, '--peer-tls-name', 'peers.rendezvous.test'], /^--peer-tls-name needs --peer-tls-cert, --peer-tls-key and --peer-ca$/],
    ['a missing file', [...CLUSTER, ...tls({ ca: join(dir, 'nope.pem') })], /^--peer-ca \S+nope\.pem: no such file$/],
    ['a directory', [...CLUSTER, ...tls({ cert: dir })], /: it is a directory$/],
    ['a key given as the certificate', [...CLUSTER, ...tls({ cert: good.key })], /^--peer-tls-cert \S+good-key\.pem is not a PEM certificate$/],
    ['a CA file without certificates', [...CLUSTER, ...tls({ ca: garbage })], /^--peer-ca \S+garbage\.pem holds no PEM certificate$/],
    ['a key that is no key', [...CLUSTER, ...tls({ key: garbage })], /^--peer-tls-key \S+garbage\.pem is not a PEM private key$/],
    ['the key of another certificate', [...CLUSTER, ...tls({ key: foreign.key })], /^--peer-tls-key \S+foreign-key\.pem is not the key of --peer-tls-cert \S+good-cert\.pem$/],
    ['an RSA key with an EC certificate', [...CLUSTER, ...tls({ key: rsa.key })], /^--peer-tls-key \S+rsa-key\.pem is not the key of --peer-tls-cert \S+good-cert\.pem$/],
    ['an EC key with an RSA certificate', [...CLUSTER, ...tls({ cert: rsa.cert })], /^--peer-tls-key \S+good-key\.pem is not the key of --peer-tls-cert \S+rsa-cert\.pem$/],
    ['an expired certificate', [...CLUSTER, ...tls(expired)], /^--peer-tls-cert \S+expired-cert\.pem has expired: valid from \S+ to \S+, and this host's clock says \S+$/],
    ['a certificate not valid yet', [...CLUSTER, ...tls(early)], /^--peer-tls-cert \S+early-cert\.pem is not valid yet: valid from \S+ to \S+, and this host's clock says \S+; check the clocks, or wait$/],
    ['a certificate the CA did not sign', [...CLUSTER, ...tls({ ca: foreign.ca })], /^--peer-tls-cert \S+ is not signed by --peer-ca \S+foreign-ca\.pem: the other nodes would refuse it$/],
    ['a certificate without the advertised host', [...CLUSTER, '--advertise', 'node1.example:9443', ...tls({})], /does not name node1\.example, the host other nodes dial \(--advertise\)/],
    ['a certificate without --peer-tls-name', [...CLUSTER, ...tls({}), '--peer-tls-name', 'other.example'], /does not name other\.example \(--peer-tls-name\)$/],
    ['an IP address as --peer-tls-name', [...CLUSTER, ...tls({}), '--peer-tls-name', '10.0.0.1'], /^--peer-tls-name must be a DNS name/]
  ]
  for (const [name, flags, message] of refusals) {
    t.test(name, async t => {
      const err = t.throws(() => parse(flags), { message, exitCode: 2 }) as Error | undefined
      t.notMatch(err?.message ?? '', /PRIVATE KEY|BEGIN/, 'no key material in the message')
    })
  }

  t.test('the built CLI: one line on stderr, exit 2, no stack trace, no key material', { skip: buildProblem(t) ?? false }, async t => {
    for (const flags of [tls({ cert: good.key }), tls({ key: foreign.key }), tls({ key: rsa.key }), tls({ cert: rsa.cert }), tls(expired)]) {
      const run = await runCli(t, ['serve', '--no-tls', '--port', '0', ...CLUSTER, ...flags])
      t.equal(run.code, 2)
      t.match(run.stderr, /^rendezvous: --peer-tls-\S+ \S+ (is not |has expired)/)
      t.equal(run.stderr.split('\n').length, 2, 'one line')
      t.notOk(run.stderr.includes(keyText.split('\n')[1]) || /BEGIN|\n\s+at /.test(run.stderr), run.stderr)
      t.equal(run.stdout, '')
    }
  })
})
