import { optionsHelp } from './config'
import { SERVE_TABLE } from './serve-table'

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
                        [--wait-timeout SECONDS] [--config FILE] [OPTION ...]
                        [--redis URL --cluster-secret SECRET [--peer-host HOST]
                         [--peer-port PORT] [--advertise HOST:PORT]
                         [--peer-tls-cert FILE --peer-tls-key FILE --peer-ca FILE
                          [--peer-tls-name NAME]]]

Every option can also be set by its environment variable (shown) or, in the
JSON file of --config, by its name in camelCase (--wait-timeout: "waitTimeout").
A flag wins over the variable, the variable over the file, the file over the
default. Durations are in seconds.

Options:
${optionsHelp(SERVE_TABLE)}
Without --tls-cert, --tls-key or --no-tls, serve uses a self-signed certificate
that it generates into DIR/tls on its first start, and again when the names it
must carry change; it prints its fingerprint. SIGHUP, or a change to the
--tls-cert or --tls-key files, reloads the certificate without a restart, and
in cluster mode --peer-tls-cert, --peer-tls-key and --peer-ca likewise, for the
peer links opened after it.
GET /healthz and GET /readyz answer without credentials. SIGTERM or SIGINT
closes gracefully. The admin API and page (--admin-listen) and everything
else an operator needs are described in docs/operations.md.

Cluster mode (--redis and the options after it) is described in docs/cluster.md;
without --peer-tls-cert, --peer-tls-key and --peer-ca the link between nodes is
plain TCP, for a private network only.
`
