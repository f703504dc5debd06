"""The one way this project starts a local Ray session in its own process (tuning, and batches on Ray)."""

from __future__ import annotations

import os
from typing import Any


def init_local(num_cpus: int | None, include_dashboard: bool) -> Any:
    """A single-node session on this machine. Its auth mode is off: token auth would make the local dashboard
    answer 401 to the browser of the person running it, and Ray fixes a process's auth mode at its first session,
    so every local session this process starts must use the same one, or a later one rejects its own driver."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    return ray.init(num_cpus=num_cpus, include_dashboard=include_dashboard, log_to_driver=False)
