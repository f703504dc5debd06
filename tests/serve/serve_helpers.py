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
import torch
from prometheus_client.parser import text_string_to_metric_families

from ml.agents.checkpoint import load_checkpoint, save_checkpoint
from ml.serve.model import ServedModel, load_model
from ml.serve.server import Service, build_service
from ml.serve.settings import ServeSettings


@dataclass
class RunningServer:
    url: str
    service: Service
    metrics_url: str = ""
    """Where /metrics answers: the API's own URL unless the server has a metrics port."""

    def __post_init__(self) -> None:
        self.metrics_url = self.metrics_url or self.url

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.service.state.status == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.service.state.status == "ready", self.service.state.load_error


def metric(server: RunningServer, name: str, **labels: str) -> float:
    """One sample of the server's /metrics (0 when the series does not exist yet)."""
    text = httpx.get(f"{server.metrics_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


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
    metrics_sock = loopback_socket() if config.metrics_port is not None else None
    metrics_url = f"http://127.0.0.1:{metrics_sock.getsockname()[1]}" if metrics_sock else ""
    kwargs = {"sockets": [sock], "metrics_sockets": [metrics_sock] if metrics_sock else None}
    thread = threading.Thread(target=service.run, kwargs=kwargs, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not service.server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service.server.started, "uvicorn did not start"
        running = RunningServer(f"http://127.0.0.1:{port}", service, metrics_url)
        if wait:
            running.wait_ready()
        yield running
    finally:
        service.server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        if metrics_sock is not None:
            metrics_sock.close()
        assert not thread.is_alive(), "the server did not shut down"


def nan_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """A copy of checkpoint ``src`` whose floating-point weights are all NaN, written by the normal checkpoint
    code to ``dst``: it loads and serves, and every forward pass yields NaN (``non_finite_output``)."""
    checkpoint = load_checkpoint(src)
    checkpoint.model_state = {
        name: torch.full_like(tensor, float("nan")) if tensor.is_floating_point() else tensor
        for name, tensor in checkpoint.model_state.items()
    }
    return save_checkpoint(checkpoint, Path(dst))
