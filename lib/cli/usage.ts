export const MAIN_USAGE = `usage: rendezvous <command> [options]

Commands:
  serve    run the rendezvous server
  ids      add, list and remove the IDs of hidden servers
  agent    connect a hidden server to a rendezvous server
  demo     run server, agent and a hidden web page in one process, to try it
  help     show this help

Run 'rendezvous <command> --help' for the options of a command,
'rendezvous --version' for the version.
`

export const SERVE_USAGE = `usage: rendezvous serve [--host 127.0.0.1] [--port 8443] [--data-dir .rendezvous]
                        [--tls-cert FILE --tls-key FILE | --no-tls | --tls-name NAME ...]
                        [--wait-timeout SECONDS] [--metrics-path PATH | --no-metrics]
                        [--log-level LEVEL] [--splice-idle-timeout SECONDS]
                        [--max-connections-per-address N] [--max-spliced N]
                        [--handshake-timeout SECONDS]
                        [--redis URL --cluster-secret SECRET [--peer-host HOST]
                         [--peer-port PORT] [--advertise HOST:PORT]]

Options:
  --host HOST              address to listen on (default 127.0.0.1)
  --port PORT              port to listen on; 0 picks a free one (default 8443)
  --data-dir DIR           where IDs and the generated certificate live (default .rendezvous)
  --tls-cert FILE          PEM certificate (chain) to serve; needs --tls-key
  --tls-key FILE           PEM private key of --tls-cert
  --no-tls                 serve plain HTTP, only behind a layer-4 TLS terminator
                           (see docs/security.md)
  --tls-name NAME          a DNS name or IP address the generated certificate must carry
                           (repeatable; localhost, 127.0.0.1, ::1 and --host are always in)
  --wait-timeout SECONDS   how long a mobile client waits for a hidden server (default 10)
  --metrics-path PATH      where Prometheus metrics are served (default /metrics)
  --no-metrics             serve no metrics
  --log-level LEVEL        fatal, error, warn, info, debug, trace or silent (default info)
  --splice-idle-timeout SECONDS
                           close relayed connections idle this long; 0 never does (default 0)
  --max-connections-per-address N
                           open connections per client address; 0 for no cap (default 256)
  --max-spliced N          relayed connection pairs at once; 0 for no cap (default 10000)
  --handshake-timeout SECONDS
                           time a new connection gets for its TLS handshake (default 10)

Without --tls-cert, --tls-key or --no-tls, serve uses a self-signed certificate
that it generates into DIR/tls on its first start, and again when the names it
must carry change; it prints its fingerprint. SIGHUP, or a change to the
--tls-cert or --tls-key files, reloads the certificate without a restart.
GET /healthz answers 200 without credentials. SIGTERM or SIGINT closes gracefully.

Cluster mode (docs/cluster.md):
  --redis URL              keep IDs, replay cache and failed-auth counters in Redis
                           (redis:// or rediss://), shared with the other nodes
  --cluster-secret SECRET  authenticates links between nodes, the same on every
                           node (or RENDEZVOUS_CLUSTER_SECRET), 16 characters or more
  --peer-host HOST         where the listener for other nodes binds (default 127.0.0.1)
  --peer-port PORT         its port; 0 picks a free one (default 0)
  --advertise HOST:PORT    where other nodes reach it (default --peer-host:the port)
`
