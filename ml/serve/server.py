"""Running the app under uvicorn: logging, graceful shutdown, and a load failure turned into an RlopsError."""

from __future__ import annotations

import copy
import gc
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ml.serve.app import Loader, ServiceState, create_app
from ml.serve.model import load_model
from ml.serve.settings import ServeSettings
from rlops.errors import RlopsError


@dataclass
class Service:
    """A uvicorn server and the state of the app it runs (readiness, load error)."""

    server: uvicorn.Server
    state: ServiceState


def log_config() -> dict[str, Any]:
    """uvicorn's logging setup with the service's own logger added (same format, same stream)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rlops"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def build_service(settings: ServeSettings, loader: Loader = load_model, **config: Any) -> Service:
    """A uvicorn server for ``settings`` that stops by itself (``should_exit``) when the model fails to load.

    Extra keyword arguments go to ``uvicorn.Config`` (tests pass ``log_config=None``).
    """
    servers: list[uvicorn.Server] = []

    def stop(_: str) -> None:
        for server in servers:
            server.should_exit = True

    app = create_app(settings, loader=loader, on_load_failure=stop)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        # After SIGTERM uvicorn stops accepting, then waits this long for in-flight requests before cancelling.
        "timeout_graceful_shutdown": settings.graceful_timeout_s,
        "server_header": False,
        "log_config": log_config(),
        "lifespan": "on",
    }
    options.update(config)
    servers.append(uvicorn.Server(uvicorn.Config(app, **options)))
    return Service(servers[0], app.state.service)


def run(settings: ServeSettings, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGINT/SIGTERM (in-flight requests finish first); a load failure raises RlopsError.

    After a signal-initiated shutdown uvicorn re-raises the signal, so the process ends as killed by
    SIGTERM/SIGINT, which is what process supervisors expect.
    """
    import torch

    torch.set_num_threads(settings.torch_threads)
    service = build_service(settings)
    # Everything imported so far lives as long as the process; moving it out of the collector's reach
    # keeps full collections (and the latency spikes they cause under load) short.
    gc.collect()
    gc.freeze()
    service.server.run(sockets=sockets)
    if service.state.load_error is not None:
        raise RlopsError(f"cannot serve: {service.state.load_error}")
    if not service.server.started:
        raise RlopsError(f"the server did not start on {settings.host}:{settings.port} (see the log above)")
