import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { checkSoak, runSoak } from './harness'

/*
 * `npm run soak`: the property tests at 10,000 cases each, then 100,000
 * requests through a relay while hidden connections are killed at random.
 * Sizes: SOAK_REQUESTS, SOAK_CONCURRENCY, RENDEZVOUS_PROPERTY_RUNS.
 * Exits non-zero when any property fails or any soak check does not hold.
 */
async function main (): Promise<number> {
  const root = join(__dirname, '..', '..')
  const runs = process.env.RENDEZVOUS_PROPERTY_RUNS ?? '10000'
  const properties = ['test/http/connect-target.property.test.ts', 'test/http/authorization.property.test.ts',
    'test/http/head.property.test.ts', 'test/tokens/verifier.property.test.ts']
  console.log(`properties: ${runs} cases each`)
  const tap = spawnSync('npx', ['tap', '--timeout=1800', '--reporter=dot', ...properties], {
    cwd: root, stdio: 'inherit', env: { ...process.env, RENDEZVOUS_PROPERTY_RUNS: runs }
  })
  const requests = Number(process.env.SOAK_REQUESTS ?? 100_000)
  const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 32)
  console.log(`soak: ${requests} requests, ${concurrency} at once`)
  const report = await runSoak({ requests, concurrency, pool: 48, killRate: 0.1, log: line => console.log(line) })
  console.log(JSON.stringify(report, null, 2))
  const failures = checkSoak(report)
  for (const f of failures) console.error(`soak: ${f}`)
  return tap.status === 0 && failures.length === 0 ? 0 : 1
}

if (require.main === module) {
  main().then(code => { process.exitCode = code }, err => {
    console.error(err)
    process.exitCode = 1
  })
}
