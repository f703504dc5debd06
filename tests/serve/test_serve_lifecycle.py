"""Start-up, readiness, graceful shutdown and load failures; loading from S3; the `rlops serve` command."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from ml.agents.policy import load_policy
from ml.data import storage
from ml.serve.model import Inference, ModelInfo, ServedModel, load_model
from ml.serve.settings import ServeSettings, load_settings
from rlops_core.errors import RlopsError

from .conftest import Checkpoints
from .serve_helpers import loopback_socket, serving


class GatedModel:
    """The real model, except that each forward pass waits for ``gate`` (and announces itself first)."""

    def __init__(self, inner: ServedModel) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def infer(self, obs: np.ndarray) -> Inference:
        self.entered.set()
        assert self.gate.wait(30)
        return self.inner.infer(obs)


def test_readiness_waits_for_the_model_and_liveness_does_not(checkpoints: Checkpoints) -> None:
    release = threading.Event()

    def slow_loader(settings: ServeSettings) -> ServedModel:
        assert release.wait(30)
        return load_model(settings)

    with serving(checkpoints.discrete, loader=slow_loader, wait=False) as server, server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "model_version": None}
        for path in ("/readyz", "/v1/model"):
            response = client.get(path)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"] == "not_ready"
            assert "still loading from" in response.json()["message"]
        assert client.post("/v1/act", json={"observations": [[0.0] * 4]}).status_code == 503
        assert "rlops_serve_ready 0.0" in client.get("/metrics").text
        release.set()
        server.wait_ready()
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready" and len(ready.json()["model_version"]) == 12
        assert client.post("/v1/act", json={"observations": [[0.0] * 4]}).status_code == 200
        assert "rlops_serve_ready 1.0" in client.get("/metrics").text
        url = server.url
    assert server.service.state.status == "stopping"
    assert "shutting down" in server.service.state.not_ready_reason()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")


def test_shutdown_finishes_in_flight_requests(checkpoints: Checkpoints) -> None:
    gated: list[GatedModel] = []

    def gated_loader(settings: ServeSettings) -> ServedModel:
        gated.append(GatedModel(load_model(settings)))
        return gated[0]

    obs = [[0.05, -0.1, 0.02, 0.3]]
    expected = load_policy(checkpoints.discrete).act(np.asarray(obs, dtype=np.float32)).tolist()
    with serving(checkpoints.discrete, loader=gated_loader) as server, ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(httpx.post, f"{server.url}/v1/act", json={"observations": obs}, timeout=30)
        assert gated[0].entered.wait(10)
        server.service.server.should_exit = True  # what SIGTERM does
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{server.url}/healthz", timeout=1)
            except httpx.TransportError:
                break  # no longer accepting new connections
            time.sleep(0.05)
        else:
            pytest.fail("the server kept accepting connections after shutdown began")
        assert not in_flight.done()
        gated[0].gate.set()
        response = in_flight.result(timeout=30)
    assert response.status_code == 200
    assert response.json()["actions"] == expected


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (None, "does not exist"),
        (b"\x00not a checkpoint", "is corrupt or not an rlops checkpoint"),
        (b"", "is corrupt or not an rlops checkpoint"),
    ],
    ids=["missing", "garbage", "empty"],
)
def test_a_bad_checkpoint_fails_start_up_with_a_clear_message(
    tmp_path: Path, content: bytes | None, phrase: str
) -> None:
    path = tmp_path / "model.pt"
    if content is not None:
        path.write_bytes(content)
    with serving(path, wait=False) as server:
        deadline = time.monotonic() + 30
        while server.service.state.status == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        state = server.service.state
        assert state.status == "failed"
        assert state.load_error is not None and phrase in state.load_error and str(path) in state.load_error
        assert server.service.server.should_exit  # the server stops itself rather than idling unready
        assert "failed to load" in state.not_ready_reason()


def test_an_unexpected_loader_error_is_reported_not_raised(tmp_path: Path) -> None:
    def broken(settings: ServeSettings) -> ServedModel:
        raise MemoryError("simulated")

    with serving(tmp_path / "any.pt", loader=broken, wait=False) as server:
        deadline = time.monotonic() + 30
        while server.service.state.status == "loading" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.service.state.load_error == "MemoryError: simulated"


@pytest.fixture
def s3_bucket(s3_bucket_factory: Callable[[str], str]) -> str:
    """moto's S3 server on loopback (the shared fixture of tests/conftest.py) with a "models" bucket."""
    return s3_bucket_factory("models").removeprefix("s3://")


