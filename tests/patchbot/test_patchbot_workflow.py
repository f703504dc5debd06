"""The bot's workflow: scheduled and dispatchable, one run at a time, least privilege, actions pinned by SHA."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "security-bot.yml"
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+\.\d+\.\d+\s*$")


def load() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def test_triggers_and_concurrency() -> None:
    data = load()
    # PyYAML reads the bare key `on` as the boolean True.
    triggers = data[True]
    assert triggers["schedule"][0]["cron"]
    assert "workflow_dispatch" in triggers
    assert data["concurrency"]["group"] == "security-bot-${{ github.repository }}"
    assert data["concurrency"]["cancel-in-progress"] is False


def test_least_privilege() -> None:
    data = load()
    assert data["permissions"] == {}
    for job in data["jobs"].values():
        assert job["permissions"] == {"contents": "read"}
        checkout = job["steps"][0]
        assert checkout["with"]["persist-credentials"] is False


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version() -> None:
    lines = [line for line in WORKFLOW.read_text().splitlines() if re.match(r"^\s*(-\s*)?uses:", line)]
    assert len(lines) == 4
    for line in lines:
        assert PINNED.match(line), line


def test_the_bot_runs_dry_unless_the_repository_opts_in() -> None:
    (job,) = load()["jobs"].values()
    (run_step,) = [step for step in job["steps"] if step.get("name") == "Run patchbot"]
    assert run_step["env"]["APPLY"] == "${{ vars.PATCHBOT_APPLY }}"
    assert 'if [ "$APPLY" = "true" ]; then args+=(--apply); fi' in run_step["run"]
    assert "secrets.GITHUB_TOKEN" not in WORKFLOW.read_text()


def test_the_key_reaches_the_bot_as_a_file_and_the_update_runs_in_a_namespace() -> None:
    (job,) = load()["jobs"].values()
    (run_step,) = [step for step in job["steps"] if step.get("name") == "Run patchbot"]
    assert "PATCHBOT_APP_PRIVATE_KEY" not in run_step["env"]
    assert run_step["env"]["PATCHBOT_APP_PRIVATE_KEY_FILE"] == "${{ runner.temp }}/patchbot-app-key.pem"
    assert "--isolation namespace" in run_step["run"]
    (cache,) = [step for step in job["steps"] if str(step.get("uses", "")).startswith("actions/cache@")]
    assert cache["with"]["path"] == ".rlops/patchbot/pip-cache"


def test_this_repository_policy_parses_and_installs_its_own_pins() -> None:
    from patchbot.policy import parse_policy

    root = WORKFLOW.parents[2]
    policy = parse_policy((root / ".github" / "patchbot.yml").read_text(), ".github/patchbot.yml")
    assert policy.install == ("-c constraints.txt -e .[all]",)
    assert policy.required_checks == ("*",)
    assert policy.allow_missing_tools == frozenset()
    tiers = [word for word in policy.test_command.split() if word.startswith("tests/")]
    assert tiers and all((root / tier).is_dir() for tier in tiers)
    assert '-m "not slow"' in policy.test_command
