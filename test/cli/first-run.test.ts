import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import https from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildProblem, CLI_MAIN, ROOT, run, spawnProc, type Proc } from '../helpers/cli'
import { startHiddenSite } from '../helpers/hidden-site'
import { until } from '../helpers/until'

type Test = Parameters<Parameters<typeof t.test>[0]>[0]

function parked (port: number, ca: Buffer): Promise<number> {
  return new Promise((resolve) => {
    https.get(`https://127.0.0.1:${port}/healthz`, { ca, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c })
      res.on('end', () => resolve((JSON.parse(body) as { parked?: number }).parked ?? 0))
    }).on('error', () => resolve(0))
  })
}

/** Runs a printed command line through the shell, in the clone, as a user pasting it would. */
async function paste (t: Test, line: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const result = await run(t, 'sh', ['-c', line], { cwd: ROOT })
  return { code: result.code, stdout: result.stdout.toString('utf8'), stderr: result.stderr }
}

async function agentWorks (t: Test, line: string, servePort: number, ca: Buffer, curl: string): Promise<void> {
  const agent: Proc = spawnProc(t, 'agent', 'sh', ['-c', `exec ${line}`], { cwd: ROOT })
  await until(async () => (await parked(servePort, ca)) > 0 || agent.done(), 20_000, 'the agent to park')
  t.notOk(agent.done(), `the agent runs: ${agent.output()}`)
  const answer = await paste(t, curl)
  t.equal(answer.code, 0, `curl as printed: ${answer.stderr}`)
  t.match(answer.stdout, /hidden site: no such page/, 'curl reached the hidden site through the relay')
  t.same(await agent.stop('SIGTERM'), { code: 0, signal: null })
}

t.test('the commands serve and ids add print work as printed, in a clone', async (t) => {
  const problem = buildProblem(t)
  if (problem !== undefined) return t.fail(problem)
  const dataDir = mkdtempSync(join(tmpdir(), 'rendezvous-first-run-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const site = await startHiddenSite(t)
  const serve = spawnProc(t, 'serve', process.execPath, [CLI_MAIN, 'serve', '--port', '0', '--data-dir', dataDir], { cwd: ROOT })
  const [, port] = await serve.waitFor(/listening on https:\/\/127\.0\.0\.1:(\d+)\//, 20_000)
  await serve.waitFor(/3\. Reach the hidden server[^\n]*\n {7}\S[^\n]*\n/)
  const commands = serve.stdout().split('\n').filter((l) => /^ {7}\S/.test(l)).map((l) => l.trim())
  t.equal(commands.length, 3, commands.join('\n'))
  const [idsAdd, agent, curl] = commands as [string, string, string]
  const ca = readFileSync(join(dataDir, 'tls', 'cert.pem'))
  t.match(idsAdd, /^node dist\/cli\/main\.js ids add /, 'a command that exists in a clone')
  t.match(agent, new RegExp(`^node dist/cli/main\\.js agent .* --ca ${join(dataDir, 'tls', 'cert.pem')}$`), 'with --ca for the self-signed certificate')

  const added = await paste(t, idsAdd)
  t.equal(added.code, 0, added.stderr)
  const id = /ID:\s+(\S+)/.exec(added.stdout)?.[1] ?? ''
  const secret = /Secret:\s+(\S+)/.exec(added.stdout)?.[1] ?? ''
  const fill = (line: string): string => line.replace(/\bID\b/g, id).replace(/\bSECRET\b/g, secret).replace(/:PORT\b/g, `:${site.port}`)
  const myCurl = fill(curl)
  await agentWorks(t, fill(agent), Number(port), ca, myCurl)

  // ids add's own hint: only HOST is left to the operator.
  const hint = added.stdout.split('\n').map((l) => l.trim()).find((l) => / agent --server /.test(l)) ?? ''
  t.match(hint, new RegExp(`^node dist/cli/main\\.js agent --server https://HOST:8443 --id=${id} --secret ${secret} --to http://127\\.0\\.0\\.1:PORT --ca \\S+cert\\.pem$`))
  await agentWorks(t, fill(hint.replace('HOST:8443', `127.0.0.1:${port}`)), Number(port), ca, myCurl)
  t.same(await serve.stop('SIGTERM'), { code: 0, signal: null })
})
