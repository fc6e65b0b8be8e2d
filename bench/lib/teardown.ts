import { readFileSync, readdirSync } from 'node:fs'

/*
 * Stopping what the bench started so that nothing outlives it. A SIGKILL to
 * nginx's master leaves its workers running (and holding their ports), and
 * sshd leaves its per-connection child behind, so every stop asks the whole
 * tree to leave with SIGTERM first, waits a bounded time, then kills what
 * is left of it, descendants included.
 */

/** A process as /proc saw it: its start time tells it apart from a later process given the same pid. */
export interface Proc { pid: number, start: string }

/** A process's /proc/PID/stat, its fields counted from the state (after the command name, which may hold spaces); undefined when it is gone. */
export function procStat (pid: number): { state: string, start: string, fields: string[] } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { state: fields[0], start: fields[19], fields }
  } catch {
    return undefined
  }
}

/** The pids of a process's children, all threads' children included; empty when it is gone. */
export function childrenOf (pid: number): number[] {
  const out: number[] = []
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'latin1').split(' ')) if (child !== '') out.push(Number(child))
    }
  } catch {}
  return out
}

/** A process and all its descendants, parents first. */
export function processTree (pid: number): Proc[] {
  const out: Proc[] = []
  const visit = (p: number): void => {
    const s = procStat(p)
    if (s === undefined) return
    out.push({ pid: p, start: s.start })
    for (const child of childrenOf(p)) visit(child)
  }
  visit(pid)
  return out
}

/** Whether it still runs: gone, a zombie, or a new process under the same pid all count as not. */
export function alive (proc: Proc): boolean {
  const s = procStat(proc.pid)
  return s !== undefined && s.state !== 'Z' && s.start === proc.start
}

function signal (procs: Proc[], sig: NodeJS.Signals): void {
  for (const p of procs) {
    if (!alive(p)) continue
    try { process.kill(p.pid, sig) } catch {}
  }
}

const pause = (ms: number): void => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms) }

/**
 * Synchronous, for process 'exit' and signal handlers, where nothing async
 * runs any more: SIGTERM to every root, up to `graceMs` for them to leave,
 * then SIGKILL to whatever of their trees is still there.
 */
export function stopTreesNow (roots: number[], graceMs: number): void {
  const trees = roots.map(processTree)
  signal(trees.map(t => t[0]).filter(p => p !== undefined), 'SIGTERM')
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && trees.some(t => t.some(alive))) pause(20)
  signal(trees.flat(), 'SIGKILL')
  // A SIGKILL takes effect a moment later; returning earlier would race whoever checks next.
  while (Date.now() < deadline + 1000 && trees.some(t => t.slice(1).some(alive))) pause(10)
}

/**
 * The same for one child, without blocking: `exited` resolves when the root
 * has exited (and been reaped). Descendants are read before the SIGTERM,
 * as the root's exit hands them to init and out of sight.
 */
export async function stopTree (pid: number, exited: Promise<unknown>, graceMs: number): Promise<void> {
  const tree = processTree(pid)
  signal(tree.slice(0, 1), 'SIGTERM')
  let timer: NodeJS.Timeout | undefined
  await Promise.race([exited, new Promise(resolve => { timer = setTimeout(resolve, graceMs) })])
  clearTimeout(timer)
  signal(tree, 'SIGKILL')
  await exited
  // What the root left behind when it went (nginx workers of a killed master, sshd's session child).
  const rest = tree.slice(1)
  signal(rest, 'SIGKILL')
  const deadline = Date.now() + 1000
  while (Date.now() < deadline && rest.some(alive)) await new Promise(resolve => setTimeout(resolve, 10))
}
