import t from 'tap'
import { checkSoak, runSoak } from '../../bench/soak/harness'

/* `npm run soak`, small: a few hundred requests while hidden connections are killed at random. */

t.test('every request ends answered, refused or closed by a kill; no descriptor leaks', async t => {
  const report = await runSoak({ requests: 400, concurrency: 16, pool: 24, killRate: 0.1 })
  t.same(checkSoak(report), [], JSON.stringify({ ...report, samples: undefined }))
  t.equal(report.hung, 0)
  t.ok(report.answered > 300, `${report.answered} answered`)
  t.equal(report.fdsAfter, report.fdsBefore, 'the relay holds as many descriptors as before the load')
})
