"""Fetching URLs from inside a container, for the testinfra modules."""

import json

FETCH = (
    "import json, sys, urllib.request; "
    "req = urllib.request.Request(sys.argv[1], method=sys.argv[2], headers=json.loads(sys.argv[3])); "
    "r = urllib.request.urlopen(req); "
    "print(json.dumps({'status': r.status, 'headers': dict(r.headers), 'body': r.read().decode('latin-1')}))"
)


def fetch(host, url, method="GET", headers=None):
    command = host.run("python3 -c %s %s %s %s", FETCH, url, method, json.dumps(headers or {}))
    assert command.rc == 0, command.stderr
    return json.loads(command.stdout)
