"""Run the fixture upstream in the foreground: `python -m upstream_fixture --root DIR --port 8700`."""

import argparse
import signal
import sys
import threading

from .build import standard_catalog
from .server import serve_upstream


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="directory for the generated files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    args = parser.parse_args()
    catalog = standard_catalog(args.root)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with serve_upstream(catalog, args.port, args.host) as running:
        print(f"upstream fixture serving {running.url}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


sys.exit(main())
