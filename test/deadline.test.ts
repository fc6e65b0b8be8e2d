import t from 'tap'
import { within } from '../lib/deadline'

t.test('the work\'s own outcome when it settles first, and the timer is cleared', async t => {
  let lateCalls = 0
  t.equal(await within(Promise.resolve('done'), 50, () => { lateCalls++; return 'late' }), 'done')
  await t.rejects(within(Promise.reject(new Error('boom')), 50, () => 'late'), /boom/)
  await new Promise(resolve => setTimeout(resolve, 80))
  t.equal(lateCalls, 0, 'late() never ran for work that settled in time')
})

t.test('late()\'s value or error once the time has passed', async t => {
  const never = new Promise<string>(() => {})
  const started = Date.now()
  t.equal(await within(never, 30, () => 'late'), 'late')
  t.ok(Date.now() - started >= 25, 'not before the deadline')
  await t.rejects(within(never, 10, () => { throw new Error('too slow') }), /too slow/)
})
