import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { envOf, flagOf, optionsHelp, pluginOptionsOf, type AnyOption } from '../../lib/cli/config'
import { SERVE_TABLE } from '../../lib/cli/serve-table'
import { refusal, resolveServe as resolve } from '../helpers/cli-refusal'

t.test('defaults come from the table, durations in ms', async t => {
  const c = resolve([])
  t.equal(c.host, '127.0.0.1')
  t.equal(c.port, 8443)
  t.equal(c.waitTimeout, 10_000)
  t.equal(c.healthPath, '/healthz')
  t.equal(c.readyPath, '/readyz')
  t.equal(c.noTls, undefined)
  t.equal(c.adminListen, undefined)
  t.same(pluginOptionsOf(SERVE_TABLE, c).authFailures, { perPair: 10, perAddress: 100, perIdTotp: 30, window: 60_000, coolOff: 60_000, roomWait: 2000 })
  t.same((pluginOptionsOf(SERVE_TABLE, resolve(['--auth-failures-room-wait', '0.5'])).authFailures as { roomWait: number }).roomWait, 500, 'the room wait, in seconds on the command line')
  t.same((pluginOptionsOf(SERVE_TABLE, resolve(['--auth-failures-room-wait', '0'])).authFailures as { roomWait: number }).roomWait, 0, '0: 429 at once')
})

t.test('precedence: flag > env > file > default', async t => {
  const dir = t.testdir()
  const file = join(dir, 'serve.json')
  writeFileSync(file, JSON.stringify({ waitTimeout: 30, 'max-parked': 7, maxWaiters: 8, noTls: true, realm: 'file' }))
  const env = { RENDEZVOUS_CONFIG: file, RENDEZVOUS_WAIT_TIMEOUT: '20', RENDEZVOUS_MAX_PARKED: '6' }
  t.equal(resolve(['--wait-timeout', '10'], env).waitTimeout, 10_000, 'flag over env and file')
  t.equal(resolve([], env).waitTimeout, 20_000, 'env over file')
  t.equal(resolve([], env).maxParked, 6)
  t.equal(resolve(['--config', file]).waitTimeout, 30_000, 'file over default; flag names the file')
  t.equal(resolve(['--config', file]).maxParked, 7, 'file keys may be flag names')
  t.equal(resolve(['--config', file]).noTls, true)
  t.equal(resolve([], env).maxWaiters, 8)
  t.equal(resolve([], { ...env, RENDEZVOUS_NO_TLS: 'false' }).noTls, false, 'env over file for a boolean too')
  t.equal(resolve([]).maxWaiters, 10_000, 'default')
  t.same(pluginOptionsOf(SERVE_TABLE, resolve([], env)), {
    ...pluginOptionsOf(SERVE_TABLE, resolve([])), maxParked: 6, maxWaiters: 8, realm: 'file'
  }, 'the plugin gets what was resolved')
})

// A value each parser refuses: the empty string for plain text, a word for numbers, and so on.
const BAD: Record<string, string> = { port: '70000', peerPort: '99999', totp: 'sometimes', logLevel: 'loud', realm: 'a"b' }
function badValue (spec: AnyOption): string {
  if (BAD[spec.key] !== undefined) return BAD[spec.key]
  if (spec.value === 'PATH') return 'no-slash'
  if (spec.value === 'HOST:PORT' && spec.key !== 'advertise') return 'nowhere'
  if (spec.value === 'N' || spec.value === 'SECONDS') return 'soon'
  return ' '
}

t.test('each bad value is refused in one line naming the option, its source, the value and what is allowed', async t => {
  const dir = t.testdir()
  for (const spec of SERVE_TABLE as readonly AnyOption[]) {
    if (spec.key === 'config' || spec.key === 'help') continue
    const flag = `--${flagOf(spec.key)}`
    if (spec.value === undefined) {
      t.match(refusal(() => resolve([], { [envOf(spec.key)]: 'maybe' })), `${envOf(spec.key)} must be true or false, got "maybe"`)
      continue
    }
    const bad = badValue(spec)
    const fromFlag = refusal(() => resolve([flag, bad]))
    t.match(fromFlag, new RegExp(`^${flag} must be .+`), `${flag} ${JSON.stringify(bad)}: ${fromFlag}`)
    t.notMatch(fromFlag, /\n/)
    if (spec.secret === true) t.notMatch(fromFlag, bad === ' ' ? /got/ : bad, 'a secret value is not echoed')
    else t.match(fromFlag, `got ${JSON.stringify(bad)}`)
    if (bad !== ' ') {
      t.match(refusal(() => resolve([], { [envOf(spec.key)]: bad })), new RegExp(`^${envOf(spec.key)} must be `))
      const file = join(dir, `${spec.key}.json`)
      writeFileSync(file, JSON.stringify({ [spec.key]: bad }))
      t.match(refusal(() => resolve(['--config', file])), `${spec.key} in ${file} must be `)
    }
  }
})

