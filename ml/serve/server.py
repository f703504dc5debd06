"""Running the app under uvicorn: logging, the banner, the optional metrics port, graceful shutdown, and a load
failure turned into an RlopsError."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import logging
import socket
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ml.serve.app import Loader, ServiceState, create_app
from ml.serve.metrics_app import MetricsApp
from ml.serve.model import ModelInfo, load_model
from ml.serve.settings import ServeSettings
from rlops_core.errors import RlopsError

logger = logging.getLogger("rlops.serve")


class DropUvicornBanner(logging.Filter):
    """uvicorn announces "running on" as soon as it listens, before the checkpoint is accepted; the service
    prints its own banner once the model is loaded (``on_ready``), so a bad checkpoint never looks served."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Uvicorn running on")


class _MetricsServer(uvicorn.Server):
    """The metrics port's server: it leaves signals to the API server, which stops it after its own shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Service:
    """A uvicorn server, the optional metrics-port server, and the state of the app (readiness, load error)."""

    server: uvicorn.Server
    state: ServiceState
    metrics_server: uvicorn.Server | None = None

    async def serve(
        self, sockets: list[socket.socket] | None = None, metrics_sockets: list[socket.socket] | None = None
    ) -> None:
        if self.metrics_server is None:
            await self.server.serve(sockets)
            return
        metrics = asyncio.create_task(self.metrics_server.serve(metrics_sockets))
        try:
            await self.server.serve(sockets)
        finally:
            self.metrics_server.should_exit = True
            await metrics

    def run(
        self, sockets: list[socket.socket] | None = None, metrics_sockets: list[socket.socket] | None = None
    ) -> None:
        with asyncio.Runner(loop_factory=self.server.config.get_loop_factory()) as runner:
            runner.run(self.serve(sockets, metrics_sockets))


def log_config() -> dict[str, Any]:
    """uvicorn's logging setup with the service's own logger added (same format, same stream)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rlops"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["filters"] = {"no_uvicorn_banner": {"()": DropUvicornBanner}}
    config["handlers"]["default"]["filters"] = ["no_uvicorn_banner"]
    return config


def _address(server: uvicorn.Server, fallback_port: int) -> str:
    host = server.config.host
    port = fallback_port
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            port = sock.getsockname()[1]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def build_service(settings: ServeSettings, loader: Loader = load_model, **config: Any) -> Service:
    """A uvicorn server for ``settings`` that stops by itself (``should_exit``) when the model fails to load.

    Extra keyword arguments go to ``uvicorn.Config`` of both servers (tests pass ``log_config=None``).
    """
    servers: list[uvicorn.Server] = []

    def stop(_: str) -> None:
        for server in servers:
            server.should_exit = True

    def banner(info: ModelInfo) -> None:
        where = _address(servers[0], settings.port)
        scraped = where if len(servers) == 1 else _address(servers[1], settings.metrics_port or 0)
        auth = "bearer token required" if settings.auth_token is not None else "NO AUTHENTICATION"
        logger.info(
            "serving %s version %s from %s on %s (%s; metrics at %s)",
            info.name,
            info.version,
            settings.checkpoint,
            where,
            auth,
            f"{scraped}/metrics",
        )

    app = create_app(settings, loader=loader, on_load_failure=stop, on_ready=banner)
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
    service = Service(servers[0], app.state.service)
    if settings.metrics_port is not None:
        metrics_options = {**options, "port": settings.metrics_port, "lifespan": "off", "access_log": False}
        service.metrics_server = _MetricsServer(uvicorn.Config(MetricsApp(service.state.metrics), **metrics_options))
        servers.append(service.metrics_server)
    return service


def run(settings: ServeSettings, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGINT/SIGTERM (in-flight requests finish first); a load failure raises RlopsError.

    After a signal-initiated shutdown uvicorn re-raises the signal, so the process ends as killed by
    SIGTERM/SIGINT, which is what process supervisors expect.
    """
    import torch

    torch.set_num_threads(settings.torch_threads)
    service = build_service(settings)  # configures logging, so warnings come after it
    if settings.open_beyond_loopback:
        logger.warning(
            "--insecure-no-auth: %s:%s answers anyone who can reach it, with no token; never do this outside a "
            "local experiment",
            settings.host,
            settings.port,
        )
    # Everything imported so far lives as long as the process; moving it out of the collector's reach
    # keeps full collections (and the latency spikes they cause under load) short.
    gc.collect()
    gc.freeze()
    service.run(sockets=sockets)
    if service.state.load_error is not None:
        raise RlopsError(f"cannot serve: {service.state.load_error}")
    if not service.server.started:
        raise RlopsError(f"the server did not start on {settings.host}:{settings.port} (see the log above)")
