import t from 'tap'
import { logLimiter } from '../../lib/relay/log-limit'

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
