"""The canary is judged by real metrics: the real service on loopback (a trained smoke checkpoint, a NaN copy of
it, and the same model slowed past the bound), a real Prometheus scraping them with the labels the
ServiceMonitor gives, and every metric of the AnalysisTemplate evaluated exactly as the overlay renders it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml

from ml.serve.model import Inference, ModelInfo, ServedModel, load_model
from ml.serve.settings import ServeSettings
from tests.gitops.argo_conditions import Phase, UnsupportedConditionError, evaluate, judge
from tests.gitops.gitops_build import INFERENCE, ROOT, build, one
from tests.serve.serve_helpers import nan_checkpoint, serving

SCRAPE_SECONDS = 1
TRAFFIC_SECONDS = 12


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SlowModel:
    """The real model, each forward pass delayed past staging's p99 bound (a model that got slower)."""

    def __init__(self, inner: ServedModel, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def infer(self, obs: np.ndarray) -> Inference:
        time.sleep(self.delay_s)
        return self.inner.infer(obs)


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    rlops = ROOT / ".venv" / "bin" / "rlops"
    done = subprocess.run(
        [str(rlops), "train", "--algo", "ppo", "--smoke", "--runs-dir", str(runs), "--name", "smoke", "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (checkpoint,) = sorted((runs / "smoke" / "checkpoints").glob("*.pt"))[-1:]
    return checkpoint


class Prometheus:
    def __init__(self, folder: Path, targets: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
            "scrape_configs": [
                {
                    "job_name": f"inference-{name}",
                    # What the ServiceMonitor's podTargetLabels and the namespace give each canary pod.
                    "static_configs": [
                        {
                            "targets": [address],
                            "labels": {"namespace": "inference", "rollouts_pod_template_hash": name},
                        }
                    ],
                }
                for name, address in targets.items()
            ],
        }
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (folder / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=self.log,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"prometheus did not become ready: {(folder / 'prometheus.log').read_text()[-2000:]}")

    def query(self, promql: str) -> list[float]:
        """The instant vector's values, as Argo Rollouts hands them to a condition (`result`)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert answer["status"] == "success", answer
        data = answer["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        return [float(sample["value"][1]) for sample in data["result"]]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def _drive(url: str, observation: list[float], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set():
            client.post("/v1/act", json={"observations": [observation]})
            time.sleep(0.05)


def _substitute(text: str, args: dict[str, str]) -> str:
    for name, value in args.items():
        text = text.replace(f"{{{{args.{name}}}}}", value)
    assert "{{" not in text, text
    return text


def analyse(template: dict[str, Any], prometheus: Prometheus, canary: str) -> dict[str, Phase]:
    """Each metric's phase for one canary, with the template's own args (as the Rollout passes them)."""
    args = {a["name"]: a.get("value", "") for a in template["spec"]["args"]}
    args.update({"canary-hash": canary, "prometheus": prometheus.url})
    phases = {}
    for metric in template["spec"]["metrics"]:
        result = prometheus.query(_substitute(metric["provider"]["prometheus"]["query"], args))
        success = _substitute(metric["successCondition"], args)
        failure = _substitute(metric["failureCondition"], args)
        phases[metric["name"]] = judge(success, failure, result)
    return phases


def overall(phases: dict[str, Phase]) -> Phase:
    if Phase.FAILED in phases.values():
        return Phase.FAILED
    return Phase.INCONCLUSIVE if Phase.INCONCLUSIVE in phases.values() else Phase.SUCCESSFUL


@pytest.fixture(scope="module")
def judged(smoke_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Phase]]]:
    assert shutil.which("prometheus"), "make setup installs Debian's prometheus"
    folder = tmp_path_factory.mktemp("prometheus")
    broken = nan_checkpoint(smoke_checkpoint, folder / "nan.pt")

    def slow(settings: ServeSettings) -> ServedModel:
        return SlowModel(load_model(settings), delay_s=0.4)

    template = one(build(INFERENCE / "overlays" / "staging"), "AnalysisTemplate")
    with (
        serving(smoke_checkpoint, metrics_port=0) as good,
        serving(broken, metrics_port=0) as nonfinite,
        serving(smoke_checkpoint, loader=slow, metrics_port=0) as slowed,
        serving(smoke_checkpoint, metrics_port=0) as idle,
    ):
        servers = {"good": good, "nonfinite": nonfinite, "slow": slowed, "idle": idle}
        targets = {name: s.metrics_url.removeprefix("http://") for name, s in servers.items()}
        prometheus = Prometheus(folder, targets)
        try:
            (obs_dim,) = httpx.get(f"{good.url}/v1/model").json()["observation_space"]["shape"]
            observation = [0.01] * obs_dim
            stop = threading.Event()
            drivers = [
                threading.Thread(target=_drive, args=(servers[name].url, observation, stop), daemon=True)
                for name in ("good", "nonfinite", "slow")
            ]
            for driver in drivers:
                driver.start()
            time.sleep(TRAFFIC_SECONDS)
            stop.set()
            for driver in drivers:
                driver.join(timeout=60)
            time.sleep(3 * SCRAPE_SECONDS)
            yield {name: analyse(template, prometheus, name) for name in servers}
        finally:
            prometheus.stop()


@pytest.mark.slow
def test_a_good_model_passes_every_metric(judged: dict[str, dict[str, Phase]]) -> None:
    assert judged["good"] == {
        "success-rate": Phase.SUCCESSFUL,
        "p99-latency": Phase.SUCCESSFUL,
        "model-health": Phase.SUCCESSFUL,
    }


@pytest.mark.slow
def test_a_model_with_non_finite_outputs_fails_on_5xx_and_model_health(judged: dict[str, dict[str, Phase]]) -> None:
    phases = judged["nonfinite"]
    assert phases["success-rate"] is Phase.FAILED
    assert phases["model-health"] is Phase.FAILED
    assert overall(phases) is Phase.FAILED


@pytest.mark.slow
def test_a_model_slowed_past_the_bound_fails_on_latency(judged: dict[str, dict[str, Phase]]) -> None:
    phases = judged["slow"]
    assert phases["p99-latency"] is Phase.FAILED
    assert phases["success-rate"] is Phase.SUCCESSFUL
    assert overall(phases) is Phase.FAILED


@pytest.mark.slow
def test_no_traffic_is_inconclusive_so_the_rollout_pauses(judged: dict[str, dict[str, Phase]]) -> None:
    # The documented choice (docs/gitops.md): no requests means nothing was judged, never a pass.
    phases = judged["idle"]
    assert phases["success-rate"] is Phase.INCONCLUSIVE
    assert phases["p99-latency"] is Phase.INCONCLUSIVE
    assert phases["model-health"] is Phase.SUCCESSFUL
    assert overall(phases) is Phase.INCONCLUSIVE


def test_conditions_are_read_in_argos_documented_forms_only() -> None:
    assert evaluate("len(result) == 0 || result[0] >= 0.99", []) is True
    assert evaluate("len(result) > 0 && result[0] >= 0.99", [float("nan")]) is False
    assert evaluate("isNaN(result[0])", [float("nan")]) is True
    assert judge("len(result) > 0 && result[0] < 1", "len(result) > 0 && result[0] >= 1", [0.0]) is Phase.SUCCESSFUL
    for unsupported in ("result[0] >= 0.99 and true", "len(result) > 0 && result[0] >= 1 || true", "result >= 1"):
        with pytest.raises(UnsupportedConditionError):
            evaluate(unsupported, [1.0])


def test_every_rendered_condition_is_in_a_supported_form() -> None:
    for overlay in ("dev", "staging", "prod"):
        template = one(build(INFERENCE / "overlays" / overlay), "AnalysisTemplate")
        args = {a["name"]: a.get("value", "") for a in template["spec"]["args"]}
        args["canary-hash"] = "x"
        for metric in template["spec"]["metrics"]:
            for key in ("successCondition", "failureCondition"):
                for result in ([], [0.5], [float("nan")]):
                    evaluate(_substitute(metric[key], args), result)  # raises on an unsupported form
