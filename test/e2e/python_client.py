"""A mobile client in Python, for test/e2e/python.test.ts.

Usage: python3 python_client.py CONFIG_JSON

CONFIG_JSON: {"base": "https://127.0.0.1:PORT", "ca": "/path/cert.pem",
              "requests": [{"name": ..., "method": "GET"|"POST", "path": "/...",
                            "user": ID, "body_file": optional path,
                            "headers": optional {name: value}}]}

Each request is made with requests and HTTPDigestAuth(user, 'anything'),
verify=ca, on a fresh connection. Prints one JSON object on stdout:
{"results": [{"name", "status", "history": [statuses], "headers": {lower-case name: value},
              "length", "sha256", "text" (first 4 kB, for small answers)}]}
The Node test asserts on these. Exits 3 when requests cannot be imported.
"""

import hashlib
import json
import sys

try:
    import requests
    from requests.auth import HTTPDigestAuth
except ImportError as err:  # the Node side explains what to install
    sys.stderr.write('python_client: cannot import requests: %s\n' % err)
    sys.exit(3)


def main():
    config = json.loads(sys.argv[1])
    # The test talks to 127.0.0.1 only; a proxy from the environment must not get in the way.
    session_kwargs = {'verify': config['ca'], 'timeout': 30,
                      'proxies': {'http': None, 'https': None}}
    results = []
    for spec in config['requests']:
        body = None
        if spec.get('body_file'):
            with open(spec['body_file'], 'rb') as f:
                body = f.read()
        with requests.Session() as session:
            session.trust_env = False
            response = session.request(
                spec['method'], config['base'] + spec['path'],
                data=body, headers=spec.get('headers') or {},
                auth=HTTPDigestAuth(spec['user'], 'anything'),
                **session_kwargs)
            content = response.content
        results.append({
            'name': spec['name'],
            'status': response.status_code,
            'history': [r.status_code for r in response.history],
            'headers': {k.lower(): v for k, v in response.headers.items()},
            'length': len(content),
            'sha256': hashlib.sha256(content).hexdigest(),
            'text': content[:4096].decode('latin-1'),
        })
    json.dump({'results': results, 'requests_version': requests.__version__}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
