"""The backtest engine: same execution as the environment, every policy form, trades, persistence, bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.backtest.engine import BacktestConfig, backtest
from ml.backtest.result import BacktestResult
from ml.envs import EnvSpec
from rlops_core.errors import RlopsError
from tests.backtest.test_trades import extract_trades


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (tiny) PPO run on the trading env's train split."""
    from ml.agents.train import build_request, run_training

    runs = tmp_path_factory.mktemp("runs")
    request = build_request("ppo", dataset="sp500", smoke=True, runs_dir=runs, name="smoke", show_progress=False)
    result = run_training(request)
    assert result.checkpoint is not None
    return Path(result.checkpoint)


def test_backtest_equity_equals_the_environments_for_the_same_actions() -> None:
    actions = np.random.default_rng(5).integers(0, 3, size=2000)
    step = {"i": 0}

    def scripted(obs: np.ndarray) -> np.ndarray:
        step["i"] += 1
        return actions[step["i"] - 1 : step["i"]]

    result = backtest(scripted, "sp500", BacktestConfig(period="validation"))
    env = EnvSpec(dataset="sp500", period="validation").make()
    env.reset(seed=0)
    equity = [env.sim.state.equity[0]]
    for action in actions[: step["i"]]:
        _, _, terminated, truncated, info = env.step(int(action))
        equity.append(info["equity"])
        if terminated or truncated:
            break
    np.testing.assert_array_equal(result.equity.to_numpy(), np.asarray(equity))


def test_buy_and_hold_is_its_own_benchmark_and_flat_never_trades() -> None:
    held = backtest("baseline:buy_and_hold", "sp500")
    np.testing.assert_array_equal(held.equity.to_numpy(), held.timeseries["benchmark_equity"].to_numpy())
    assert held.period_start.startswith("2015-12-31")
    assert held.period_end.startswith("2018-12-31")
    assert len(held.trades) == 1
    assert bool(held.trades["open"].iloc[0])
    flat = backtest("baseline:flat", "sp500")
    assert (flat.equity == 100_000.0).all()
    assert flat.trades.empty
    assert flat.costs.total == 0.0


def test_ma_crossover_and_costs_override() -> None:
    cheap = backtest("baseline:ma_crossover", "sp500", BacktestConfig(params={"fast": 10, "slow": 50}))
    dear = backtest(
        "baseline:ma_crossover", "sp500", BacktestConfig(params={"fast": 10, "slow": 50}, env={"commission_bps": 50})
    )
    assert len(cheap.trades) > 3
    assert dear.costs.commission > 5 * cheap.costs.commission
    assert dear.equity.iloc[-1] < cheap.equity.iloc[-1]
    totals = cheap.trades[["commission", "slippage"]].to_numpy().sum()
    assert totals == pytest.approx(cheap.costs.commission + cheap.costs.slippage, rel=1e-9)


def test_trades_are_rebuilt_from_fills() -> None:
    index = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    log = pd.DataFrame(
        {
            "fill_qty_X": [0.0, 10.0, 10.0, -25.0, 0.0],
            "fill_price_X": [100.0, 100.0, 110.0, 120.0, 118.0],
            "mark_X": [100.0, 101.0, 111.0, 119.0, 117.0],
        },
        index=index,
    )
    opens = pd.DataFrame({"X": [100.0, 100.0, 110.0, 120.0, 118.0]}, index=index)
    trades = extract_trades(log, ("X",), opens, commission_rate=0.001)
    first, second = trades.iloc[0], trades.iloc[1]
    assert (first["direction"], first["size"], first["entry_price"], first["exit_price"]) == (
        "long",
        20.0,
        105.0,
        120.0,
    )
    assert first["commission"] == pytest.approx((10 * 100 + 10 * 110 + 20 * 120) * 0.001)
    assert first["pnl"] == pytest.approx(20 * 15 - first["commission"])
    assert not first["open"]
    assert (second["direction"], second["size"], bool(second["open"])) == ("short", 5.0, True)
    assert second["pnl"] == pytest.approx(5 * (120 - 117) - 5 * 120 * 0.001)


def test_result_round_trips_through_a_folder(tmp_path: Path) -> None:
    result = backtest("baseline:ma_crossover", "sp500", BacktestConfig(period="validation"))
    result.save(str(tmp_path / "run"))
    loaded = BacktestResult.load(str(tmp_path / "run"))
    pd.testing.assert_frame_equal(loaded.timeseries, result.timeseries)
    pd.testing.assert_frame_equal(loaded.trades, result.trades)
    assert loaded.metrics == result.metrics
    assert loaded.dataset_fingerprint == result.dataset_fingerprint
    assert loaded.config["env"]["commission_bps"] == 5.0


@pytest.fixture
def s3_prefix(s3_bucket_factory: Callable[[str], str]) -> str:
    return s3_bucket_factory("results") + "/backtests/one"


def test_result_round_trips_through_s3(s3_prefix: str) -> None:
    result = backtest("baseline:buy_and_hold", "nasdaq", BacktestConfig(period="validation"))
    result.save(s3_prefix)
    loaded = BacktestResult.load(s3_prefix)
    pd.testing.assert_frame_equal(loaded.timeseries, result.timeseries)
    assert loaded.metrics == result.metrics


def test_a_trained_checkpoint_backtests_and_a_mismatched_dataset_is_refused(checkpoint: Path) -> None:
    result = backtest(str(checkpoint), "sp500")
    assert result.policy_kind == "checkpoint"
    assert result.checkpoint_sha256 is not None
    assert result.checkpoint_sha256.startswith("sha256:")
    assert len(result.equity) > 700
    with pytest.raises(RlopsError, match=r"expects observations of size \d+, but dataset 'us_indices'"):
        backtest(str(checkpoint), "us_indices")


def test_bad_policies_and_periods_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RlopsError, match="does not exist"):
        backtest(str(tmp_path / "missing.pt"), "sp500")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RlopsError, match="corrupt or not an rlops checkpoint"):
        backtest(str(tmp_path / "corrupt.pt"), "sp500")
    with pytest.raises(RlopsError, match="unknown baseline 'moon'"):
        backtest("baseline:moon", "sp500")
    with pytest.raises(RlopsError, match="period wf:0/2000 is empty"):
        backtest("baseline:flat", "sp500", BacktestConfig(period="wf:0/2000"))
    with pytest.raises(RlopsError, match="too short"):
        backtest("baseline:flat", "sp500", BacktestConfig(period="wf:0/1510"))
    with pytest.raises(RlopsError, match="unknown split 'later'"):
        backtest("baseline:flat", "sp500", BacktestConfig(period="later"))


def test_walk_forward_periods_tile_the_out_of_sample_span() -> None:
    folds = [backtest("baseline:buy_and_hold", "sp500", BacktestConfig(period=f"wf:{k}/3")) for k in range(3)]
    ends = [pd.Timestamp(f.period_end) for f in folds]
    starts = [pd.Timestamp(f.period_start) for f in folds]
    assert starts[1] > ends[0]
    assert starts[2] > ends[1]
    assert ends[2] == pd.Timestamp("2018-12-31", tz="UTC")
