"""Splits chosen by dates or fractions, the embargo's default, walk-forward folds and their stitching, and the split
flags of every command refusing bad values in one line that names the flag."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data.features import FeatureConfig
from ml.data.splits import LEGACY_SPLIT, SplitConfig
from ml.pipeline.config import PipelineConfig
from ml.pipeline.walk_forward import plan_folds, stitch
from rlops_core.errors import RlopsError

STAMPS = pd.bdate_range("2015-01-01", periods=1000, tz="UTC")
WARMUP = FeatureConfig().warmup


def test_dates_cut_where_chosen_with_the_embargo_before_validation_and_test() -> None:
    split = SplitConfig(validation_start="2017-01-02", test_start="2018-01-01", embargo=7).resolve(STAMPS, WARMUP)
    assert STAMPS[split.validation.start] == pd.Timestamp("2017-01-02", tz="UTC")
    assert STAMPS[split.test.start] == pd.Timestamp("2018-01-01", tz="UTC")
    assert split.validation.start - split.train.stop == 7 and split.test.start - split.validation.stop == 7
    assert (split.train.start, split.test.stop, split.embargo) == (0, len(STAMPS), 7)


def test_fractions_and_the_default_embargo_is_the_feature_warm_up() -> None:
    split = SplitConfig(fractions=(0.6, 0.2)).resolve(STAMPS, WARMUP)
    assert (split.validation.start, split.test.start) == (600, 800)
    assert split.embargo == WARMUP == 50
    assert split.train.stop == 600 - WARMUP and split.validation.stop == 800 - WARMUP
    assert SplitConfig(embargo=0).resolve(STAMPS, WARMUP).train.stop == 700  # the old fixed split
    assert LEGACY_SPLIT.resolve(STAMPS, WARMUP).train.stop == 700


def test_train_start_and_test_end_bound_the_split() -> None:
    config = SplitConfig(train_start="2015-06-01", validation_start="2016-01-01", test_start="2017-01-02",
                         test_end="2017-06-30", embargo=3)  # fmt: skip
    split = config.resolve(STAMPS, WARMUP)
    assert STAMPS[split.train.start] == pd.Timestamp("2015-06-01", tz="UTC")
    assert STAMPS[split.test.stop - 1] == pd.Timestamp("2017-06-30", tz="UTC")


def test_a_split_round_trips_through_a_mapping_and_yaml_dates() -> None:
    import datetime

    config = SplitConfig(validation_start="2016-01-04", test_start="2017-01-03", embargo=5)
    assert SplitConfig.from_dict(config.to_dict()) == config
    # YAML reads an unquoted date as a date, not a string.
    assert SplitConfig.from_dict({"test_start": datetime.date(2017, 1, 3)}).test_start == "2017-01-03"
    pipeline = PipelineConfig.from_dict({"split": {"test_start": "2017-01-03"}, "walk_forward": {"folds": 2}})
    assert pipeline.split.test_start == "2017-01-03" and pipeline.walk_forward.folds == 2
    assert PipelineConfig().with_overrides(["split={embargo: 9}"]).split.embargo == 9


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"test_start": "2017-13-01"}, "split test_start (--test-start): '2017-13-01' is not a date"),
        (
            {"validation_start": "2018-01-01", "test_start": "2017-01-01"},
            "validation_start 2018-01-01 must come before",
        ),
        ({"fractions": (0.9, 0.2)}, "split fractions (--split-fractions): 0.9,0.2 must be two shares"),
        ({"embargo": -1}, "split embargo (--embargo): must be a whole number of bars >= 0 (got -1)"),
        ({"tset_start": "2017-01-01"}, "unknown key(s) tset_start"),
    ],
)
def test_bad_split_settings_name_the_setting_and_its_flag(values: dict[str, object], message: str) -> None:
    with pytest.raises(RlopsError, match=None) as caught:
        SplitConfig.from_dict(values)
    assert message in str(caught.value)


def test_dates_that_leave_a_part_empty_are_refused() -> None:
    with pytest.raises(RlopsError, match="split leaves an empty part"):
        SplitConfig(validation_start="2015-01-05", test_start="2018-01-01", embargo=10).resolve(STAMPS, WARMUP)


@pytest.mark.parametrize("train_bars", [None, 300])
def test_walk_forward_folds_tile_the_test_split_and_never_train_on_their_fold(train_bars: int | None) -> None:
    config = SplitConfig(test_start="2018-01-01", embargo=10)
    whole = config.resolve(STAMPS, WARMUP)
    plans = plan_folds(STAMPS, config, WARMUP, 3, train_bars)
    size = len(whole.test) // 3
    assert [p.fold.test.stop - p.fold.test.start for p in plans] == [size] * 3
    assert plans[-1].fold.test.stop == len(STAMPS) and plans[0].fold.test.start >= whole.test.start
    for before, after in pairwise(plans):
        assert after.fold.test.start == before.fold.test.stop
    for plan in plans:
        split = plan.split.resolve(STAMPS, WARMUP)  # what the fold's models are trained and scored under
        assert split.test == plan.fold.test
        assert split.part("train+validation") == plan.fold.train
        assert plan.fold.test.start - plan.fold.train.stop == 10
        if train_bars is not None:
            assert len(plan.fold.train) == train_bars


def test_stitched_equity_chains_the_folds_returns() -> None:
    rng = np.random.default_rng(0)
    folds = []
    start = 0
    for length in (30, 45, 25):
        stamps = STAMPS[start : start + length]
        returns = np.concatenate([[0.0], rng.normal(0, 0.01, length - 1)])
        folds.append(pd.Series(returns, index=stamps))
        start += length
    curve = stitch(folds, 1000.0)
    growth = [np.prod(1 + f.to_numpy()[1:]) for f in folds]
    assert curve.iloc[0] == 1000.0 and len(curve) == 1 + sum(len(f) - 1 for f in folds)
    assert curve.iloc[-1] == pytest.approx(1000.0 * np.prod(growth), rel=1e-12)
    assert curve[folds[0].index[-1]] == pytest.approx(1000.0 * growth[0], rel=1e-12)
    assert curve[folds[1].index[-1]] == pytest.approx(1000.0 * growth[0] * growth[1], rel=1e-12)


def rlops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rlops.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "COLUMNS": "200", "RAY_AUTH_MODE": "disabled"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        (["train", "--algo", "ppo", "--smoke"], ["--embargo", "-3"], "--embargo"),
        (["tune", "--smoke"], ["--split-fractions", "0.7"], "--split-fractions '0.7': expected TRAIN,VALIDATION"),
        (["backtest", "run", "--policy", "baseline:flat"], ["--test-start", "someday"], "(--test-start): 'someday'"),
        (["pipeline", "run", "--smoke"], ["--walk-forward", "-1"], "(--walk-forward): must be a whole number >= 0"),
        (["demo"], ["--validation-start", "2019-01-01", "--test-start", "2018-01-01"], "must come before test_start"),
        (["data", "show", "sp500", "--splits"], ["--split-fractions", "0.8,0.3"], "(--split-fractions): 0.8,0.3"),
    ],
    ids=["train", "tune", "backtest", "pipeline", "demo", "data-show"],
)
def test_every_command_with_a_split_refuses_a_bad_flag_in_one_line(
    command: list[str], flags: list[str], message: str, tmp_path: Path
) -> None:
    done = rlops(*command, *flags, cwd=tmp_path)
    assert done.returncode == 1, done.stdout[-1000:] + done.stderr[-1000:]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_data_show_splits_prints_each_part_as_chosen(tmp_path: Path) -> None:
    done = rlops("data", "show", "sp500", "--splits", "--test-start", "2016-01-04", "--embargo", "5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "split: validation from its fraction, test from 2016-01-04, embargo 5 bars" in done.stdout
    assert "test: 2016-01-04T00:00:00+00:00 .. 2018-12-31T00:00:00+00:00" in done.stdout
