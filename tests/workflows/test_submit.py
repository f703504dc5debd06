"""`rlops workflows submit` and `status` against a recording HTTP server on loopback: the exact Workflow sent,
the run's name and Argo UI link, each step's phase, and one clear line for every way the server can fail."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from rlops_core.errors import RlopsError
from workflows import submit

RLOPS = [sys.executable, "-m", "rlops.cli"]
RUN = "rlops-research-x7k2p"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ArgoStandIn:
    """Answers every request with `status` and `answer`, after `delay_s`, and records what it was sent."""

    url: str = ""
    status: int = 200
    answer: dict[str, Any] = field(default_factory=dict)
    delay_s: float = 0.0
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
def argo() -> Iterator[ArgoStandIn]:
    stand_in = ArgoStandIn()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            stand_in.requests.append(
                Recorded(self.command, self.path, dict(self.headers), json.loads(raw) if raw else None)
            )
            time.sleep(stand_in.delay_s)
            payload = json.dumps(stand_in.answer).encode()
            self.send_response(stand_in.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output to the test's own

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield stand_in
    server.shutdown()
    server.server_close()


def rlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ARGO_")}
    return subprocess.run(
        [*RLOPS, *args], capture_output=True, text=True, timeout=120, env={**clean, "COLUMNS": "200", **(env or {})}
    )


def expected_workflow(parameters: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "generateName": "rlops-research-",
            "namespace": "argo",
            "labels": {
                "app.kubernetes.io/part-of": "rlops",
                "workflows.argoproj.io/workflow-template": "rlops-research",
            },
        },
        "spec": {"workflowTemplateRef": {"name": "rlops-research"}, "arguments": {"parameters": parameters}},
    }


PARAMS = ["--param", "dataset=s3://rlops-market-data/store", "--param", "algos=[ppo]", "-p", "smoke=true"]
SENT = [
    {"name": "dataset", "value": "s3://rlops-market-data/store"},
    {"name": "algos", "value": "[ppo]"},
    {"name": "smoke", "value": "true"},
]


def test_submit_sends_the_workflow_and_prints_the_run_and_its_ui_link(argo: ArgoStandIn) -> None:
    argo.answer = {"metadata": {"name": RUN, "namespace": "argo"}, "spec": {}}
    result = rlops("workflows", "submit", "rlops-research", *PARAMS, "--server", argo.url, "--token", "s3cret")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"submitted {RUN}", f"watch it: {argo.url}/workflows/argo/{RUN}"]
    (request,) = argo.requests
    assert (request.method, request.path) == ("POST", "/api/v1/workflows/argo")
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.body == {"namespace": "argo", "workflow": expected_workflow(SENT)}


def test_server_token_and_namespace_come_from_the_argo_cli_environment(argo: ArgoStandIn) -> None:
    argo.answer = {"metadata": {"name": "rlops-train-abcde"}, "spec": {}}
    env = {"ARGO_SERVER": argo.url, "ARGO_TOKEN": "Bearer from-env", "ARGO_NAMESPACE": "research"}
    result = rlops("workflows", "submit", "rlops-train", "-p", "algo=a3c", env=env)
    assert result.returncode == 0, result.stderr
    assert f"watch it: {argo.url}/workflows/research/rlops-train-abcde" in result.stdout
    (request,) = argo.requests
    assert request.path == "/api/v1/workflows/research" and request.headers["Authorization"] == "Bearer from-env"
    assert request.body["workflow"]["spec"]["arguments"]["parameters"] == [{"name": "algo", "value": "a3c"}]


def test_dry_run_prints_the_workflow_and_sends_nothing(argo: ArgoStandIn) -> None:
    result = rlops("workflows", "submit", "rlops-research", *PARAMS, "--dry-run", "--server", argo.url)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == expected_workflow(SENT)
    assert argo.requests == []


@pytest.mark.parametrize(
    ("status", "message", "line"),
    [
        (401, "token not valid", "the server refused the token (401 Unauthorized); set --token or ARGO_TOKEN"),
        (403, 'workflows.argoproj.io is forbidden: User "dev" cannot create', "may not do this in namespace argo"),
        (404, 'workflowtemplates.argoproj.io "rlops-research" not found', "not found in namespace argo (404)"),
        (409, 'workflows.argoproj.io "rlops-research-1" already exists', "already exists in namespace argo (409"),
    ],
)
def test_server_errors_are_one_clear_line(argo: ArgoStandIn, status: int, message: str, line: str) -> None:
    argo.status, argo.answer = status, {"code": 7, "message": message}
    result = rlops("workflows", "submit", "rlops-research", "--server", argo.url, "--token", "t")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: submit rlops-research: ")
    assert line in result.stderr and message in result.stderr


def test_unreachable_server_and_tls_mismatch_are_one_clear_line(argo: ArgoStandIn) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = rlops("workflows", "submit", "rlops-research", "--server", f"http://127.0.0.1:{closed}")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"error: submit rlops-research: cannot reach Argo server http://127.0.0.1:{closed} ("
    )
    assert "check --server or ARGO_SERVER" in result.stderr
    # An https:// URL for a server that speaks plain HTTP fails in the TLS handshake.
    https = argo.url.replace("http://", "https://")
    result = rlops("workflows", "submit", "rlops-research", "--server", https)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: submit rlops-research: TLS with Argo server {https} failed (")
    assert "check the URL's scheme" in result.stderr


def test_a_server_that_never_answers_times_out(argo: ArgoStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submit, "TIMEOUT_S", 0.3)
    argo.delay_s = 2.0
    server = submit.Server.resolve(argo.url, None, None)
    with pytest.raises(RlopsError, match=r"^status r: Argo server http://127.0.0.1:\d+ did not answer within 0 s$"):
        submit.run_status(server, "r")


def test_bad_parameters_and_missing_server_are_refused_before_sending(argo: ArgoStandIn) -> None:
    for args, line in [
        (["rlops-research", "-p", "sampels=2"], "error: --param sampels: rlops-research takes algos, dataset, "),
        (["rlops-research", "-p", "samples"], "error: --param 'samples': expected NAME=VALUE"),
        (["rlops-backtest"], "error: rlops-backtest needs --param for grid"),
        (["rlops-nightly"], "error: no workflow template 'rlops-nightly'; templates: rlops-research, rlops-train, "),
    ]:
        result = rlops("workflows", "submit", *args, "--server", argo.url)
        assert result.returncode == 1 and result.stderr.startswith(line), result.stderr
    result = rlops("workflows", "submit", "rlops-research")
    assert result.stderr == "error: no Argo server: pass --server https://HOST[:PORT] or set ARGO_SERVER\n"
    assert argo.requests == []


def test_status_shows_each_step_with_its_phase(argo: ArgoStandIn) -> None:
    def node(name: str, kind: str, phase: str, started: str | None, message: str = "") -> dict[str, Any]:
        found = {"id": f"{RUN}-{name}", "name": f"{RUN}.{name}", "displayName": name, "type": kind, "phase": phase}
        if started:
            found["startedAt"] = started
        return {**found, "message": message} if message else found

    nodes = [
        node(RUN, "DAG", "Running", "2026-12-01T02:30:00Z"),
        node("data", "Pod", "Succeeded", "2026-12-01T02:30:05Z"),
        node("tune", "Pod", "Running", "2026-12-01T02:34:00Z"),
        node("train", "Pod", "Pending", None),
        node("backtest", "Skipped", "Omitted", None, "omitted: depends condition not met"),
    ]
    argo.answer = {
        "metadata": {"name": RUN},
        "spec": {},
        "status": {"phase": "Running", "nodes": {n["id"]: n for n in nodes}},
    }
    result = rlops("workflows", "status", RUN, "--server", argo.url)
    assert result.returncode == 0, result.stderr
    (request,) = argo.requests
    assert (request.method, request.path.split("?")[0]) == ("GET", f"/api/v1/workflows/argo/{RUN}")
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["data", "tune", "backtest", "train"]
    assert [row.split("│")[2].strip() for row in rows] == ["Succeeded", "Running", "Omitted", "Pending"]
    assert f"{RUN}: Running" in result.stdout and f"Argo UI: {argo.url}/workflows/argo/{RUN}" in result.stdout
    argo.status, argo.answer = 404, {"code": 5, "message": f'workflows.argoproj.io "{RUN}" not found'}
    missing = rlops("workflows", "status", RUN, "--server", argo.url)
    assert missing.stderr.startswith(f"error: status {RUN}: not found in namespace argo (404): ")
    argo.status, argo.answer = 200, {"metadata": {"name": RUN}}
    garbled = rlops("workflows", "status", RUN, "--server", argo.url)
    assert garbled.returncode == 1 and garbled.stderr.count("\n") == 1
    assert "answered with something that is not a Workflow" in garbled.stderr
