"""An environment's overlay as data: the release it runs (image, model) and the gate a model must pass."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rlops_core.errors import RlopsError

OVERLAYS = Path("gitops/inference/overlays")
RELEASE_FILE = "release.yaml"
GATE_FILE = "gate.yaml"
# A full git SHA (what CI tags images with) or a release version.
_TAG = re.compile(r"^(?:[0-9a-f]{40}|v?\d+\.\d+\.\d+)$")
_MODEL = re.compile(r"^(?:s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+\.pt)$")


@dataclass(frozen=True)
class Release:
    image: str
    model: str

    @property
    def repository(self) -> str:
        return self.image.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.image.rsplit(":", 1)[1]


@dataclass(frozen=True)
class Gate:
    min_test_sharpe: float
    min_deflated_sharpe: float


def overlay_dir(repo: Path, env: str) -> Path:
    folder = repo / OVERLAYS / env
    if not (folder / RELEASE_FILE).is_file():
        known = sorted(p.parent.name for p in (repo / OVERLAYS).glob(f"*/{RELEASE_FILE}"))
        raise RlopsError(f"unknown environment {env!r}: no {OVERLAYS / env / RELEASE_FILE} (known: {', '.join(known)})")
    return folder


def check_tag(tag: str) -> str:
    if not _TAG.match(tag):
        raise RlopsError(f"--image {tag!r} is not an image tag CI publishes (a full 40-character git SHA or vX.Y.Z)")
    return tag


def check_model(model: str) -> str:
    if not _MODEL.match(model):
        raise RlopsError(f"--model {model!r} must be an s3:// URI of a checkpoint (.pt) the cluster can read")
    return model


def _mapping(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RlopsError(f"{where}: not valid YAML ({exc})".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise RlopsError(f"{where}: expected a mapping")
    return data


def parse_release(text: str, where: str) -> Release:
    """A release file's image and model, from its text (the working tree's, or a past commit's)."""
    data = _mapping(text, where).get("data")
    if not isinstance(data, dict) or not isinstance(data.get("image"), str) or not isinstance(data.get("model"), str):
        raise RlopsError(f"{where}: data.image and data.model must be strings")
    if ":" not in data["image"].rsplit("/", 1)[-1]:
        raise RlopsError(f"{where}: data.image {data['image']!r} has no tag")
    return Release(data["image"], data["model"])


def read_release(folder: Path) -> Release:
    path = folder / RELEASE_FILE
    return parse_release(path.read_text(encoding="utf-8"), str(path))


def render_release(env: str, release: Release) -> str:
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "inference-release", "namespace": "inference"},
        "data": {"image": release.image, "model": release.model},
    }
    intent = (
        f"# Written by `rlops deploy promote {env}`: the image and model this environment runs "
        "(edit through the command, so every change is one commit).\n"
    )
    return intent + yaml.safe_dump(document, sort_keys=False)


def read_gate(folder: Path) -> Gate:
    path = folder / GATE_FILE
    if not path.is_file():
        raise RlopsError(f"{path} is missing: the environment has no promotion gate")
    data = _mapping(path.read_text(encoding="utf-8"), str(path))
    unknown = sorted(set(data) - {"min_test_sharpe", "min_deflated_sharpe"})
    if unknown:
        raise RlopsError(f"{path}: unknown field {unknown[0]!r} (known: min_deflated_sharpe, min_test_sharpe)")
    values = {}
    for name in ("min_test_sharpe", "min_deflated_sharpe"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RlopsError(f"{path}: field {name!r} must be a number, got {value!r}")
        values[name] = float(value)
    return Gate(**values)
