"""Provenance guards: in-sample backtests refused unless allowed (then labelled everywhere), another dataset warned
about, and a checkpoint backtested on its own dataset when none is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.backtest.batch import Grid, run_batch
from ml.backtest.engine import BacktestConfig, backtest
from ml.backtest.provenance import Provenance, check_provenance
from ml.backtest.result import BacktestResult
from rlops_core.errors import RlopsError
from tests.core.test_cli import rlops

TRAINED = Provenance("d", "sha256:aa", ("2001-01-02T00:00:00+00:00", "2010-12-31T00:00:00+00:00"))


def judge(start: str, end: str, fingerprint: str = "sha256:aa", allow: bool = False) -> tuple[bool, tuple[str, ...]]:
    verdict = check_provenance("p", TRAINED, "test", f"{start}T00:00:00+00:00", f"{end}T00:00:00+00:00",
                               fingerprint, allow)  # fmt: skip
    return verdict.in_sample, verdict.warnings


def test_overlap_is_refused_by_dates_and_allowed_only_when_asked() -> None:
    assert judge("2011-01-03", "2012-12-31") == (False, ())  # the day after the last training bar: out of sample
    assert judge("1999-01-04", "2001-01-01") == (False, ())  # ends the day before training started
    for start, end in (("2010-12-31", "2012-01-03"), ("1999-01-04", "2001-01-02"), ("2003-01-02", "2004-01-02")):
        with pytest.raises(RlopsError, match=r"trained on 2001-01-02 \.\. 2010-12-31, which overlaps the test period"):
            judge(start, end)
    in_sample, warnings = judge("2010-06-01", "2012-01-03", allow=True)
    assert in_sample and warnings[0].startswith("in-sample: policy 'p' was trained on 2001-01-02 .. 2010-12-31")


def test_another_dataset_and_a_missing_record_are_warnings() -> None:
    _, warnings = judge("2011-01-03", "2012-12-31", fingerprint="sha256:bb")
    assert warnings == (
        "policy 'p' was trained on dataset 'd' (data+features fingerprint sha256:aa), not the data backtested here "
        "(sha256:bb)",
    )
    unknown = check_provenance("p", Provenance(), "test", "2011-01-03", "2012-12-31", "sha256:bb", False)
    assert not unknown.in_sample
    assert "records no training period" in unknown.warnings[0] and "no dataset fingerprint" in unknown.warnings[1]
    assert check_provenance("baseline", None, "train", "2000", "2001", "sha256:bb", False).warnings == ()


@pytest.fixture(scope="module")
def nasdaq_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) PPO run on nasdaq's train split."""
    from ml.agents.train import build_request, run_training

    runs = tmp_path_factory.mktemp("runs")
    request = build_request("ppo", dataset="nasdaq", smoke=True, runs_dir=runs, name="smoke", show_progress=False)
    result = run_training(request)
    assert result.checkpoint is not None
    return Path(result.checkpoint)


def test_a_checkpoint_defaults_to_its_own_dataset_and_is_warned_on_another(nasdaq_checkpoint: Path) -> None:
    own = backtest(str(nasdaq_checkpoint), config=BacktestConfig(bootstrap_samples=50))
    assert own.dataset == "nasdaq" and own.warnings == () and own.in_sample is False
    assert own.training_period is not None and own.training_period[1] < own.period_start
    other = backtest(str(nasdaq_checkpoint), "sp500", BacktestConfig(bootstrap_samples=50))
    assert len(other.warnings) == 1 and "trained on dataset 'nasdaq'" in other.warnings[0]
    assert backtest("baseline:flat", config=BacktestConfig(bootstrap_samples=50)).dataset == "sp500"


