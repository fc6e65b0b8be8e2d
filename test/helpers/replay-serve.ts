import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCli, type Proc } from './cli'

interface Teardown { teardown: (fn: () => unknown) => void }

/** serve's banner line on plain HTTP, with its port. */
export const LISTENING = /listening on http:\/\/127\.0\.0\.1:(\d+)\//

/** A data dir not made yet (serve makes it), in a temporary root removed at teardown. */
export function newDataDir (t: Teardown, prefix: string): string {
  const root = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  return join(root, 'data')
}

// Every replay is a failed CONNECT: without a higher limit, the tenth in a minute would be answered 429.
export const replayServeArgs = (dataDir: string): string[] => ['serve', '--port', '0', '--no-tls', '--data-dir', dataDir, '--auth-failures-per-pair', '100']

/** serve on plain HTTP for tests that replay tokens across restarts, once it listens. */
export async function serveForReplay (t: Teardown, dataDir: string, more: string[] = []): Promise<{ proc: Proc, port: number }> {
  const proc = startCli(t, [...replayServeArgs(dataDir), ...more])
  const [, port] = await proc.waitFor(LISTENING, 30_000)
  return { proc, port: Number(port) }
}
