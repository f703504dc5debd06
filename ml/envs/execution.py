"""The execution kernel: the one place where orders are sized, filled, charged and marked to market.

Every environment (single or batched) and therefore every backtest runs through `step_kernel`, compiled with
numba so that one code path serves both a single Gymnasium env and thousands of envs stepped together.
Arrays are (env, asset); prices are (bar, asset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from ml.envs.config import EnvConfig

F = TypeVar("F", bound=Callable[..., Any])
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# The typed decorator keeps mypy's strict mode meaningful for the compiled functions' callers.
jit = cast(Callable[[F], F], numba.njit(cache=True, nogil=True))

# Positions of the scalar parameters in the packed parameter vector (one array keeps dispatch cheap).
P_DISCRETE, P_WEIGHT_LOW, P_ALLOW_SHORT, P_MAX_POSITION, P_LEVERAGE = 0, 1, 2, 3, 4
P_COMMISSION, P_SLIPPAGE, P_IMPACT, P_PARTICIPATION, P_BORROW_PER_BAR = 5, 6, 7, 8, 9
P_LOT, P_REWARD_DSR, P_DSR_ETA = 10, 11, 12
NUM_PARAMS = 13
RUIN_FLOOR = 1e-12  # equity at or below this is ruin: the episode terminates
# Observations are clipped to a finite box (as SB3's VecNormalize does): a feature more than this many
# training standard deviations out is an outlier whose exact size would only destabilise learning.
OBS_CLIP = 10.0


def pack_params(config: EnvConfig, periods_per_year: float) -> FloatArray:
    params = np.zeros(NUM_PARAMS)
    params[P_DISCRETE] = 1.0 if config.action_mode == "discrete" else 0.0
    params[P_WEIGHT_LOW] = config.weight_low
    params[P_ALLOW_SHORT] = 1.0 if config.allow_short else 0.0
    params[P_MAX_POSITION] = config.max_position
    params[P_LEVERAGE] = config.leverage
    params[P_COMMISSION] = config.commission_bps / 1e4
    params[P_SLIPPAGE] = config.slippage_bps / 1e4
    params[P_IMPACT] = config.impact_coef
    params[P_PARTICIPATION] = config.participation_cap
    params[P_BORROW_PER_BAR] = config.borrow_rate / periods_per_year
    params[P_LOT] = config.lot_size
    params[P_REWARD_DSR] = 1.0 if config.reward == "differential_sharpe" else 0.0
    params[P_DSR_ETA] = config.dsr_eta
    return params


class AccountState(NamedTuple):
    """Mutable per-env account arrays, updated in place by the kernel."""

    t: IntArray  # (N,) bar of the next decision
    end: IntArray  # (N,) last bar an episode may fill at
    cash: FloatArray  # (N,)
    shares: FloatArray  # (N, A)
    basis: FloatArray  # (N, A) average entry price of the open position
    equity: FloatArray  # (N,) marked at the close of bar t
    dsr_a: FloatArray  # (N,) differential Sharpe first moment
    dsr_b: FloatArray  # (N,) differential Sharpe second moment

    @classmethod
    def empty(cls, num_envs: int, num_assets: int) -> AccountState:
        return cls(
            t=np.zeros(num_envs, dtype=np.int64),
            end=np.zeros(num_envs, dtype=np.int64),
            cash=np.zeros(num_envs),
            shares=np.zeros((num_envs, num_assets)),
            basis=np.zeros((num_envs, num_assets)),
            equity=np.zeros(num_envs),
            dsr_a=np.zeros(num_envs),
            dsr_b=np.zeros(num_envs),
        )


class StepRecord(NamedTuple):
    """What one step did, per env: filled quantities and prices, and each cost in cash."""

    fill_qty: FloatArray  # (N, A) signed shares traded at the open of bar t+1
    fill_price: FloatArray  # (N, A) price paid per share, slippage included
    commission: FloatArray  # (N,)
    slippage: FloatArray  # (N,) cash lost to slippage versus the raw open
    borrow: FloatArray  # (N,)
    target: FloatArray  # (N, A) target weights after every limit

    @classmethod
    def empty(cls, num_envs: int, num_assets: int) -> StepRecord:
        return cls(
            fill_qty=np.zeros((num_envs, num_assets)),
            fill_price=np.zeros((num_envs, num_assets)),
            commission=np.zeros(num_envs),
            slippage=np.zeros(num_envs),
            borrow=np.zeros(num_envs),
            target=np.zeros((num_envs, num_assets)),
        )


@jit
def _target_weights(action: FloatArray, levels: FloatArray, params: FloatArray, out: FloatArray) -> None:
    """Map one env's action to target weights within the short, position and gross-leverage limits."""
    num_assets = action.shape[0]
    gross = 0.0
    for a in range(num_assets):
        discrete = params[P_DISCRETE] > 0.5
        w = levels[int(action[a])] if discrete else min(max(action[a], params[P_WEIGHT_LOW]), 1.0)
        if params[P_ALLOW_SHORT] < 0.5 and w < 0.0:
            w = 0.0
        w = min(max(w, -params[P_MAX_POSITION]), params[P_MAX_POSITION])
        out[a] = w
        gross += abs(w)
    if gross > params[P_LEVERAGE]:
        scale = params[P_LEVERAGE] / gross
        for a in range(num_assets):
            out[a] *= scale


