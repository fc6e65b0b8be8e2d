import { createPrivateKey } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { assertOneLineError, tempDir } from '../helpers/serve-cli'
import { buildProblem, runCli } from '../helpers/cli'
import { otherKeyPath, tlsCertPath, tlsKeyPath } from '../helpers/tls'

// Apart from serve.test.ts: each case starts a process, and together they took most of tap's two minutes on a loaded machine.

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('bad flags and bad files are one-line errors', async t => {
    const dir = tempDir(t)
    const garbage = join(dir, 'garbage.pem')
    writeFileSync(garbage, 'this is not a certificate\n')
    // The fixture key, encrypted as `openssl pkey -aes256` writes it.
    const encrypted = join(dir, 'encrypted.pem')
    writeFileSync(encrypted, createPrivateKey(readFileSync(tlsKeyPath)).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }))
    const cases: Array<[string, string[], RegExp]> = [
      ['encrypted key', ['--tls-cert', tlsCertPath, '--tls-key', encrypted], /encrypted\.pem is encrypted; give an unencrypted key/],
      ['missing --tls-key', ['--tls-cert', tlsCertPath], /--tls-cert needs --tls-key/],
      ['missing --tls-cert', ['--tls-key', tlsKeyPath], /--tls-key needs --tls-cert/],
      ['--tls-key file absent', ['--tls-cert', tlsCertPath, '--tls-key', join(dir, 'nope.pem')], /cannot read --tls-key .*nope\.pem: no such file/],
      ['garbage certificate', ['--tls-cert', garbage, '--tls-key', tlsKeyPath], /garbage\.pem is not a PEM certificate/],
      ['garbage key', ['--tls-cert', tlsCertPath, '--tls-key', garbage], /garbage\.pem is not a PEM private key/],
      ['key of another certificate', ['--tls-cert', tlsCertPath, '--tls-key', otherKeyPath], /other-key\.pem is not the key of/],
      ['unknown flag', ['--bogus'], /unknown option --bogus/],
      ['flag without its value', ['--port'], /--port needs a value/],
      ['a value on a flag that takes none', ['--help=yes'], /--help does not take a value/],
      ['port out of range', ['--port', '70000'], /--port must be/],
      ['port not a number', ['--port', 'http'], /--port must be/],
      ['wait timeout zero', ['--wait-timeout', '0'], /--wait-timeout must be/],
      // The kernel takes 1 to 32767 s; outside that, Node quietly leaves the system's two hours.
      ['keep-alive delay past the kernel\'s', ['--keep-alive-initial-delay', '40000'], /--keep-alive-initial-delay must be a number of seconds from 1 to 32767 \(the most the kernel takes\) or 0, in decimal digits/],
      ['keep-alive delay under a second', ['--keep-alive-initial-delay', '0.5'], /--keep-alive-initial-delay must be a number of seconds from 1 to 32767/],
      ['tls and no-tls', ['--no-tls', '--tls-cert', tlsCertPath, '--tls-key', tlsKeyPath], /cannot be combined/],
      ['metrics path and no metrics', ['--no-metrics', '--metrics-path', '/m'], /cannot be combined/],
      ['metrics path on /', ['--metrics-path', '/'], /--metrics-path must be/],
      ['metrics path on the health route', ['--metrics-path', '/healthz'], /--health-path and --metrics-path are both \/healthz: each route needs a path of its own/],
      ['health path on the metrics route', ['--health-path', '/metrics'], /--health-path and --metrics-path are both \/metrics/],
      ['health path on the ready route', ['--health-path', '/readyz'], /--health-path and --ready-path are both \/readyz/],
      ['two routes moved onto one path', ['--health-path', '/x', '--ready-path', '/x'], /--health-path and --ready-path are both \/x/],
      ['bad log level', ['--log-level', 'loud'], /--log-level must be one of/],
      ['positional argument', ['extra'], /unexpected argument extra/],
      ['cluster secret too short', ['--redis', 'redis://127.0.0.1:6379', '--cluster-secret', 's'], /cluster mode needs --cluster-secret SECRET or RENDEZVOUS_CLUSTER_SECRET/]
    ]
    for (const [name, flags, pattern] of cases) {
      await t.test(name, async t => {
        const res = await runCli(t, ['serve', '--port', '0', '--data-dir', join(dir, 'data'), ...flags])
        assertOneLineError(t, res, pattern)
      })
    }
    t.notOk(existsSync(join(dir, 'data', 'tls')), 'no failed start generated a certificate')
  })
}
