"""The market simulation's rules, each checked against a hand computation on tiny price series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ml.envs import EnvConfig, EnvSpec, TradingEnv
from rlops_core.errors import RlopsError
from tests.builders import make_market

OPEN = [[100.0], [102.0], [105.0], [103.0]]
CLOSE = [[101.0], [104.0], [104.0], [100.0]]
FREE = {"commission_bps": 0.0, "slippage_bps": 0.0, "impact_coef": 0.0, "participation_cap": 0.0, "borrow_rate": 0.0}
LONG = 2  # index of weight +1 in the default levels (-1, 0, 1)
SHORT = 0


def env_for(open_: list[list[float]] = OPEN, close: list[list[float]] = CLOSE, volume=None, **settings) -> TradingEnv:  # type: ignore[no-untyped-def]
    values = {"window": 1, "initial_cash": 10_000.0, **FREE, **settings}
    return TradingEnv(make_market(open_, close, volume), EnvConfig.from_dict(values))


def test_decision_at_close_t_fills_at_open_t_plus_1_and_marks_at_close_t_plus_1() -> None:
    env = env_for(leverage=2.0)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(LONG)
    qty = 10_000.0 / 101.0  # sized at the decision close
    cash = 10_000.0 - qty * 102.0  # filled at the next open
    equity = cash + qty * 104.0  # marked at the next close
    assert env.log is not None
    frame = env.log.to_frame()
    assert frame["fill_price_A0"].iloc[1] == 102.0
    assert frame["fill_qty_A0"].iloc[1] == pytest.approx(qty, rel=1e-15)
    assert info["equity"] == pytest.approx(equity, rel=1e-14)
    assert reward == pytest.approx(math.log(equity / 10_000.0), rel=1e-12)
    assert info["bar"] == 1
    assert not terminated and not truncated


def test_commission_and_slippage_reduce_equity_by_exactly_their_cost() -> None:
    free = env_for(leverage=2.0)
    costly = env_for(leverage=2.0, commission_bps=10.0, slippage_bps=5.0)
    free.reset(seed=0)
    costly.reset(seed=0)
    _, _, _, _, free_info = free.step(LONG)
    _, _, _, _, info = costly.step(LONG)
    qty = 10_000.0 / 101.0
    price = 102.0 * (1 + 5e-4)
    commission = qty * price * 1e-3
    slippage = qty * (price - 102.0)
    assert info["commission"] == pytest.approx(commission, rel=1e-12)
    assert info["slippage"] == pytest.approx(slippage, rel=1e-12)
    assert free_info["equity"] - info["equity"] == pytest.approx(commission + slippage, rel=1e-9)


def test_volume_impact_grows_with_participation() -> None:
    env = env_for(leverage=2.0, slippage_bps=5.0, impact_coef=0.5, volume=[[1000.0]] * 4)
    env.reset(seed=0)
    env.step(LONG)
    qty = 10_000.0 / 101.0
    assert env.log is not None
    fill = env.log.to_frame()["fill_price_A0"].iloc[1]
    assert fill == pytest.approx(102.0 * (1 + 5e-4 + 0.5 * qty / 1000.0), rel=1e-12)


def test_participation_cap_limits_the_fill_to_a_share_of_bar_volume() -> None:
    env = env_for(participation_cap=0.1, volume=[[50.0]] * 4)
    env.reset(seed=0)
    env.step(LONG)
    assert env.log is not None
    assert env.log.to_frame()["fill_qty_A0"].iloc[1] == pytest.approx(5.0)


def test_costs_use_only_the_volume_known_when_the_order_is_sent() -> None:
    """The fill at t+1 is sized and priced from bar t's volume: changing bar t+1's volume moves nothing."""
    fills = []
    for next_volume in (40.0, 5_000_000.0):
        env = env_for(leverage=2.0, slippage_bps=5.0, impact_coef=0.5, participation_cap=0.1,
                      volume=[[50.0], [next_volume], [50.0], [50.0]])  # fmt: skip
        env.reset(seed=0)
        env.step(LONG)
        assert env.log is not None
        frame = env.log.to_frame()
        fills.append((frame["fill_qty_A0"].iloc[1], frame["fill_price_A0"].iloc[1]))
    assert fills[0] == fills[1]
    qty = 0.1 * 50.0  # capped by bar t's volume
    assert fills[0] == pytest.approx((qty, 102.0 * (1 + 5e-4 + 0.5 * qty / 50.0)), rel=1e-12)


def test_integer_lots_round_toward_zero() -> None:
    env = env_for(lot_size=1.0, leverage=2.0)
    env.reset(seed=0)
    env.step(LONG)
    assert env.log is not None
    assert env.log.to_frame()["shares_A0"].iloc[1] == 99.0


def test_cash_is_never_overspent_without_leverage() -> None:
    env = env_for(commission_bps=10.0)  # the open gaps up: the full order would cost more than the cash
    env.reset(seed=0)
    _, _, _, _, _info = env.step(LONG)
    assert env.log is not None
    frame = env.log.to_frame()
    assert frame["cash"].iloc[1] >= -1e-9
    assert frame["cash"].iloc[1] == pytest.approx(0.0, abs=1e-8)
    assert frame["shares_A0"].iloc[1] < 10_000.0 / 101.0


def test_position_limit_and_leverage_cap_scale_target_weights() -> None:
    prices = [[100.0, 50.0]] * 4
    env = env_for(prices, prices, action_mode="continuous", leverage=1.5, max_position=1.0)
    env.reset(seed=0)
    env.step(np.array([1.0, 1.0], dtype=np.float32))
    assert env.log is not None
    frame = env.log.to_frame()
    assert frame[["target_A0", "target_A1"]].iloc[1].tolist() == [0.75, 0.75]
    env = env_for(prices, prices, action_mode="continuous", leverage=1.0, max_position=0.5)
    env.reset(seed=0)
    env.step(np.array([1.0, -1.0], dtype=np.float32))
    assert env.log is not None
    frame = env.log.to_frame()
    assert frame[["target_A0", "target_A1"]].iloc[1].tolist() == [0.5, -0.5]
    assert frame["shares_A0"].iloc[1] == pytest.approx(0.5 * 10_000 / 100)
    assert frame["shares_A1"].iloc[1] == pytest.approx(-0.5 * 10_000 / 50)


def test_long_only_clips_short_weights_and_rejects_short_levels() -> None:
    env = env_for(action_mode="continuous", allow_short=False, weight_low=0.0, levels=(0.0, 1.0))
    env.reset(seed=0)
    env.step(np.array([-1.0], dtype=np.float32))
    assert env.log is not None
    assert env.log.to_frame()["shares_A0"].iloc[1] == 0.0
    with pytest.raises(RlopsError, match="levels contain short weights but allow_short is False"):
        EnvConfig(allow_short=False)


def test_short_sale_credits_cash_and_pays_borrow_each_bar() -> None:
    env = env_for(borrow_rate=0.252)  # 0.1% per bar at 252 bars a year
    env.reset(seed=0)
    _, reward, _, _, info = env.step(SHORT)
    qty = 10_000.0 / 101.0
    borrow = qty * 104.0 * 0.001
    cash = 10_000.0 + qty * 102.0 - borrow
    assert info["borrow"] == pytest.approx(borrow, rel=1e-12)
    assert info["equity"] == pytest.approx(cash - qty * 104.0, rel=1e-12)
    assert reward == pytest.approx(math.log(info["equity"] / 10_000.0), rel=1e-12)


def test_end_of_data_is_truncation_and_ruin_is_termination() -> None:
    env = env_for()
    env.reset(seed=0)
    flags = [env.step(1)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]
    squeeze = env_for([[100.0], [100.0], [100.0]], [[100.0], [300.0], [300.0]])
    squeeze.reset(seed=0)
    _, _, terminated, truncated, info = squeeze.step(SHORT)  # a short when the price triples: equity < 0
    assert info["equity"] < 0
    assert terminated and not truncated


def test_observation_is_the_trailing_window_and_never_the_next_bar() -> None:
    market = make_market(OPEN * 2, CLOSE * 2, num_features=1)
    market = market._replace(features=np.arange(8, dtype=np.float64).reshape(8, 1) / 10, first_decision=2)
    env = TradingEnv(market, EnvConfig(window=3, **FREE))
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs[:3], [0.0, 0.1, 0.2], rtol=1e-6)
    obs, *_ = env.step(1)
    np.testing.assert_allclose(obs[:3], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(obs[3:], [0.0, 1.0, 0.0])  # flat: no position, all cash, no PnL


def test_differential_sharpe_reward_follows_its_recursion() -> None:
    close = [[100.0], [101.0], [99.0], [103.0], [104.0]]
    env = env_for(close, close, reward="differential_sharpe", dsr_eta=0.1, leverage=2.0)
    env.reset(seed=0)
    a = b = 0.0
    equity = 10_000.0
    for _ in range(4):
        _, reward, _, _, info = env.step(LONG)
        ret = info["equity"] / equity - 1
        equity = info["equity"]
        variance = b - a * a
        expected = (b * (ret - a) - 0.5 * a * (ret * ret - b)) / variance**1.5 if variance > 1e-12 else 0.0
        assert reward == pytest.approx(expected, rel=1e-9)
        a, b = a + 0.1 * (ret - a), b + 0.1 * (ret * ret - b)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"commission_bps": -1.0}, r"EnvConfig.commission_bps must be >= 0 \(got -1.0\)"),
        ({"leverage": 0.5}, r"EnvConfig.leverage must be >= 1 \(got 0.5\)"),
        ({"window": 0}, r"EnvConfig.window must be >= 1 bar"),
        ({"participation_cap": 2.0}, r"EnvConfig.participation_cap must be in \[0, 1\]"),
        ({"random_start": True}, r"EnvConfig.random_start needs episode_length"),
        ({"bogus": 1}, r"EnvConfig: unknown setting\(s\) bogus"),
    ],
)
def test_invalid_environment_settings_are_rejected(settings: dict[str, object], message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        EnvConfig.from_dict(settings)


def test_window_longer_than_the_period_and_bad_actions_are_clear_errors() -> None:
    with pytest.raises(RlopsError, match="too short for a 6000-bar window"):
        EnvSpec(dataset="sp500", period="test", env=EnvConfig(window=6000)).make()
    env = env_for()
    env.reset(seed=0)
    with pytest.raises(RlopsError, match=r"discrete actions must be integers in \[0, 2\]"):
        env.step(3)
    for bad in (np.array([-1], dtype=np.int64), np.array([3], dtype=np.int32), np.array([1.5])):
        with pytest.raises(RlopsError, match=r"discrete actions must be integers in \[0, 2\]"):
            env.step(bad)
    continuous = env_for(action_mode="continuous")
    continuous.reset(seed=0)
    with pytest.raises(RlopsError, match="continuous actions must be finite"):
        continuous.step(np.array([np.nan], dtype=np.float32))


@pytest.mark.parametrize("mode", ["discrete", "continuous"])
def test_gymnasium_env_checker_passes_on_real_data(mode: str) -> None:
    spec = EnvSpec(dataset="us_indices", period="validation", env=EnvConfig(action_mode=mode, window=8))
    check_env(spec.make(), skip_render_check=True)


def test_random_starts_come_only_from_reset_seed() -> None:
    spec = EnvSpec(dataset="sp500", env=EnvConfig(episode_length=50, random_start=True))
    env = spec.make()
    starts = [env.reset(seed=7)[1]["bar"] for _ in range(2)]
    assert starts[0] == starts[1]
    assert env.reset(seed=8)[1]["bar"] != starts[0]
