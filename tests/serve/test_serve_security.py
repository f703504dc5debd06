"""Secure by default: no token beyond loopback is refused at start, the explicit escape hatch warns, /metrics on
its own port, and the banner only once the checkpoint is accepted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ml.serve.settings import is_loopback, load_settings
from rlops_core.errors import RlopsError

from .conftest import Checkpoints
from .serve_helpers import serving

RLOPS = [sys.executable, "-m", "rlops.cli"]
EVERYWHERE = "0.0.0.0"  # noqa: S104  # the address these tests expect to be refused


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.9", True), ("::1", True),
                                                ("localhost", True), (EVERYWHERE, False), ("::", False),
                                                ("10.0.0.5", False), ("example.com", False)])  # fmt: skip
def test_loopback_is_told_apart(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_non_loopback_without_a_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        RlopsError, match=r"refusing to listen on 0\.0\.0\.0 without a token: set RLOPS_SERVE_AUTH_TOKEN"
    ):
        load_settings(checkpoint="m.pt", host=EVERYWHERE)
    monkeypatch.setenv("RLOPS_SERVE_HOST", "::")
    with pytest.raises(RlopsError, match="--insecure-no-auth"):
        load_settings(checkpoint="m.pt")
    monkeypatch.setenv("RLOPS_SERVE_AUTH_TOKEN", "a-long-enough-token")
    assert load_settings(checkpoint="m.pt").host == "::"
    monkeypatch.setenv("RLOPS_SERVE_AUTH_TOKEN", "short")
    with pytest.raises(RlopsError, match="auth_token: use at least 8 characters"):
        load_settings(checkpoint="m.pt")
    monkeypatch.delenv("RLOPS_SERVE_AUTH_TOKEN")
    monkeypatch.setenv("RLOPS_SERVE_INSECURE_NO_AUTH", "1")
    settings = load_settings(checkpoint="m.pt")
    assert settings.insecure_no_auth and settings.open_beyond_loopback
    with pytest.raises(RlopsError, match="metrics_port: 8080 is already the API's port"):
        load_settings(checkpoint="m.pt", metrics_port=8080)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RLOPS_SERVE_")}
    return subprocess.run(
        [*RLOPS, "serve", *args], capture_output=True, text=True, timeout=timeout, env={**environment, **(env or {})}
    )


def test_cli_refuses_to_start_open_and_prints_no_banner(checkpoints: Checkpoints) -> None:
    result = run_cli("--checkpoint", str(checkpoints.discrete), "--host", EVERYWHERE, "--port", "0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid serve settings: refusing to listen on 0.0.0.0")
    assert "Uvicorn running" not in result.stderr + result.stdout and "serving" not in result.stderr


def test_cli_with_a_bad_checkpoint_never_announces_itself(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    result = run_cli("--checkpoint", str(garbage), "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: cannot serve: checkpoint {garbage} is corrupt")
    assert "Uvicorn running" not in result.stderr and "serving" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_insecure_flag_starts_with_a_warning_then_a_banner(checkpoints: Checkpoints) -> None:
    # Binds 0.0.0.0 for a moment (port 0: any free port); the model loads, the banner prints, SIGTERM ends it.
    command = [*RLOPS, "serve", "--checkpoint", str(checkpoints.discrete), "--host", EVERYWHERE, "--port", "0",
               "--insecure-no-auth"]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RLOPS_SERVE_")}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    output = ""
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output += line
            if "serving ppo-CartPole-v1 version" in line:
                break
        process.terminate()
        output += process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    warning = output.index("--insecure-no-auth: 0.0.0.0:0 answers anyone")
    banner = output.index("serving ppo-CartPole-v1 version")
    assert warning < banner and "NO AUTHENTICATION" in output[banner:]
    assert "Uvicorn running" not in output and "Traceback" not in output


def test_metrics_move_to_their_own_port(checkpoints: Checkpoints) -> None:
    with serving(checkpoints.discrete, metrics_port=0, auth_token="metrics-test-token") as server:
        headers = {"Authorization": "Bearer metrics-test-token"}
        with server.client(headers=headers) as client:
            assert client.post("/v1/act", json={"observations": [[0.0] * 4]}).status_code == 200
            moved = client.get("/metrics")
            assert moved.status_code == 404 and moved.json()["error"] == "not_found"
            assert "/metrics" not in client.get("/openapi.json").json()["paths"]
        assert server.metrics_url != server.url
        with httpx.Client(base_url=server.metrics_url) as scraper:
            text = scraper.get("/metrics")
            assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
            assert 'rlops_serve_requests_total{method="POST",route="/v1/act",status="200"} 1.0' in text.text
            assert "rlops_serve_nonfinite_outputs_total 0.0" in text.text
            elsewhere = scraper.get("/v1/model")
            assert elsewhere.status_code == 404 and "serves /metrics only" in elsewhere.json()["message"]
            assert scraper.post("/metrics").status_code == 405
    with pytest.raises(httpx.ConnectError):  # both ports close on shutdown
        httpx.get(f"{server.metrics_url}/metrics")
