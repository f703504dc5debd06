"""`python -m ml.serve.healthcheck`: exit 0 when the local server answers /healthz (the image's HEALTHCHECK).

Standard library only, so the check costs milliseconds rather than an import of torch or FastAPI; the
port comes from RLOPS_SERVE_PORT like the server's own.
"""

from __future__ import annotations

import http.client
import os
import sys


def main() -> int:
    raw_port = os.environ.get("RLOPS_SERVE_PORT", "8080")
    target = f"http://127.0.0.1:{raw_port}/healthz"
    try:
        connection = http.client.HTTPConnection("127.0.0.1", int(raw_port), timeout=2)
        try:
            connection.request("GET", "/healthz")
            status = connection.getresponse().status
        finally:
            connection.close()
    except (OSError, ValueError, http.client.HTTPException) as exc:
        print(f"unhealthy: {target}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {target} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
