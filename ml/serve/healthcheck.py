"""`python -m ml.serve.healthcheck`: exit 0 when the local server answers /healthz (the image's HEALTHCHECK).

Standard library only, so the check costs milliseconds rather than an import of torch or FastAPI; the
port comes from RLOPS_SERVE_PORT like the server's own.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("RLOPS_SERVE_PORT", "8080")
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            healthy = response.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"unhealthy: {url} answered {response.status}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
