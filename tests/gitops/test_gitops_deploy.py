"""`rlops deploy promote | rollback | status` on a real temporary git repository holding the real overlays,
with the model's pipeline outputs on moto's S3 server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ml.pipeline.stages import STAGES, write_stage
from rlops.deploy.actions import promote, rollback, status
from rlops_core import memory
from rlops_core.errors import RlopsError
from tests.gitops.gitops_build import GITOPS, build, one

SHA_1 = "1" * 40
SHA_2 = "2" * 40
STAGE = {stage.name: stage for stage in STAGES}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(GITOPS, root / "gitops")
    (root / "memory_bank").mkdir()
    git(tmp_path, "init", "-q", "--initial-branch=main", str(root))
    git(root, "config", "user.name", "Release Manager")
    git(root, "config", "user.email", "releases@example.invalid")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "seed")
    return root


def release_file(repo: Path, env: str) -> Path:
    return repo / "gitops" / "inference" / "overlays" / env / "release.yaml"


def commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "HEAD"))


def pipeline_run(bucket: str, sharpe: float, deflated: float) -> str:
    """What the pipeline's train and backtest stages leave behind for one run (their own stage-file writer)."""
    run = f"{bucket}/runs/pipeline"
    model = f"{run}/train/ppo/checkpoints/final.pt"
    write_stage(f"{run}/train", STAGE["train"], "sha256:t", {}, {"ppo": {"checkpoint": model, "steps": 100}})
    leaderboard = [
        {"rank": 1, "policy": "ppo", "status": "ok", "sharpe": sharpe, "error": None},
        {"rank": 2, "policy": "buy_and_hold", "status": "ok", "sharpe": 0.4, "error": None},
    ]
    result = {"leaderboard": leaderboard, "deflated_sharpe": deflated, "trials": 5}
    write_stage(f"{run}/backtest", STAGE["backtest"], "sha256:b", {}, result)
    return model


def test_promote_an_image_is_one_commit_and_idempotent(repo: Path) -> None:
    before = commits(repo)
    outcome = promote(repo, "staging", SHA_1)
    assert outcome.commit is not None and commits(repo) == before + 1
    assert outcome.release.image.endswith(f"/rlops/inference:{SHA_1}")
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "gitops/inference/overlays/staging/release.yaml"
    ]
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith(f"deploy(staging): image {SHA_1}, model s3://")
    assert "asked by Release Manager" in message and "Rlops-Promoted: staging" in message
    rollout = one(build(repo / "gitops" / "inference" / "overlays" / "staging"), "Rollout")
    assert rollout["spec"]["template"]["spec"]["containers"][0]["image"] == outcome.release.image

    again = promote(repo, "staging", SHA_1)
    assert again.commit is None and commits(repo) == before + 1
    shown = status(repo, "staging")
    assert shown.release == outcome.release
    assert shown.commit is not None and shown.commit.sha == outcome.commit


@pytest.mark.parametrize(
    ("env", "tag", "message"),
    [
        ("staging", "latest", "is not an image tag CI publishes"),
        ("staging", "abc123", "is not an image tag CI publishes"),
        ("qa", SHA_1, "unknown environment 'qa'"),
    ],
)
def test_bad_tags_and_environments_are_refused_without_a_commit(repo: Path, env: str, tag: str, message: str) -> None:
    before = commits(repo)
    with pytest.raises(RlopsError, match=message):
        promote(repo, env, tag)
    assert commits(repo) == before


