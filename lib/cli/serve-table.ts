import { resolveOptions } from '../options'
import { MAX_TOKEN_SKEW_S } from '../option-limits'
import { MAX_ROTATE_OVERLAP_S } from '../admin/options'
import { MAX_KEEPALIVE_MS, MIN_KEEPALIVE_MS } from '../keepalive-limit'
import { LOG_LEVELS, SERVE_MAX_CONNECTIONS } from '../server/serve-options'
import { option, type ConfigOf } from './config'
import { peerTlsName } from './peer-tls-args'
import { redactUrl } from './redact-url'
import { flag, hostPort, integer, oneOf, realm, redisUrl, seconds, text, tlsName, urlPath } from './values'

// The plugin's own defaults, so that the command line cannot drift from them. splice is
// named, so that RENDEZVOUS_SPLICE is read (and checked) with serve's other variables.
const PLUGIN = resolveOptions({ splice: 'auto' })
const inSeconds = (ms: number): string => String(ms / 1000)
const count = (max = 10_000_000, min = 0): (raw: string) => number => integer(min, max)
/** --redis, which `ids` reads too. A password in the URL is masked where a message shows it. */
export const REDIS_OPTION = option({ key: 'redis', value: 'URL', help: 'cluster mode: keep IDs, replay cache and failed-auth counters in Redis (redis:// or rediss://)', parse: redisUrl, show: redactUrl })

/**
 * Every option of `rendezvous serve`, one entry each: its flag is the
 * kebab-case of `key`, its variable RENDEZVOUS_ + SNAKE_CASE, its config
 * file key `key` itself. `to` passes the value to the plugin option of
 * that name. Durations are in seconds here and in ms in the plugin.
 */
