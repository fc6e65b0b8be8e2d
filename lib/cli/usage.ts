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
                        [--tls-cert FILE --tls-key FILE | --no-tls]
                        [--wait-timeout SECONDS] [--metrics-path PATH | --no-metrics]
                        [--log-level LEVEL] [--splice-idle-timeout SECONDS]
                        [--max-connections-per-address N] [--max-spliced N]
                        [--handshake-timeout SECONDS]

Options:
  --host HOST              address to listen on (default 127.0.0.1)
  --port PORT              port to listen on; 0 picks a free one (default 8443)
  --data-dir DIR           where IDs and the generated certificate live (default .rendezvous)
  --tls-cert FILE          PEM certificate (chain) to serve; needs --tls-key
  --tls-key FILE           PEM private key of --tls-cert
  --no-tls                 serve plain HTTP, only behind a layer-4 TLS terminator
                           (see docs/security.md)
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
that it generates into DIR/tls on its first start, and prints its fingerprint.
GET /healthz answers 200 without credentials. SIGTERM or SIGINT closes gracefully.

Cluster mode (--redis URL, --cluster-secret, --peer-host, --peer-port,
--advertise) is not available in this version.
`
