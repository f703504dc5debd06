"""Features are causal (a property test), normalisation sees train rows only, splits never share a bar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.data import FeatureConfig, Normalizer, compute_features, split_by_date, walk_forward
from ml.data.bars import Panel
from rlops_core.errors import RlopsError

CONFIG = FeatureConfig(volatility_window=3, ma_windows=(2, 4), rsi_window=3, volume_window=3)


def panel_of(close: np.ndarray, volume: np.ndarray) -> Panel:
    stamps = pd.date_range("2024-01-01", periods=len(close), freq="D", tz="UTC")
    col = close.reshape(-1, 1)
    return Panel(stamps, ("X",), col, col, col, col, volume.reshape(-1, 1))


prices = st.lists(st.floats(min_value=1.0, max_value=1e4, allow_nan=False), min_size=12, max_size=40)


@settings(max_examples=60, deadline=None)
@given(close=prices, cut=st.integers(min_value=0, max_value=39), seed=st.integers(0, 2**16))
def test_changing_data_after_t_changes_no_feature_at_or_before_t(close: list[float], cut: int, seed: int) -> None:
    t = min(cut, len(close) - 2)
    original = np.asarray(close)
    volume = np.linspace(100, 200, len(close))
    rng = np.random.default_rng(seed)
    changed = original.copy()
    changed[t + 1 :] = rng.uniform(1.0, 1e4, size=len(close) - t - 1)
    changed_volume = volume.copy()
    changed_volume[t + 1 :] = rng.uniform(0, 1e6, size=len(close) - t - 1)
    before = compute_features(panel_of(original, volume), CONFIG).values[: t + 1]
    after = compute_features(panel_of(changed, changed_volume), CONFIG).values[: t + 1]
    np.testing.assert_array_equal(before, after)


def test_feature_values_match_their_definitions() -> None:
    close = np.array([10.0, 11, 12, 11, 13, 14, 13, 15])
    features = compute_features(panel_of(close, np.full(8, 100.0)), CONFIG)
    assert features.warmup == 4
    assert np.isnan(features.values[:4]).all()
    t = 6
    names = features.names
    row = features.values[t, 0]
    assert row[names.index("return")] == pytest.approx(close[t] / close[t - 1] - 1)
    assert row[names.index("log_return")] == pytest.approx(np.log(close[t] / close[t - 1]))
    log_returns = np.diff(np.log(close))[t - 3 : t]
    assert row[names.index("volatility_3")] == pytest.approx(np.std(log_returns, ddof=1))
    assert row[names.index("ma_ratio_4")] == pytest.approx(close[t] / close[t - 3 : t + 1].mean() - 1)
    moves = np.diff(close)[t - 3 : t]
    gains, losses = moves.clip(min=0).mean(), (-moves).clip(min=0).mean()
    assert row[names.index("rsi_3")] == pytest.approx(gains / (gains + losses))
    assert row[names.index("volume_z_3")] == 0.0  # constant volume: neutral, not NaN


def test_normaliser_is_fitted_on_training_rows_only() -> None:
    close = np.concatenate([np.linspace(100, 110, 50), np.linspace(110, 500, 50)])
    features = compute_features(panel_of(close, np.linspace(1, 2, 100)), CONFIG)
    train_only = Normalizer.fit(features, slice(0, 50))
    with_test = Normalizer.fit(features, slice(0, 100))
    assert train_only.mean != with_test.mean
    sample = features.values[4:50].reshape(-1, len(features.names))
    np.testing.assert_allclose(train_only.mean, sample.mean(axis=0))


def test_bad_feature_windows_are_rejected() -> None:
    with pytest.raises(RlopsError, match=r"FeatureConfig.rsi_window must be >= 2 bars \(got 1\)"):
        FeatureConfig(rsi_window=1)


def test_train_validation_test_never_share_a_bar() -> None:
    stamps = pd.date_range("2020-01-01", periods=1000, freq="D", tz="UTC")
    split = split_by_date(stamps, "2021-01-01", "2022-01-01", embargo=5)
    parts = [split.train, split.validation, split.test]
    assert stamps[split.validation.start] == pd.Timestamp("2021-01-01", tz="UTC")
    assert stamps[split.test.start] == pd.Timestamp("2022-01-01", tz="UTC")
    assert split.train.stop == split.validation.start - 5
    assert split.validation.stop == split.test.start - 5
    covered = [set(range(p.start, p.stop)) for p in parts]
    assert not covered[0] & covered[1] and not covered[1] & covered[2] and not covered[0] & covered[2]
    assert max(covered[0]) < min(covered[1]) and max(covered[1]) < min(covered[2])


def test_walk_forward_folds_respect_the_embargo_and_never_look_ahead() -> None:
    folds = walk_forward(500, folds=4, test_size=50, embargo=10)
    assert [f.test.start for f in folds] == [300, 350, 400, 450]
    for fold in folds:
        assert fold.train.stop + 10 == fold.test.start
        assert fold.train.stop <= fold.test.start
    rolling = walk_forward(500, folds=2, test_size=50, embargo=0, train_size=100)
    assert [(f.train.start, f.train.stop) for f in rolling] == [(300, 400), (350, 450)]


def test_impossible_splits_are_errors() -> None:
    stamps = pd.date_range("2020-01-01", periods=100, freq="D", tz="UTC")
    with pytest.raises(RlopsError, match="empty part"):
        split_by_date(stamps, "2020-03-01", "2020-02-01")
    with pytest.raises(RlopsError, match="not enough bars"):
        walk_forward(100, folds=5, test_size=30)
