import t from 'tap'
import { selfCommand } from '../../lib/cli/invocation'

t.test('printed commands name the CLI the way it was run', async (t) => {
  t.equal(selfCommand('/home/me/clone/dist/cli/main.js', '/home/me/clone'), 'node dist/cli/main.js', 'a clone: npm start, or node dist/cli/main.js')
  t.equal(selfCommand('/home/me/app/node_modules/.bin/rendezvous', '/home/me/app'), 'npx rendezvous', 'installed in a project, run with npx')
  t.equal(selfCommand('/usr/local/bin/rendezvous', '/srv'), 'rendezvous', 'installed globally, on the PATH')
  t.equal(selfCommand('/opt/my clone/dist/cli/main.js', '/srv'), "node '/opt/my clone/dist/cli/main.js'", 'elsewhere: an absolute path, quoted')
})
