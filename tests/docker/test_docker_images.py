"""docker/Dockerfile without a Docker engine: hadolint and Checkov find nothing, the structure holds (pinned
base, non-root, no installs in final stages, labels, HEALTHCHECK), and each image's entrypoint runs locally."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ml.serve.model import ServedModel
from ml.serve.settings import ServeSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
TOOLS = ROOT / ".tools" / "bin"
TARGETS = {"training": "train", "tuning": "tune", "backtesting": "backtest", "inference": "serve"}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_stages(text: str) -> dict[str, Stage]:
    """Stages by name, each with its (INSTRUCTION, arguments) after joining continuation lines."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest.strip(), flags=re.IGNORECASE)
            assert match, f"every stage is named: {line}"
            current = Stage(name=match.group(2), base=match.group(1))
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, rest.strip()))
    return stages


def chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and the stages it is built on, target first."""
    result = [stages[target]]
    while result[-1].base in stages:
        result.append(stages[result[-1].base])
    return result


def last(stages: list[Stage], keyword: str) -> str | None:
    for stage in stages:
        for found, argument in reversed(stage.instructions):
            if found == keyword:
                return argument
    return None


STAGES = parse_stages(DOCKERFILE.read_text())


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(TOOLS / "hadolint"), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout or "[]") == []


def test_checkov_dockerfile_checks_pass_and_any_skip_has_a_reason() -> None:
    result = subprocess.run(
        [
            str(TOOLS / "checkov"),
            "--framework",
            "dockerfile",
            "--skip-download",
            "--output",
            "json",
            "--file",
            str(DOCKERFILE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, [check["check_id"] for check in report["results"]["failed_checks"]]
    assert summary["passed"] > 20
    for skipped in report["results"]["skipped_checks"]:
        assert skipped.get("suppress_comment", "").strip(), f"{skipped['check_id']} is skipped without a reason"
    assert result.returncode == 0
    # hadolint pragmas carry no reason field, so a reason must be on the same comment line.
    for line in DOCKERFILE.read_text().splitlines():
        if "hadolint ignore=" in line:
            assert re.search(r"ignore=\S+\s+\S", line), f"hadolint ignore without a reason: {line}"


def test_every_registry_image_has_a_target() -> None:
    from infra.registry import IMAGES

    assert set(IMAGES) == set(TARGETS)
    assert set(TARGETS) <= set(STAGES)


def test_base_image_is_a_pinned_slim_python() -> None:
    bases = {stage.base for stage in STAGES.values() if stage.base not in STAGES}
    assert len(bases) == 1
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stages_run_as_non_root_without_build_steps(target: str) -> None:
    stages = chain(STAGES, target)
    user = last(stages, "USER")
    assert user is not None and user.split(":")[0] not in {"0", "root"}
    for stage in stages:
        for keyword, argument in stage.instructions:
            if keyword == "RUN":
                # Creating the user is the one command a final image runs; packages come from a builder.
                assert not re.search(r"pip install|apt-get|apk add|gcc|make", argument), (stage.name, argument)
            if keyword == "COPY" and "--from=" in argument:
                assert argument.startswith("--from=builder-"), argument
    labels = " ".join(argument for stage in stages for keyword, argument in stage.instructions if keyword == "LABEL")
    for key in ("source", "revision", "version", "title"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert "${REVISION}" in labels and "${VERSION}" in labels
    has_healthcheck = last(stages, "HEALTHCHECK") is not None
    assert has_healthcheck == (target == "inference")


def test_dockerignore_keeps_the_context_to_the_sources() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for stage in STAGES.values():
        for keyword, argument in stage.instructions:
            if keyword == "COPY" and "--from=" not in argument:
                copied.update(argument.split()[:-1])
    assert copied == allowed


def entrypoint_argv(target: str) -> list[str]:
    """ENTRYPOINT + CMD of a target, as a local command: the image's `rlops` script is this venv's."""
    stages = chain(STAGES, target)
    entrypoint = json.loads(last(stages, "ENTRYPOINT") or "[]")
    command = json.loads(last(stages, "CMD") or '["--help"]')
    assert entrypoint[0] == "rlops"
    return [str(Path(sys.executable).parent / "rlops"), *entrypoint[1:], *command]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_each_image_entrypoint_runs(target: str) -> None:
    argv = entrypoint_argv(target)
    assert argv[1] == TARGETS[target]
    result = subprocess.run(
        argv if "--help" in argv else [*argv, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Usage:" in result.stdout and f"rlops {TARGETS[target]}" in result.stdout


def test_the_inference_healthcheck_command_probes_a_running_server() -> None:
    from tests.serve.serve_helpers import serving

    healthcheck = json.loads(last(chain(STAGES, "inference"), "HEALTHCHECK").split("CMD", 1)[1])  # type: ignore[union-attr]
    assert healthcheck[0] == "python"
    argv = [sys.executable, *healthcheck[1:]]
    released = threading.Event()

    def loading_forever(settings: ServeSettings) -> ServedModel:
        # Liveness must not depend on the model: the check passes while it is still loading.
        released.wait(30)
        raise RuntimeError("test over")

    with serving(ROOT / "unused.pt", loader=loading_forever, wait=False) as server:
        env = {**os.environ, "RLOPS_SERVE_PORT": server.url.rsplit(":", 1)[1]}
        alive = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        released.set()
    assert alive.returncode == 0, alive.stderr
    dead = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert dead.returncode == 1
    assert "unhealthy: http://127.0.0.1:" in dead.stderr
    assert shlex.join(healthcheck) == "python -m ml.serve.healthcheck"
