import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { CliError, type CliIo } from '../../lib/cli/cli-error'
import { main, type Command } from '../../lib/cli/main'
import { buildProblem, CLI_MAIN, ROOT, run, runCli } from '../helpers/cli'

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

class Capture extends Writable {
  text = ''
  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString()
    callback()
  }
}

function fakeIo (env: NodeJS.ProcessEnv = {}): CliIo & { stdout: Capture, stderr: Capture } {
  return { stdout: new Capture(), stderr: new Capture(), env }
}

const throwing = (err: unknown): Command => async () => { throw err }

t.test('dispatches to the command with the remaining arguments', async t => {
  const seen: string[][] = []
  const io = fakeIo()
  const code = await main(['serve', '--port', '0'], io, { serve: async (args) => { seen.push(args); return 7 } })
  t.equal(code, 7, 'the command\'s exit code')
  t.same(seen, [['--port', '0']])
})

t.test('a CliError is one line with its exit code', async t => {
  const io = fakeIo()
  const code = await main(['serve'], io, { serve: throwing(new CliError('--port must be a number\nand more', 3)) })
  t.equal(code, 3)
  t.equal(io.stderr.text, 'rendezvous: --port must be a number\n')
  t.equal(io.stdout.text, '')
})

t.test('an unexpected error is one line and a hint, or the stack with DEBUG', async t => {
  const err = new Error('kaput\nsecond line')
  const quiet = fakeIo()
  t.equal(await main(['ids'], quiet, { ids: throwing(err) }), 1)
  t.equal(quiet.stderr.text, 'rendezvous: unexpected error: kaput (run with DEBUG=rendezvous for the stack trace)\n')

  const debug = fakeIo({ DEBUG: 'rendezvous' })
  t.equal(await main(['ids'], debug, { ids: throwing(err) }), 1)
  t.match(debug.stderr.text, /^rendezvous: unexpected error: Error: kaput\nsecond line\n\s+at /)

  const odd = fakeIo()
  t.equal(await main(['ids'], odd, { ids: throwing('a string') }), 1)
  t.equal(odd.stderr.text, 'rendezvous: unexpected error: a string (run with DEBUG=rendezvous for the stack trace)\n')
})

t.test('help names a command, and inherited object keys are not commands', async t => {
  const asked: string[][] = []
  const io = fakeIo()
  t.equal(await main(['help', 'serve'], io, { serve: async (args) => { asked.push(args); return 0 } }), 0)
  t.same(asked, [['--help']])
  const proto = fakeIo()
  t.equal(await main(['constructor'], proto, {}), 2)
  t.match(proto.stderr.text, /^rendezvous: unknown command "constructor"\n/)
})

const problem = buildProblem(t)
if (problem !== undefined) {
  t.fail(problem)
} else {
  t.test('the bin starts with a shebang', async t => {
    t.match(readFileSync(CLI_MAIN, 'utf8'), /^#!\/usr\/bin\/env node\n/)
  })

  t.test('--version prints the package version', async t => {
    for (const args of [['--version'], ['-v'], ['help', '--version'], ['--help', '-v']]) {
      const res = await runCli(t, args)
      t.same({ code: res.code, stdout: res.stdout, stderr: res.stderr }, { code: 0, stdout: `${VERSION}\n`, stderr: '' }, args.join(' '))
    }
  })

  t.test('--help and help print the usage on stdout', async t => {
    for (const flag of ['--help', 'help', '-h']) {
      const res = await runCli(t, [flag])
      t.equal(res.code, 0, flag)
      t.match(res.stdout, /^usage: rendezvous <command>/)
      for (const command of ['serve', 'ids', 'agent']) t.match(res.stdout, new RegExp(`^  ${command} `, 'm'))
      t.equal(res.stderr, '')
    }
    const serve = await runCli(t, ['help', 'serve'])
    t.equal(serve.code, 0)
    t.match(serve.stdout, /^usage: rendezvous serve /)
  })

  t.test('without fastify (a peer dependency some installs leave out) every command but serve and demo works, and those say so in one line', async t => {
    const noFastify = ['--require', join(ROOT, 'test', 'fixtures', 'no-fastify.cjs'), CLI_MAIN]
    const version = await run(t, process.execPath, [...noFastify, '--version'])
    t.same([version.code, version.stdout.toString()], [0, `${VERSION}\n`])
    const agent = await run(t, process.execPath, [...noFastify, 'agent', '--help'])
    t.same([agent.code, agent.stdout.toString().split('\n')[0]], [0, 'usage: rendezvous agent --server URL --id ID --secret BASE32 --to URL'])
    for (const command of ['serve', 'demo']) {
      const res = await run(t, process.execPath, [...noFastify, command])
      t.equal(res.code, 1, command)
      t.equal(res.stderr.toString(), 'rendezvous: this command needs fastify, a peer dependency that was not installed: npm install fastify@5 next to fastify-rendezvous (npm 7 and later install it with the package)\n', `${command}: one line, no stack trace`)
    }
  })

  t.test('no command prints the usage on stderr and exits 2', async t => {
    const res = await runCli(t, [])
    t.equal(res.code, 2)
    t.match(res.stderr, /^usage: rendezvous <command>/)
    t.equal(res.stdout, '')
  })

  t.test('an unknown command prints the usage on stderr and exits 2', async t => {
    const res = await runCli(t, ['serv'])
    t.equal(res.code, 2)
    t.match(res.stderr, /^rendezvous: unknown command "serv"\n\nusage: rendezvous <command>/)
    t.equal(res.stdout, '')
  })

  t.test('help with an unknown command answers as that command would: the same message on stderr, exit 2', async t => {
    const direct = await runCli(t, ['bogus'])
    t.equal(direct.code, 2)
    for (const args of [['help', 'bogus'], ['--help', 'bogus'], ['-h', 'bogus'], ['help', 'constructor']]) {
      const res = await runCli(t, args)
      const topic = args[1]!
      t.same({ code: res.code, stdout: res.stdout, stderr: res.stderr }, { code: 2, stdout: '', stderr: direct.stderr.replace('"bogus"', JSON.stringify(topic)) }, args.join(' '))
      t.match(res.stderr, new RegExp(`^rendezvous: unknown command "${topic}"\n\nusage: rendezvous <command>`))
    }
    const again = await runCli(t, ['help', 'help'])
    t.equal(again.code, 0, 'help help is the general usage')
    t.match(again.stdout, /^usage: rendezvous <command>/)
  })

  t.test('ids and agent are dispatched', async t => {
    // Their own tests cover them; here only that main reaches them rather than calling them unknown.
    for (const command of ['ids', 'agent']) {
      const res = await runCli(t, [command, '--help'])
      t.notMatch(res.stderr, /unknown command/, command)
      t.notMatch(res.stderr, /\n\s+at /, `${command}: no stack trace`)
    }
  })
}
