import t from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig } from '../../lib/cli/config'
import { SERVE_TABLE } from '../../lib/cli/serve-table'

/*
 * A config file others can read is worth a warning when it holds a secret:
 * the cluster secret, and a Redis URL's password, which opens the store of
 * every ID's secret.
 */

function configFile (t: { teardown: (fn: () => void) => void }, options: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'rendezvous-config-secrets-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'serve.json')
  writeFileSync(file, JSON.stringify(options))
  chmodSync(file, 0o644)
  return file
}

const warningsOf = (file: string): string[] => resolveConfig('serve', SERVE_TABLE, { args: ['--config', file], env: {} }).warnings

t.test('a readable config file with a Redis password, in the userinfo or the query, gets a warning that does not show it', async t => {
  for (const redis of ['redis://:hunter2@127.0.0.1:6379', 'redis://127.0.0.1:6379/0?password=hunter2', 'REDIS://:hunter2@127.0.0.1:6379']) {
    const file = configFile(t, { redis })
    const warnings = warningsOf(file)
    t.same(warnings, [`--config ${file} holds a password in redis, but the file has mode 0644, readable by other users; run chmod 600 on it`], redis)
    t.notOk(warnings.join('').includes('hunter2'))
  }
})

t.test('a readable config file with a Redis URL without a password is fine', async t => {
  t.same(warningsOf(configFile(t, { redis: 'redis://127.0.0.1:6379' })), [])
  t.same(warningsOf(configFile(t, { port: 0 })), [])
})