export const SERVE_TABLE = [
  option({ key: 'help', short: 'h', help: 'show this help', parse: flag, flagOnly: true }),
  option({ key: 'config', value: 'FILE', help: 'read options from this JSON file', parse: text }),
  // [::1] as URLs write it: the socket APIs want the address bare.
  option({ key: 'host', value: 'HOST', default: '127.0.0.1', help: 'address to listen on', parse: raw => text(raw).replace(/^\[([0-9A-Fa-f:.]+)\]$/, '$1') }),
  option({ key: 'port', value: 'PORT', default: '8443', help: 'port to listen on; 0 picks a free one', parse: integer(0, 65535) }),
  option({ key: 'dataDir', value: 'DIR', default: '.rendezvous', help: 'where IDs, the generated certificate and the replay journal live', parse: text }),
  option({ key: 'tlsCert', value: 'FILE', help: 'PEM certificate (chain) to serve; needs --tls-key', parse: text }),
  option({ key: 'tlsKey', value: 'FILE', help: 'PEM private key of --tls-cert', parse: text }),
  option({ key: 'tlsName', value: 'NAME', multiple: true, help: 'a DNS name or IP address the generated certificate must carry (localhost, 127.0.0.1, ::1 and --host are always in)', parse: tlsName }),
  option({ key: 'noTls', help: 'serve plain HTTP, only behind a layer-4 TLS terminator (see docs/security.md)', parse: flag }),
  option({ key: 'waitTimeout', value: 'SECONDS', default: inSeconds(PLUGIN.waitTimeout), help: 'how long a mobile client waits for a hidden server', parse: seconds() }),
  option({ key: 'logLevel', value: 'LEVEL', default: 'info', help: LOG_LEVELS.join(', '), parse: oneOf(LOG_LEVELS) }),

  option({ key: 'healthPath', value: 'PATH', default: '/healthz', help: 'liveness route, answered without credentials', parse: urlPath, to: 'healthPath' }),
  option({ key: 'readyPath', value: 'PATH', default: '/readyz', help: 'readiness route: 200, or 503 with the reasons', parse: urlPath, to: 'readyPath' }),
  option({ key: 'metricsPath', value: 'PATH', default: '/metrics', help: 'where Prometheus metrics are served', parse: urlPath }),
  option({ key: 'metricsListen', value: 'HOST:PORT', help: 'serve metrics on this address instead of the public port', parse: hostPort }),
  option({ key: 'noMetrics', help: 'serve no metrics', parse: flag }),
  option({ key: 'metricsPerId', help: 'add per-ID series (label id): one series per ID', parse: flag, to: 'metricsPerId' }),

  option({ key: 'adminListen', value: 'HOST:PORT', help: 'serve the admin API and page on this address; needs --admin-token-file', parse: hostPort }),
  option({ key: 'adminTokenFile', value: 'FILE', help: 'file whose first line is the admin bearer token (16 characters or more)', parse: text }),
  option({ key: 'adminRotateOverlap', value: 'SECONDS', default: '600', help: 'how long a rotated-out secret stays accepted', parse: seconds({ zero: true, max: MAX_ROTATE_OVERLAP_S }) }),

  option({ key: 'maxParkedPerId', value: 'N', default: String(PLUGIN.maxParkedPerId), help: 'parked connections per ID', parse: count(10_000_000, 1), to: 'maxParkedPerId' }),
  option({ key: 'maxParked', value: 'N', default: String(PLUGIN.maxParked), help: 'parked connections in all', parse: count(10_000_000, 1), to: 'maxParked' }),
  option({ key: 'maxWaitersPerId', value: 'N', default: String(PLUGIN.maxWaitersPerId), help: 'mobile clients waiting per ID; 0: none waits, a client finding nothing parked gets 503 at once', parse: count(), to: 'maxWaitersPerId' }),
  option({ key: 'maxWaiters', value: 'N', default: String(PLUGIN.maxWaiters), help: 'mobile clients waiting in all; 0: none waits, a client finding nothing parked gets 503 at once', parse: count(), to: 'maxWaiters' }),
  option({ key: 'maxWaitersPerAddress', value: 'N', shownDefault: 'a quarter of --max-waiters-per-id', help: 'clients one address may have waiting for one ID while that ID\'s places run short; 0 for no share', parse: count(), to: 'maxWaitersPerAddress' }),
  option({ key: 'maxWaitBuffer', value: 'BYTES', default: String(PLUGIN.maxWaitBuffer), help: 'bytes read from a waiting mobile client (its body) before reading pauses', parse: count(1 << 30, 1), to: 'maxWaitBuffer' }),
  option({ key: 'maxPendingConnects', value: 'N', default: String(PLUGIN.maxPendingConnects), help: 'CONNECTs being authenticated at once', parse: count(10_000_000, 1), to: 'maxPendingConnects' }),
  option({ key: 'connectTimeout', value: 'SECONDS', default: inSeconds(PLUGIN.connectTimeout), help: 'time a CONNECT may take to authenticate', parse: seconds(), to: 'connectTimeout' }),
  option({ key: 'keepAliveInitialDelay', value: 'SECONDS', default: inSeconds(PLUGIN.keepAliveInitialDelay), help: 'TCP keep-alive delay on parked connections', parse: seconds({ zero: true, min: MIN_KEEPALIVE_MS / 1000, max: MAX_KEEPALIVE_MS / 1000, maxWhy: 'the most the kernel takes' }), to: 'keepAliveInitialDelay' }),
  option({ key: 'spliceIdleTimeout', value: 'SECONDS', default: inSeconds(PLUGIN.spliceIdleTimeout), help: 'close relayed connections idle this long; 0 never does', parse: seconds({ zero: true }), to: 'spliceIdleTimeout' }),
  option({ key: 'lingerTimeout', value: 'SECONDS', default: inSeconds(PLUGIN.lingerTimeout), help: 'how long a connection closed with an answer still reads what its peer sends; 0 closes at once', parse: seconds({ zero: true }), to: 'lingerTimeout' }),
  option({ key: 'splice', value: 'auto|native|js', default: 'auto', help: 'data path of relayed pairs: auto (native splice(2) for plain TCP where built), native (fail if not built) or js', parse: oneOf(['auto', 'native', 'js']), to: 'splice' }),
  option({ key: 'closeGracePeriod', value: 'SECONDS', default: '5', help: 'on shutdown, how long spliced pairs get to finish', parse: seconds({ zero: true, max: 3600 }), to: 'closeGracePeriod' }),
  option({ key: 'maxConnectionsPerAddress', value: 'N', default: String(PLUGIN.maxConnectionsPerAddress), help: 'open connections per client address; 0 for no cap', parse: count(), to: 'maxConnectionsPerAddress' }),
  option({ key: 'maxConnections', value: 'N', default: String(SERVE_MAX_CONNECTIONS), help: 'open connections in all, other than hidden servers\' accepted ones; by default at most half the open-file limit; 0 for no cap', parse: count(), to: 'maxConnections' }),
  option({ key: 'ipv6Subnet', value: 'BITS', default: String(PLUGIN.ipv6Subnet), help: 'IPv6 clients count against per-address limits by this prefix; 128 for each address apart', parse: integer(1, 128), to: 'ipv6Subnet' }),
  option({ key: 'maxSpliced', value: 'N', default: String(PLUGIN.maxSpliced), help: 'relayed connection pairs at once; 0 for no cap', parse: count(), to: 'maxSpliced' }),
  option({ key: 'maxSplicedPerId', value: 'N', shownDefault: 'a quarter of --max-spliced', help: 'one ID\'s share of --max-spliced: past it, its clients get 503 while fewer than N pairs would be left; 0 for no share', parse: count(), to: 'maxSplicedPerId' }),
  option({ key: 'handshakeTimeout', value: 'SECONDS', default: inSeconds(PLUGIN.handshakeTimeout), help: 'time a new connection gets for its TLS handshake; 0 keeps Node\'s own (120)', parse: seconds({ zero: true }), to: 'handshakeTimeout' }),
  option({ key: 'retryAfter', value: 'SECONDS', default: String(PLUGIN.retryAfter), help: 'Retry-After on 503 answers (a 429 carries what is left of its cool-off)', parse: integer(0, 86_400), to: 'retryAfter' }),
  option({ key: 'tokenSkew', value: 'SECONDS', default: String(PLUGIN.tokenSkew), help: 'allowed clock difference of v1 tokens', parse: integer(0, MAX_TOKEN_SKEW_S), to: 'tokenSkew' }),
  option({ key: 'totp', value: 'MODE', default: PLUGIN.totp, help: 'TOTP tokens: strict (each code once), reuse (as the original) or off', parse: oneOf(['strict', 'reuse', 'off']), to: 'totp' }),
  option({ key: 'replayCacheSize', value: 'N', default: String(PLUGIN.replayCacheSize), help: 'entries of the replay cache', parse: count(10_000_000, 1), to: 'replayCacheSize' }),
  option({ key: 'replayCachePerId', value: 'N', shownDefault: 'a quarter of --replay-cache-size', help: 'one ID\'s share of the replay cache: past it, its CONNECTs get 503 while fewer than N entries would be left; 0 for no share', parse: count(), to: 'replayCachePerId' }),
  option({ key: 'authFailuresPerPair', value: 'N', default: String(PLUGIN.authFailures.perPair), help: 'failed CONNECTs per (address, ID) before a cool-off; 0 counts none', parse: count(), to: 'authFailures.perPair' }),
  option({ key: 'authFailuresPerAddress', value: 'N', default: String(PLUGIN.authFailures.perAddress), help: 'failed CONNECTs per address, all IDs, before a cool-off; 0 counts none', parse: count(), to: 'authFailures.perAddress' }),
  option({ key: 'authFailuresPerIdTotp', value: 'N', default: String(PLUGIN.authFailures.perIdTotp), help: 'failed TOTP codes per ID, all addresses, before TOTP is cooled off for that ID (v1 tokens are not); 0 counts none', parse: count(), to: 'authFailures.perIdTotp' }),
  option({ key: 'authFailuresWindow', value: 'SECONDS', default: inSeconds(PLUGIN.authFailures.window), help: 'how long a failed CONNECT counts', parse: seconds(), to: 'authFailures.window' }),
  option({ key: 'authFailuresCoolOff', value: 'SECONDS', default: inSeconds(PLUGIN.authFailures.coolOff), help: 'how long a tripped counter refuses', parse: seconds(), to: 'authFailures.coolOff' }),
  option({ key: 'authFailuresRoomWait', value: 'SECONDS', default: inSeconds(PLUGIN.authFailures.roomWait ?? 0), help: 'how long a CONNECT waits for room while others from its address or for its ID are judged, before 429; 0 answers 429 at once', parse: seconds({ zero: true }), to: 'authFailures.roomWait' }),
  option({ key: 'unknownIdFailures', value: 'N', default: String(PLUGIN.unknownIdFailures.perAddress), help: 'answers for unknown IDs per address before a cool-off (429, for known IDs too); 0 for no limit', parse: count(), to: 'unknownIdFailures.perAddress' }),
  option({ key: 'unknownIdFailuresWindow', value: 'SECONDS', default: inSeconds(PLUGIN.unknownIdFailures.window), help: 'how long an unknown-ID answer counts', parse: seconds(), to: 'unknownIdFailures.window' }),
  option({ key: 'unknownIdFailuresCoolOff', value: 'SECONDS', default: inSeconds(PLUGIN.unknownIdFailures.coolOff), help: 'how long a tripped address gets 429', parse: seconds(), to: 'unknownIdFailures.coolOff' }),
  option({ key: 'realm', value: 'REALM', default: PLUGIN.realm, help: 'the Digest realm of the challenge', parse: realm, to: 'realm' }),

  REDIS_OPTION,
  option({ key: 'clusterSecret', value: 'SECRET', help: 'cluster mode: authenticates links between nodes, the same on every node, 16 characters or more', parse: text, secret: true }),
  option({ key: 'peerHost', value: 'HOST', shownDefault: '127.0.0.1', help: 'cluster mode: where the listener for other nodes binds', parse: text }),
  option({ key: 'peerPort', value: 'PORT', shownDefault: '0', help: 'cluster mode: its port; 0 picks a free one', parse: integer(0, 65535) }),
  option({ key: 'advertise', value: 'HOST:PORT', help: 'cluster mode: where other nodes reach it (default --peer-host:the port)', parse: text }),
  option({ key: 'peerTlsCert', value: 'FILE', help: 'cluster mode: mutual TLS on the peer link: PEM certificate (chain) of this node, served and presented when dialling; needs --peer-tls-key and --peer-ca', parse: text }),
  option({ key: 'peerTlsKey', value: 'FILE', help: 'cluster mode: PEM private key of --peer-tls-cert', parse: text }),
  option({ key: 'peerCa', value: 'FILE', help: 'cluster mode: PEM CA certificate(s) that sign every node\'s --peer-tls-cert', parse: text }),
  option({ key: 'peerTlsName', value: 'NAME', help: 'cluster mode: the DNS name every node\'s peer certificate carries (default: verify the host of its --advertise)', parse: peerTlsName })
] as const

export type ServeConfig = ConfigOf<typeof SERVE_TABLE>
