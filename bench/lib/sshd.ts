import { execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { freePort, hasCommand, launch, stop, untilListening } from './procs'

const SSHD = ['/usr/sbin/sshd', '/usr/bin/sshd'].find(p => existsSync(p))

export interface SshTunnel { sshd: ChildProcess, ssh: ChildProcess, port: number }

export function sshMissing (): string | undefined {
  if (SSHD === undefined) return 'sshd is not installed (apt-get install openssh-server)'
  if (!hasCommand('ssh') || !hasCommand('ssh-keygen')) return 'ssh is not installed (apt-get install openssh-client)'
  return undefined
}

/**
 * A throwaway sshd on a loopback port, with throwaway keys in `dir`, and
 * `ssh -R` publishing the backend on one of its ports: the two-hop path
 * people use today to reach a server behind NAT.
 */
export async function startSshTunnel (dir: string, backendPort: number): Promise<SshTunnel> {
  const home = join(dir, 'ssh')
  mkdirSync(home, { recursive: true, mode: 0o700 })
  const hostKey = join(home, 'host_ed25519')
  const userKey = join(home, 'user_ed25519')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey])
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', userKey])
  copyFileSync(`${userKey}.pub`, join(home, 'authorized_keys'))
  chmodSync(join(home, 'authorized_keys'), 0o600)
  // Privilege separation wants this directory when sshd runs as root.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const [sshPort, port] = [await freePort(), await freePort()]
  const user = userInfo().username
  writeFileSync(join(home, 'sshd_config'), [
    `Port ${sshPort}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${join(home, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(home, 'authorized_keys')}`,
    `AllowUsers ${user}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'UsePAM no',
    'AllowTcpForwarding yes',
    'GatewayPorts no',
    'MaxStartups 100',
    ''
  ].join('\n'))
  const sshd = launch(SSHD as string, ['-D', '-e', '-f', join(home, 'sshd_config')], { stdout: 'ignore' })
  await untilListening(sshPort)
  const ssh = launch('ssh', [
    '-N', '-T', '-i', userKey, '-p', String(sshPort),
    '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR',
    '-R', `127.0.0.1:${port}:127.0.0.1:${backendPort}`,
    `${user}@127.0.0.1`
  ], { stdout: 'ignore' })
  try {
    await untilListening(port)
  } catch (err) {
    await stop(ssh)
    await stop(sshd)
    throw err
  }
  return { sshd, ssh, port }
}
