import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, hasCommand, launch, untilListening } from './procs'

const MODULES = ['/usr/lib/nginx/modules/ngx_stream_module.so', '/usr/share/nginx/modules/ngx_stream_module.so']

export interface Nginx { child: ChildProcess, port: number, tlsPort: number }

/** Why nginx stream cannot run here, or undefined when it can. */
export function nginxMissing (): string | undefined {
  if (!hasCommand('nginx') && !existsSync('/usr/sbin/nginx')) return 'nginx is not installed (apt-get install nginx-light libnginx-mod-stream)'
  if (streamModule() === undefined) return 'the nginx stream module is missing (apt-get install libnginx-mod-stream)'
  return undefined
}

function streamModule (): string | undefined {
  return MODULES.find(m => existsSync(m))
}

/**
 * nginx `stream { proxy_pass }` in front of the backend, plain and with TLS
 * on both sides (`listen ssl` + `proxy_ssl on`), with the protocol version,
 * cipher and key exchange the relay negotiates (TLS 1.3, AES-256-GCM,
 * X25519). One worker: the relay is one Node process, so both get one
 * core's worth of event loop.
 */
export async function startNginx (dir: string, backend: { port: number, tlsPort: number }, tls: { cert: string, key: string }): Promise<Nginx> {
  const prefix = join(dir, 'nginx')
  mkdirSync(prefix, { recursive: true })
  const [port, tlsPort] = [await freePort(), await freePort()]
  const module = streamModule() as string
  const conf = `
load_module ${module};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 16384; }
stream {
  server {
    listen 127.0.0.1:${port} backlog=4096;
    proxy_pass 127.0.0.1:${backend.port};
  }
  server {
    listen 127.0.0.1:${tlsPort} ssl backlog=4096;
    ssl_certificate ${tls.cert};
    ssl_certificate_key ${tls.key};
    # Before 1.23.4 nginx leaves TLS 1.3 off on both sides; Node negotiates it, so this is like for like.
    ssl_protocols TLSv1.2 TLSv1.3;
    proxy_pass 127.0.0.1:${backend.tlsPort};
    proxy_ssl on;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;
    proxy_ssl_session_reuse on;
  }
}
`
  writeFileSync(join(prefix, 'nginx.conf'), conf)
  const child = launch(hasCommand('nginx') ? 'nginx' : '/usr/sbin/nginx', ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-e', join(prefix, 'error.log')], { stdout: 'ignore' })
  await untilListening(port)
  await untilListening(tlsPort)
  return { child, port, tlsPort }
}