def test_serves_a_checkpoint_from_s3(checkpoints: Checkpoints, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/ppo/cartpole.pt"
    storage.write_bytes(url, checkpoints.discrete.read_bytes())
    obs = np.random.default_rng(3).normal(size=(8, 4)).astype(np.float32)
    with serving(url) as server, server.client() as client:
        info = client.get("/v1/model").json()
        response = client.post("/v1/act", json={"observations": obs.tolist()})
    assert info["checkpoint"] == url
    assert info["checkpoint_sha256"] == hashlib.sha256(checkpoints.discrete.read_bytes()).hexdigest()
    assert response.json()["actions"] == load_policy(checkpoints.discrete).act(obs).tolist()


def test_s3_load_errors_name_the_object(s3_bucket: str) -> None:
    with pytest.raises(RlopsError, match=f"checkpoint s3://{s3_bucket}/none.pt: no such object"):
        load_model(ServeSettings(checkpoint=f"s3://{s3_bucket}/none.pt"))
    storage.write_bytes(f"s3://{s3_bucket}/bad.pt", b"garbage")
    with pytest.raises(RlopsError) as error:
        load_model(ServeSettings(checkpoint=f"s3://{s3_bucket}/bad.pt"))
    assert str(error.value).startswith(f"checkpoint s3://{s3_bucket}/bad.pt is corrupt")
    assert "rlops-serve-" not in str(error.value)  # never the temporary download path


def test_settings_come_from_the_environment_and_explicit_values_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLOPS_SERVE_CHECKPOINT", "s3://bucket/from-env.pt")
    monkeypatch.setenv("RLOPS_SERVE_PORT", "9000")
    monkeypatch.setenv("RLOPS_SERVE_MAX_WAIT_MS", "2.5")
    monkeypatch.setenv("RLOPS_SERVE_AUTH_TOKEN", "hunter2-token")
    settings = load_settings(checkpoint=None, host=None, port=9100)
    assert settings.checkpoint == "s3://bucket/from-env.pt"
    assert settings.port == 9100 and settings.host == "127.0.0.1"
    assert settings.max_wait_ms == 2.5
    assert settings.auth_token is not None and settings.auth_token.get_secret_value() == "hunter2-token"
    assert "hunter2" not in repr(settings)
    monkeypatch.setenv("RLOPS_SERVE_MAX_BATCH", "0")
    with pytest.raises(RlopsError, match=r"RLOPS_SERVE_MAX_BATCH \(max_batch\): Input should be greater than"):
        load_settings()
    monkeypatch.delenv("RLOPS_SERVE_MAX_BATCH")
    monkeypatch.delenv("RLOPS_SERVE_CHECKPOINT")
    with pytest.raises(RlopsError, match=r"RLOPS_SERVE_CHECKPOINT \(checkpoint\): Field required"):
        load_settings()


RLOPS = [sys.executable, "-m", "rlops.cli"]


def test_cli_reports_a_missing_checkpoint_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    result = subprocess.run(
        [*RLOPS, "serve", "--checkpoint", str(missing), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RLOPS_SERVE_LOG_LEVEL": "warning"},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: cannot serve: checkpoint {missing} does not exist"
    assert "Traceback" not in result.stderr


def test_cli_serves_until_sigterm_and_exits_cleanly(checkpoints: Checkpoints) -> None:
    with loopback_socket() as sock:
        port = sock.getsockname()[1]  # free now; released for the server to bind
    env = {**os.environ, "RLOPS_SERVE_AUTH_TOKEN": "cli-token", "RLOPS_SERVE_MAX_WAIT_MS": "0"}
    command = [*RLOPS, "serve", "--checkpoint", str(checkpoints.continuous), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                time.sleep(0.1)
            response = client.post(
                "/v1/act", json={"observations": [[0.1, 0.2, 0.3]]}, headers={"Authorization": "Bearer cli-token"}
            )
            assert response.status_code == 200
            assert len(response.json()["actions"][0]) == 1
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn re-raises the signal after its graceful shutdown: the exit reads as "terminated by SIGTERM".
    assert process.returncode == -signal.SIGTERM, output
    assert "serving ppo-Pendulum-v1 version" in output
    assert "Shutting down" in output and "Finished server process" in output
    assert "Traceback" not in output
