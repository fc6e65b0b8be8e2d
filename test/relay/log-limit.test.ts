import t from 'tap'
import { failureReporter, logLimiter } from '../../lib/relay/log-limit'

t.test('one line per key and interval; expired keys leave, and the map is capped', async t => {
  let time = 0
  const logNow = logLimiter(60_000, () => time)
  t.equal(logNow('a'), true)
  t.equal(logNow('a'), false)
  time = 59_999
  t.equal(logNow('a'), false)
  time = 60_000
  t.equal(logNow('a'), true, 'again once the interval has passed')
  // A flood from very many sources in one interval: past 10,000 keys, the rest go quiet (the map stays that small).
  time = 200_000
  let logged = 0
  for (let i = 0; i < 50_000; i++) if (logNow(`source-${i}`)) logged++
  t.equal(logged, 10_000)
  time = 260_000
  t.equal(logNow('source-20000'), true, 'the expired ones leave, and new keys are logged again')
})

t.test('failureReporter: each distinct reason once per interval, cut short, with no URL password', async t => {
  const reports: string[] = []
  const report = failureReporter(60_000, why => reports.push(why))
  report(new Error('WRONGPASS connecting to redis://app:hunter2@127.0.0.1:6379/0?password=hunter2&db=1'))
  report(new Error('WRONGPASS connecting to redis://app:hunter2@127.0.0.1:6379/0?password=hunter2&db=1'))
  report('OOM command not allowed when used memory > \'maxmemory\'.')
  report(new Error('x'.repeat(1000)))
  t.same(reports.slice(0, 2), [
    'WRONGPASS connecting to redis://***@127.0.0.1:6379/0?password=***&db=1',
    'OOM command not allowed when used memory > \'maxmemory\'.'
  ], 'the same reason twice is one report; a string is its own message')
  t.equal(reports.length, 3)
  t.equal(reports[2], 'x'.repeat(300), 'at most 300 characters')
  t.notOk(reports.join('\n').includes('hunter2'))
})