def test_in_sample_is_refused_then_labelled_in_the_result(nasdaq_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(RlopsError, match=r"overlaps the train period.*pass --allow-in-sample"):
        backtest(str(nasdaq_checkpoint), config=BacktestConfig(period="train"))
    result = backtest(str(nasdaq_checkpoint), config=BacktestConfig(period="train", allow_in_sample=True,
                                                                     bootstrap_samples=50))  # fmt: skip
    assert result.in_sample is True and result.warnings[0].startswith("in-sample:")
    result.save(str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["in_sample"] is True and saved["warnings"] == list(result.warnings)
    assert BacktestResult.load(str(tmp_path / "run")).in_sample is True


@pytest.mark.slow
def test_a_batch_refuses_in_sample_cells_unless_the_grid_allows_them(nasdaq_checkpoint: Path) -> None:
    grid = Grid(policies=[str(nasdaq_checkpoint)], datasets=["nasdaq"], periods=["train", "test"], bootstrap_samples=50)
    board = run_batch(grid).leaderboard.set_index("period")
    assert board.loc["train", "status"] == "failed" and "--allow-in-sample" in str(board.loc["train", "error"])
    assert board.loc["test", "status"] == "ok" and not board.loc["test", "in_sample"]
    allowed = run_batch(Grid(**{**grid.__dict__, "allow_in_sample": True})).leaderboard.set_index("period")
    assert (allowed["status"] == "ok").all()
    assert bool(allowed.loc["train", "in_sample"]) and not bool(allowed.loc["test", "in_sample"])


def test_cells_run_one_by_one_keep_the_label_through_the_merge(nasdaq_checkpoint: Path, tmp_path: Path) -> None:
    from ml.backtest.batch import merge_cells, run_one_cell

    grid = Grid(policies=[str(nasdaq_checkpoint)], datasets=["sp500"], periods=["train"], bootstrap_samples=20,
                allow_in_sample=True)  # fmt: skip
    outcome = run_one_cell(grid, 0, str(tmp_path))
    assert outcome.status == "ok" and outcome.in_sample
    row = merge_cells(grid, str(tmp_path)).leaderboard.iloc[0]
    assert bool(row["in_sample"]) and "trained on dataset 'nasdaq'" in str(row["warnings"])


@pytest.mark.slow
def test_the_command_refuses_in_one_line_and_labels_what_it_allows(nasdaq_checkpoint: Path, tmp_path: Path) -> None:
    refused = rlops("backtest", "run", "--policy", str(nasdaq_checkpoint), "--split", "train", "--no-report")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "overlaps the train period" in refused.stderr and "--allow-in-sample" in refused.stderr
    out = tmp_path / "allowed"
    allowed = rlops("backtest", "run", "--policy", str(nasdaq_checkpoint), "--split", "train", "--allow-in-sample",
                    "--out", str(out))  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert "on nasdaq train" in allowed.stdout and "IN-SAMPLE" in allowed.stdout
    assert json.loads((out / "result.json").read_text())["in_sample"] is True
    header = (out / "report.html").read_text().split("</header>")[0].lower()
    assert "in-sample" in header


def test_training_says_which_period_its_closing_eval_used(nasdaq_checkpoint: Path) -> None:
    from ml.agents.evaluation import EvalResult
    from ml.agents.result import TrainResult
    from ml.agents.train import summary_line
    from ml.backtest.policies import resolve_policy

    run_dir = nasdaq_checkpoint.parent.parent
    summary = json.loads((run_dir / "summary.json").read_text())
    provenance = resolve_policy(str(nasdaq_checkpoint)).provenance
    assert provenance is not None and provenance.training_period is not None
    first, last = (stamp[:10] for stamp in provenance.training_period)
    period = f"nasdaq {first} .. {last}, the training period (in-sample)"
    assert summary["evaluation_period"] == period
    result = TrainResult("ppo", 10, 0.1, 1, 1.0, None, EvalResult(0.5, 0.0, [0.5]), evaluation_period=period)
    assert f"eval 0.5 ± 0 over 1 episodes on {period}" in summary_line(result, run_dir)