@jit
def _fill_cost(qty: float, raw_price: float, bar_volume: float, params: FloatArray) -> tuple[float, float]:
    """(fill price, commission) for `qty` shares at a raw open price, with fixed and volume-impact slippage
    (participation measured against the decision bar's volume, the last one known when the order is sent)."""
    participation = abs(qty) / bar_volume if bar_volume > 0.0 else 0.0
    slip = params[P_SLIPPAGE] + params[P_IMPACT] * participation
    price = raw_price * (1.0 + slip) if qty > 0.0 else raw_price * (1.0 - slip)
    return price, abs(qty) * price * params[P_COMMISSION]


@jit
def _round_lot(qty: float, lot: float) -> float:
    if lot <= 0.0:
        return qty
    return float(np.trunc(qty / lot)) * lot


@jit
def step_kernel(
    actions: FloatArray,
    levels: FloatArray,
    params: FloatArray,
    open_: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    t: IntArray,
    end: IntArray,
    cash: FloatArray,
    shares: FloatArray,
    basis: FloatArray,
    equity: FloatArray,
    dsr_a: FloatArray,
    dsr_b: FloatArray,
    rewards: FloatArray,
    terminated: BoolArray,
    truncated: BoolArray,
    fill_qty: FloatArray,
    fill_price: FloatArray,
    commission: FloatArray,
    slippage: FloatArray,
    borrow: FloatArray,
    target: FloatArray,
) -> None:
    """Advance every env one bar: decide at close t, fill at open t+1, mark at close t+1."""
    num_envs, num_assets = shares.shape
    orders = np.zeros(num_assets)
    for i in range(num_envs):
        now = t[i]
        nxt = now + 1
        equity_before = equity[i]
        _target_weights(actions[i], levels, params, target[i])
        # Size at the decision close and cap participation by the decision bar's volume: both are known when the
        # order is sent, while the fill bar's volume is not (using it would be look-ahead in costs).
        for a in range(num_assets):
            desired = target[i, a] * equity_before / close[now, a]
            order = desired - shares[i, a]
            cap = params[P_PARTICIPATION] * volume[now, a]
            if params[P_PARTICIPATION] > 0.0 and abs(order) > cap:
                order = cap if order > 0.0 else -cap
            orders[a] = _round_lot(order, params[P_LOT])
        # Sells settle first; buys are scaled down so cash never falls below the margin the leverage cap allows.
        cash_after_sells = cash[i]
        buy_cost = 0.0
        for a in range(num_assets):
            price, fee = _fill_cost(orders[a], open_[nxt, a], volume[now, a], params)
            if orders[a] < 0.0:
                cash_after_sells += -orders[a] * price - fee
            elif orders[a] > 0.0:
                buy_cost += orders[a] * price + fee
        floor = -(params[P_LEVERAGE] - 1.0) * max(equity_before, 0.0)
        if buy_cost > 0.0 and cash_after_sells - buy_cost < floor:
            scale = max(cash_after_sells - floor, 0.0) / buy_cost
            for a in range(num_assets):
                if orders[a] > 0.0:
                    orders[a] = _round_lot(orders[a] * scale, params[P_LOT])
        total_fee = 0.0
        total_slip = 0.0
        for a in range(num_assets):
            qty = orders[a]
            fill_qty[i, a] = qty
            if qty == 0.0:
                fill_price[i, a] = open_[nxt, a]
                continue
            price, fee = _fill_cost(qty, open_[nxt, a], volume[now, a], params)
            fill_price[i, a] = price
            cash[i] -= qty * price + fee
            total_fee += fee
            total_slip += abs(qty) * abs(price - open_[nxt, a])
            old = shares[i, a]
            new = old + qty
            if new == 0.0:
                basis[i, a] = 0.0
            elif old == 0.0 or (old > 0.0) != (new > 0.0):
                basis[i, a] = price  # opened or flipped: the new position's entry is this fill
            elif abs(new) > abs(old):
                basis[i, a] = (basis[i, a] * abs(old) + price * abs(qty)) / abs(new)
            shares[i, a] = new
        # Borrow is charged on short value at the mark, once per bar held.
        short_value = 0.0
        for a in range(num_assets):
            if shares[i, a] < 0.0:
                short_value += -shares[i, a] * close[nxt, a]
        fee_borrow = short_value * params[P_BORROW_PER_BAR]
        cash[i] -= fee_borrow
        equity_after = cash[i]
        for a in range(num_assets):
            equity_after += shares[i, a] * close[nxt, a]
        commission[i] = total_fee
        slippage[i] = total_slip
        borrow[i] = fee_borrow
        equity[i] = equity_after
        t[i] = nxt
        ruined = equity_after <= RUIN_FLOOR
        terminated[i] = ruined
        truncated[i] = (not ruined) and nxt >= end[i]
        growth = max(equity_after, RUIN_FLOOR) / equity_before
        if params[P_REWARD_DSR] > 0.5:
            ret = growth - 1.0
            d_a = ret - dsr_a[i]
            d_b = ret * ret - dsr_b[i]
            variance = dsr_b[i] - dsr_a[i] * dsr_a[i]
            rewards[i] = (dsr_b[i] * d_a - 0.5 * dsr_a[i] * d_b) / variance**1.5 if variance > 1e-12 else 0.0
            dsr_a[i] += params[P_DSR_ETA] * d_a
            dsr_b[i] += params[P_DSR_ETA] * d_b
        else:
            rewards[i] = np.log(growth)


