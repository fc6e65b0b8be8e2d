import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { parseServeArgs } from '../../lib/cli/serve-args'
import { buildProblem, startCli } from '../helpers/cli'
import { otherCertPath, otherKeyPath, tlsCertPath, tlsKeyPath } from '../helpers/tls'
import { refusal } from '../helpers/cli-refusal'

/*
 * serve's TLS mode is one setting, said as --no-tls, as a --tls-cert and
 * --tls-key pair, or as --tls-name for the generated certificate. It follows
 * the documented precedence, flag > variable > file: the highest source that
 * says one of them decides. It used to be refused whenever two sources said
 * different ones, naming --no-tls or --tls-cert though the user had typed
 * only the other.
 */
type Test = Parameters<Parameters<typeof t.test>[0]>[0]

let files = 0
function configFile (t: Test, options: object): string {
  const file = join(tempDir(t), `serve-${++files}.json`)
  writeFileSync(file, JSON.stringify(options))
  return file
}

const tlsOf = (args: string[], env: NodeJS.ProcessEnv = {}): { noTls: boolean, tlsCert?: string, tlsKey?: string, tlsNames: string[] } => {
  const { noTls, tlsCert, tlsKey, tlsNames } = parseServeArgs(['--port', '0', ...args], env)
  return { noTls, tlsCert, tlsKey, tlsNames }
}

const PAIR = ['--tls-cert', tlsCertPath, '--tls-key', tlsKeyPath]
const ENV_PAIR = { RENDEZVOUS_TLS_CERT: tlsCertPath, RENDEZVOUS_TLS_KEY: tlsKeyPath }
const given = { noTls: false, tlsCert: tlsCertPath, tlsKey: tlsKeyPath, tlsNames: [] }
const plain = { noTls: true, tlsCert: undefined, tlsKey: undefined, tlsNames: [] }
const generated = (...names: string[]): object => ({ noTls: false, tlsCert: undefined, tlsKey: undefined, tlsNames: names })

t.test('the highest source that says how to do TLS decides, and what lower ones say is dropped', async t => {
  t.same(tlsOf(PAIR, { RENDEZVOUS_NO_TLS: 'true' }), given, '--tls-cert/--tls-key over RENDEZVOUS_NO_TLS=true')
  t.same(tlsOf(['--no-tls'], ENV_PAIR), plain, '--no-tls over RENDEZVOUS_TLS_CERT/KEY')
  t.same(tlsOf(['--config', configFile(t, { noTls: true }), ...PAIR]), given, '--tls-cert/--tls-key over noTls in the file')
  t.same(tlsOf(['--config', configFile(t, { tlsCert: otherCertPath, tlsKey: otherKeyPath })], { RENDEZVOUS_NO_TLS: '1' }), plain, 'RENDEZVOUS_NO_TLS over the pair in the file')
  t.same(tlsOf(['--config', configFile(t, { noTls: true })], ENV_PAIR), given, 'the variables\' pair over noTls in the file')
  t.same(tlsOf(['--tls-name', 'relay.test'], { RENDEZVOUS_NO_TLS: 'yes' }), generated('relay.test'), '--tls-name over RENDEZVOUS_NO_TLS')
  t.same(tlsOf(['--tls-name', 'relay.test'], ENV_PAIR), generated('relay.test'), '--tls-name over the variables\' pair')
  t.same(tlsOf(['--no-tls'], { RENDEZVOUS_TLS_NAME: 'relay.test' }), plain, 'a name from a lower source is dropped under --no-tls')
  t.same(tlsOf([...PAIR], { RENDEZVOUS_TLS_NAME: 'relay.test' }), given, 'and under a pair')
  t.same(tlsOf(['--config', configFile(t, { noTls: true, tlsName: ['relay.test'], tlsCert: otherCertPath, tlsKey: otherKeyPath })], { RENDEZVOUS_TLS_NAME: 'a.test,b.test' }), generated('a.test', 'b.test'),
    'a contradiction in a lower source is overridden, not refused')
  t.same(tlsOf(['--config', configFile(t, { noTls: true })], { RENDEZVOUS_NO_TLS: 'false' }), generated(), 'RENDEZVOUS_NO_TLS=false over the file: TLS, generated')
  t.same(tlsOf(['--config', configFile(t, { noTls: true, tlsCert: tlsCertPath, tlsKey: tlsKeyPath })], { RENDEZVOUS_NO_TLS: 'false' }), given, 'and the file\'s pair is then used')
  t.same(tlsOf(['--tls-cert', tlsCertPath], { RENDEZVOUS_TLS_KEY: tlsKeyPath, RENDEZVOUS_NO_TLS: 'true' }), given, 'the pair\'s halves may come from two sources, as any option\'s')
  t.same(tlsOf([]), generated(), 'nothing said: the generated certificate')
})