def test_a_model_that_passes_the_gate_is_promoted_with_its_evidence(
    repo: Path, s3_bucket_factory: Callable[[str], str]
) -> None:
    model = pipeline_run(s3_bucket_factory("models"), sharpe=0.8, deflated=0.95)
    outcome = promote(repo, "prod", SHA_1, model=model)
    assert outcome.release.model == model
    assert "Backtest: test Sharpe 0.800, deflated Sharpe 0.950" in git(repo, "log", "-1", "--format=%B")
    rollout = one(build(repo / "gitops" / "inference" / "overlays" / "prod"), "Rollout")
    env = {e["name"]: e.get("value") for e in rollout["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RLOPS_SERVE_CHECKPOINT"] == model


def test_a_model_below_the_gate_is_refused_unless_overridden_and_recorded(
    repo: Path, s3_bucket_factory: Callable[[str], str]
) -> None:
    model = pipeline_run(s3_bucket_factory("models"), sharpe=0.3, deflated=0.5)
    before = commits(repo)
    with pytest.raises(RlopsError, match=r"does not pass prod's gate \(test Sharpe 0.300 < 0.5; deflated Sharpe"):
        promote(repo, "prod", SHA_1, model=model)
    assert commits(repo) == before
    assert git(repo, "status", "--porcelain") == ""

    bank = repo / "memory_bank"
    promote(repo, "prod", SHA_1, model=model, override="desk asked for it; paper trading only", bank=bank)
    assert commits(repo) == before + 1
    assert "Override: desk asked for it" in git(repo, "log", "-1", "--format=%B")
    (entry,) = memory.read_entries(bank, memory.EntryKind.DECISION)
    assert entry.title == "Promotion gate overridden for prod"
    assert "test Sharpe 0.300 < 0.5" in entry.body and "desk asked for it" in entry.body


def test_a_model_without_its_backtest_is_refused(repo: Path, s3_bucket_factory: Callable[[str], str]) -> None:
    bucket = s3_bucket_factory("models")
    with pytest.raises(RlopsError, match=r"no backtest next to s3://models/elsewhere/final\.pt"):
        promote(repo, "staging", SHA_1, model=f"{bucket}/elsewhere/final.pt")
    with pytest.raises(RlopsError, match="must be an s3:// URI"):
        promote(repo, "staging", SHA_1, model="runs/local.pt")


def test_rollback_restores_the_previous_overlay_byte_for_byte(repo: Path) -> None:
    original = release_file(repo, "staging").read_bytes()
    promote(repo, "staging", SHA_1)
    after_first = release_file(repo, "staging").read_bytes()
    promote(repo, "staging", SHA_2)

    first = rollback(repo, "staging")
    assert release_file(repo, "staging").read_bytes() == after_first
    assert first.release.tag == SHA_1
    assert "Rlops-Reverts: " in git(repo, "log", "-1", "--format=%B")
    rollback(repo, "staging")
    assert release_file(repo, "staging").read_bytes() == original
    with pytest.raises(RlopsError, match="staging has no promotion left to roll back"):
        rollback(repo, "staging")
    assert git(repo, "status", "--porcelain") == ""


def test_the_cli_reports_one_line_and_a_non_zero_exit(repo: Path) -> None:
    rlops = [str(Path(sys.executable).with_name("rlops")), "deploy"]
    done = subprocess.run([*rlops, "promote", "staging", "--image", "nope"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: --image 'nope' is not an image tag CI publishes (a full 40-character git SHA or vX.Y.Z)"
    ]
    ok = subprocess.run([*rlops, "promote", "staging", "--image", SHA_1], cwd=repo, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    shown = subprocess.run([*rlops, "status", "staging"], cwd=repo, capture_output=True, text=True)
    assert f"inference:{SHA_1}" in shown.stdout and "by Release Manager" in shown.stdout


def test_prod_takes_only_an_image_tag_that_staging_ran(repo: Path) -> None:
    with pytest.raises(RlopsError, match=f"staging never ran image tag {SHA_1}"):
        promote(repo, "prod", SHA_1, ran_in="staging")
    promote(repo, "staging", SHA_1)
    promote(repo, "staging", SHA_2)
    outcome = promote(repo, "prod", SHA_1, ran_in="staging")  # an earlier staging release counts too
    assert outcome.release.tag == SHA_1
