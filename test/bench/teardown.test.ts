import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { nginxMissing } from '../../bench/lib/nginx'
import { sshMissing } from '../../bench/lib/sshd'
import { launch, stop } from '../../bench/lib/procs'
import { alive, processTree, type Proc } from '../../bench/lib/teardown'
import { until } from '../helpers/until'

/* The bench stops what it started, descendants included, also when it fails or is interrupted. */

const CHILD = join(__dirname, '..', 'fixtures', 'bench', 'start-then-end.ts')

t.test('stop() kills what a process that ignores SIGTERM leaves behind', async t => {
  // A parent that ignores SIGTERM and has a child: after the SIGKILL that ends the parent, the child would live on.
  const parent = launch('sh', ['-c', 'trap "" TERM; sleep 120 & echo started; wait'])
  await once(parent.stdout!, 'data')
  const tree = processTree(parent.pid as number)
  t.equal(tree.length, 2, 'sh and its sleep')
  await stop(parent)
  t.same(tree.filter(alive), [], 'neither the parent nor its child is left')
})

async function cutShort (what: 'nginx' | 'ssh', how: 'fail' | 'wait'): Promise<{ tree: Proc[], child: ReturnType<typeof spawn> }> {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, what, how], { stdio: ['ignore', 'pipe', 'pipe'] })
  const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string]
  return { tree: JSON.parse(line) as Proc[], child }
}

for (const [what, missing] of [['nginx', nginxMissing()], ['ssh', sshMissing()]] as const) {
  t.test(`${what}: every process of it is gone when a run fails`, { skip: missing }, async t => {
    const { tree, child } = await cutShort(what, 'fail')
    t.ok(tree.length >= 2, `${tree.length} processes`)
    const [code] = await once(child, 'exit')
    t.equal(code, 1)
    await until(() => !tree.some(alive), 10_000, `${what} to be gone`)
    t.pass('none outlives the run')
  })

  t.test(`${what}: every process of it is gone after Ctrl-C`, { skip: missing }, async t => {
    const { tree, child } = await cutShort(what, 'wait')
    t.ok(tree.every(alive), 'running before')
    child.kill('SIGINT')
    const [code] = await once(child, 'exit')
    t.equal(code, 130)
    await until(() => !tree.some(alive), 10_000, `${what} to be gone`)
    t.pass('none outlives the run')
  })
}