t.test('two ways said in one source are refused, naming where each came from', async t => {
  const file = configFile(t, { noTls: true, tlsCert: tlsCertPath, tlsKey: tlsKeyPath })
  const cases: Array<[string[], NodeJS.ProcessEnv, string]> = [
    [['--no-tls', ...PAIR], { RENDEZVOUS_NO_TLS: 'false' }, '--no-tls cannot be combined with --tls-cert and --tls-key'],
    [['--no-tls', '--tls-cert', tlsCertPath], { RENDEZVOUS_TLS_KEY: tlsKeyPath }, '--no-tls cannot be combined with --tls-cert'],
    [[], { ...ENV_PAIR, RENDEZVOUS_NO_TLS: 'true' }, 'RENDEZVOUS_NO_TLS cannot be combined with RENDEZVOUS_TLS_CERT and RENDEZVOUS_TLS_KEY'],
    [['--config', file], {}, `noTls in ${file} cannot be combined with tlsCert in ${file} and tlsKey in ${file}`],
    [['--tls-name', 'relay.test', '--no-tls'], ENV_PAIR, '--tls-name names the generated certificate; it cannot be combined with --no-tls'],
    [[], { ...ENV_PAIR, RENDEZVOUS_TLS_NAME: 'relay.test' }, 'RENDEZVOUS_TLS_NAME names the generated certificate; it cannot be combined with RENDEZVOUS_TLS_CERT and RENDEZVOUS_TLS_KEY'],
    [['--config', configFile(t, { tlsName: 'relay.test', noTls: true })], ENV_PAIR, ''],
    [['--tls-cert', tlsCertPath], { RENDEZVOUS_NO_TLS: 'true' }, '--tls-cert needs --tls-key'],
    [[], { RENDEZVOUS_TLS_KEY: tlsKeyPath }, 'RENDEZVOUS_TLS_KEY needs --tls-cert']
  ]
  for (const [args, env, message] of cases) {
    if (message === '') {
      t.same(tlsOf(args, env), given, 'the file\'s contradiction is under the variables\' pair')
      continue
    }
    t.equal(refusal(() => tlsOf(args, env)), message, `${args.join(' ')} ${JSON.stringify(env)}`)
  }
})

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The certificate a TLS client is shown at 127.0.0.1:port. */
async function presented (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

async function plainStatus (port: number): Promise<number | undefined> {
  return await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/healthz' }, res => { res.resume(); resolve(res.statusCode) }).on('error', reject)
  })
}

t.test('serve itself: a flag overrides the TLS mode of the environment and of the file', async t => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const fingerprint = new X509Certificate(readFileSync(tlsCertPath)).fingerprint256

  const overNoTls = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), ...PAIR], { env: { RENDEZVOUS_NO_TLS: 'true' } })
  const [, tlsPort] = await overNoTls.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//)
  t.equal(await presented(Number(tlsPort)), fingerprint, 'RENDEZVOUS_NO_TLS=true serve --tls-cert --tls-key: the given certificate')
  t.equal((await overNoTls.stop('SIGTERM')).code, 0)

  const dir = tempDir(t)
  const file = join(dir, 'serve.json')
  writeFileSync(file, JSON.stringify({ noTls: true }), { mode: 0o600 })
  const overFile = startCli(t, ['serve', '--config', file, '--port', '0', '--data-dir', dir, ...PAIR])
  const [, filePort] = await overFile.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//)
  t.equal(await presented(Number(filePort)), fingerprint, '{"noTls":true} and serve --tls-cert --tls-key: the given certificate')
  t.equal((await overFile.stop('SIGTERM')).code, 0)

  const overPair = startCli(t, ['serve', '--port', '0', '--data-dir', tempDir(t), '--no-tls'], { env: ENV_PAIR })
  const [, plainPort] = await overPair.waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)
  t.equal(await plainStatus(Number(plainPort)), 200, 'RENDEZVOUS_TLS_CERT/KEY and serve --no-tls: plain HTTP')
  t.equal((await overPair.stop('SIGTERM')).code, 0)
})