@jit
def observe_kernel(
    features: FloatArray,
    window: int,
    close: FloatArray,
    t: IntArray,
    cash: FloatArray,
    shares: FloatArray,
    basis: FloatArray,
    equity: FloatArray,
    rows: IntArray,
    out: npt.NDArray[np.float32],
) -> None:
    """Observation of each env in `rows`: the trailing feature window ending at bar t (inclusive), then the
    weight of each asset, the cash weight and unrealised PnL, all as fractions of equity."""
    width = features.shape[1]
    num_assets = shares.shape[1]
    for i in rows:
        now = t[i]
        k = 0
        for s in range(now - window + 1, now + 1):
            for j in range(width):
                out[i, k] = min(max(features[s, j], -OBS_CLIP), OBS_CLIP)
                k += 1
        scale = 1.0 / equity[i] if equity[i] > RUIN_FLOOR else 0.0
        unrealised = 0.0
        for a in range(num_assets):
            out[i, k] = min(max(shares[i, a] * close[now, a] * scale, -OBS_CLIP), OBS_CLIP)
            unrealised += shares[i, a] * (close[now, a] - basis[i, a])
            k += 1
        out[i, k] = min(max(cash[i] * scale, -OBS_CLIP), OBS_CLIP)
        out[i, k + 1] = min(max(unrealised * scale, -OBS_CLIP), OBS_CLIP)
