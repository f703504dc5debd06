"""The Pulumi project files, and the rule that importing the program or the pack creates nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from pulumi_harness import ROOT

from infra.config import CONFIG_NAMESPACE, ENVIRONMENTS

# Imports modules in a fresh interpreter under recording mocks, then lets pending registrations finish.
IMPORT_UNDER_MOCKS = """
import importlib, sys
import pulumi

class Recording(pulumi.runtime.Mocks):
    seen = []
    def new_resource(self, args):
        self.seen.append(args.typ)
        return args.name + "-id", {}
    def call(self, args):
        return {}, []

pulumi.runtime.set_mocks(Recording(), project="rlops", stack="dev", preview=False)
for name in sys.argv[1:]:
    importlib.import_module(name)
pulumi.runtime.test(lambda: None)()
print(f"imported {len(sys.argv) - 1}, registered {Recording.seen}")
"""


def import_under_mocks(modules: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", IMPORT_UNDER_MOCKS, *modules],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_project_runs_the_infra_package_with_python_in_the_repo_venv() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    # Stack config keys are namespaced by project name (rlops:owner), which the config class reads.
    assert project["name"] == CONFIG_NAMESPACE
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert (ROOT / project["main"] / "__main__.py").is_file()
    assert sorted(p.name for p in ROOT.glob("Pulumi.*.yaml")) == sorted(f"Pulumi.{s}.yaml" for s in ENVIRONMENTS)


def test_importing_every_module_creates_nothing_and_starts_nothing() -> None:
    # A resource created at import time would show up in the mocks; constructing the PolicyPack would start
    # a gRPC server and block until the timeout.
    modules = [f"infra.{p.stem}" for p in sorted((ROOT / "infra").glob("*.py")) if p.stem != "__main__"]
    modules += [
        f"policies.rlops_guard.{p.stem}"
        for p in sorted((ROOT / "policies" / "rlops_guard").glob("*.py"))
        if p.stem != "__main__"
    ]
    assert len(modules) >= 20
    result = import_under_mocks(modules, ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(modules)}, registered []"


def test_the_import_check_does_see_a_resource_created_at_import_time(tmp_path: Path) -> None:
    (tmp_path / "leaky_module.py").write_text("import pulumi_aws\n\npulumi_aws.s3.Bucket('leak')\n")
    result = import_under_mocks(["leaky_module"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported 1, registered ['aws:s3/bucket:Bucket']"
