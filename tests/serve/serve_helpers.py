"""Real uvicorn servers on loopback in a thread, for the serve tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ml.serve.model import ServedModel, load_model
from ml.serve.server import Service, build_service
from ml.serve.settings import ServeSettings


@dataclass
class RunningServer:
    url: str
    service: Service

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.service.state.status == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.service.state.status == "ready", self.service.state.load_error


def loopback_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and without it every
    # response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(
    checkpoint: str | Path,
    loader: Callable[[ServeSettings], ServedModel] = load_model,
    wait: bool = True,
    **settings: Any,
) -> Iterator[RunningServer]:
    """A uvicorn server on a free loopback port, stopped (gracefully) on exit."""
    config = ServeSettings(checkpoint=str(checkpoint), **settings)
    service = build_service(config, loader=loader, log_config=None)
    sock = loopback_socket()
    port = sock.getsockname()[1]
    thread = threading.Thread(target=service.server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not service.server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.server.started, "uvicorn did not start"
        running = RunningServer(f"http://127.0.0.1:{port}", service)
        if wait:
            running.wait_ready()
        yield running
    finally:
        service.server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        assert not thread.is_alive(), "the server did not shut down"