t.test('the config file itself is checked', async t => {
  const dir = t.testdir({ 'bad.json': '{ nope', 'list.json': '[1]', 'unknown.json': '{"colour":"red"}', 'typed.json': '{"port":[1]}', 'nested.json': '{"config":"x"}' })
  t.match(refusal(() => resolve(['--config', join(dir, 'none.json')])), /none\.json: no such file/)
  t.match(refusal(() => resolve(['--config', join(dir, 'bad.json')])), /bad\.json: not valid JSON at line 1, column 3$/)
  t.match(refusal(() => resolve(['--config', join(dir, 'list.json')])), /must hold a JSON object/)
  t.match(refusal(() => resolve(['--config', join(dir, 'unknown.json')])), /unknown option "colour"/)
  t.match(refusal(() => resolve(['--config', join(dir, 'typed.json')])), /port in .* must be a single value, got \[1\]/)
  t.match(refusal(() => resolve(['--config', join(dir, 'nested.json')])), /unknown option "config"/)
  t.match(refusal(() => resolve(['--bogus'])), /bogus/)
})

t.test('an option the file gives twice is refused, not taken from the last of them unsaid', async t => {
  const dir = t.testdir({
    'same.json': '{"waitTimeout": 1, "waitTimeout": 3}',
    'alias.json': '{"waitTimeout": 1,\n "wait-timeout": 3}',
    'escaped.json': '{"dataDir": "/a", "data\\u0044ir": "/b"}',
    // A key's text inside a string value is not the option given twice.
    'fine.json': '{"waitTimeout": 1, "dataDir": "/tmp/a\\"waitTimeout\\": 3", "port": 8443}'
  })
  t.match(refusal(() => resolve(['--config', join(dir, 'same.json')])), /same\.json: sets "waitTimeout" twice; give each option once$/)
  t.match(refusal(() => resolve(['--config', join(dir, 'alias.json')])), /alias\.json: sets waitTimeout twice, as "waitTimeout" and "wait-timeout"; give each option once$/)
  t.match(refusal(() => resolve(['--config', join(dir, 'escaped.json')])), /escaped\.json: sets "dataDir" twice/)
  const fine = resolve(['--config', join(dir, 'fine.json')])
  t.equal(fine.waitTimeout, 1000)
})

t.test('a config file that is not JSON is told where, never with its text, which may be a secret', async t => {
  const secret = 'S3cr3t-Cluster-Key-0123456789'
  const texts: Array<[string, string]> = [
    [`{"clusterSecret": ${secret}}`, 'line 1, column 19'],
    [`{\n  "redis": "redis://:${secret}@10.0.0.1:6379",\n  "port": 8443,\n}`, 'line 4, column 1'],
    [`{\n  "clusterSecret": "${secret}`, 'line 2, column 50'],
    [`{"clusterSecret": "${secret}"} ${secret}`, 'line 1, column 52']
  ]
  for (const [text, where] of texts) {
    const file = join(t.testdir({ 'c.json': text }), 'c.json')
    const message = refusal(() => resolve(['--config', file]))
    t.equal(message, `--config ${file}: not valid JSON at ${where}`)
    t.notMatch(message, /S3cr3t/, 'no part of the secret')
  }
})

t.test('--help text lists every option with its default and variable', async t => {
  const help = optionsHelp(SERVE_TABLE)
  for (const spec of SERVE_TABLE as readonly AnyOption[]) {
    const line = help.split('\n').find(l => new RegExp(`^  (-h, )?--${flagOf(spec.key)} `).test(l))
    t.ok(line, `--${flagOf(spec.key)} is listed`)
    if (spec.flagOnly !== true) t.match(line, `env ${envOf(spec.key)}`)
    if ('default' in spec) t.match(line, `default ${String(spec.default)}`)
  }
})
