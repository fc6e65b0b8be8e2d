import t from 'tap'
import { redactUrl } from '../../lib/cli/redact-url'

// Every message and log line of the CLI that shows a URL (a Redis URL, the agent's --server and --to) shows it through this.

t.test('redactUrl masks the password of a URL, whether or not it parses', async t => {
  const masked: Array<[string, string]> = [
    ['redis://:pw@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['redis://user:pw@redis.example:6380/2', 'redis://user:***@redis.example:6380/2'],
    ['https://admin:pw@127.0.0.1:8443/', 'https://admin:***@127.0.0.1:8443/'],
    ['redis://:pw@127.0.0.1:70000', 'redis://:***@127.0.0.1:70000'],
    ['redis://:p@w@[bad', 'redis://:***@[bad'],
    // A mistyped scheme puts the userinfo in the path, where the parser finds no password.
    ['redis:/:pw@127.0.0.1:6379', 'redis:***@127.0.0.1:6379'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['redis://user@127.0.0.1:6379', 'redis://user@127.0.0.1:6379'],
    ['http://127.0.0.1:3000/a@b', 'http://127.0.0.1:3000/a@b'],
    ['localhost:6379', 'localhost:6379'],
    // ioredis reads a password from the query too.
    ['redis://127.0.0.1:6379/0?password=pw', 'redis://127.0.0.1:6379/0?password=***'],
    ['rediss://u:pw@h/2?password=pw&db=1', 'rediss://u:***@h/2?password=***&db=1']
  ]
  for (const [url, shown] of masked) t.equal(redactUrl(url), shown, url)
})
