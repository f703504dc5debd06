"""PBO by CSCV: a case computed by hand, brute force on the raw rows, and the two properties that define it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from ml.backtest.overfitting import assess, choose_blocks, cscv, describe
from rlops_core.errors import RlopsError

# Block means of three configurations over S = 4 blocks; each block is two periods, mean +- 0.5.
BLOCK_MEANS = {"A": (3.0, 1.0, 0.0, -2.0), "B": (1.0, 1.0, 1.0, 1.0), "C": (0.0, 2.0, -1.0, 0.5)}


def hand_matrix() -> np.ndarray:
    columns = [[v for m in means for v in (m + 0.5, m - 0.5)] for means in BLOCK_MEANS.values()]
    return np.array(columns).T  # 8 periods x 3 configurations


def test_three_configurations_in_four_blocks_match_the_hand_computation() -> None:
    """Means of the in-sample (IS) and out-of-sample (OOS) halves are the averages of their two block means.

    IS blocks  IS means (A, B, C)     pick  OOS means (A, B, C)    OOS rank of pick  w = rank/4  lambda
    {1,2}      2,    1,  1            A     -1,   1, -0.25         1                 1/4         log(1/3)
    {1,3}      1.5,  1, -0.5          A     -0.5, 1,  1.25         1                 1/4         log(1/3)
    {1,4}      0.5,  1,  0.25         B     0.5,  1,  0.5          3                 3/4         log(3)
    {2,3}      0.5,  1,  0.5          B     0.5,  1,  0.25         3                 3/4         log(3)
    {2,4}      -0.5, 1,  1.25         C     1.5,  1, -0.5          1                 1/4         log(1/3)
    {3,4}      -1,   1, -0.25         B     2,    1,  1            1.5 (tied with C) 3/8         log(3/5)

    Four of six splits have lambda <= 0: PBO = 2/3.
    """
    result = cscv(hand_matrix(), blocks=4, statistic="mean")
    expected = [math.log(1 / 3), math.log(1 / 3), math.log(3), math.log(3), math.log(1 / 3), math.log(3 / 5)]
    assert result.combinations == 6 and result.blocks == 4 and result.n_configs == 3 and result.n_periods == 8
    assert result.lambdas == pytest.approx(expected, abs=1e-12)
    assert result.pbo == pytest.approx(4 / 6)


def brute_force(x: np.ndarray, blocks: int) -> list[float]:
    """CSCV straight from the definition: each half's rows gathered, Sharpe ratios computed on them."""
    size = len(x) // blocks
    rows = x[len(x) - size * blocks :].reshape(blocks, size, -1)
    n = x.shape[1]
    out = []
    for chosen in itertools.combinations(range(blocks), blocks // 2):
        rest = [b for b in range(blocks) if b not in chosen]
        halves = [rows[list(part)].reshape(-1, n) for part in (chosen, rest)]
        s_in, s_out = (h.mean(axis=0) / h.std(axis=0, ddof=1) for h in halves)
        best = int(np.argmax(s_in))
        rank = (s_out < s_out[best]).sum() + 1 + ((s_out == s_out[best]).sum() - 1) / 2
        w = rank / (n + 1)
        out.append(math.log(w / (1 - w)))
    return out


def test_sharpe_statistic_equals_the_brute_force_on_raw_rows_and_drops_the_earliest_periods() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.001, 0.01, size=(83, 6)) + np.linspace(-0.002, 0.002, 6)
    result = cscv(x, blocks=6)
    assert result.n_periods == 78 and result.combinations == 20
    assert result.lambdas == pytest.approx(brute_force(x, 6), abs=1e-9)


def test_pure_noise_gives_pbo_near_one_half_over_seeds() -> None:
    # Ten configurations: the in-sample winner's out-of-sample rank is uniform on 1..10, half of them <= 5.5.
    values = [cscv(np.random.default_rng(seed).normal(0, 0.01, size=(400, 10)), blocks=8).pbo for seed in range(40)]
    assert 0.4 < float(np.mean(values)) < 0.6
    assert min(values) < 0.5 < max(values)  # one seed's PBO is itself noisy, not a constant


def test_a_configuration_best_in_every_block_gives_pbo_zero() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.01, size=(240, 5))
    x[:, 2] = np.abs(rng.normal(0.05, 0.001, size=240))  # higher mean, tiny spread: first on every half
    result = cscv(x, blocks=8)
    assert result.pbo == 0.0
    assert all(v == pytest.approx(math.log(5)) for v in result.lambdas)  # rank 5 of 5: w = 5/6


def test_flat_configuration_has_sharpe_zero_not_a_float_residue() -> None:
    x = np.column_stack([np.full(40, 0.1), np.random.default_rng(1).normal(0.01, 0.01, 40)])
    # 0.1 repeated leaves a ~1e-17 spread around its float mean; read as a Sharpe it would win every split.
    assert cscv(x, blocks=4).lambdas == pytest.approx([math.log(2)] * 6)


@pytest.mark.parametrize(
    ("matrix", "blocks", "message"),
    [
        (np.zeros((40, 1)), 4, "needs at least 2, got 1"),
        (np.zeros((7, 3)), 4, "7 periods cannot make 4 blocks"),
        (np.zeros((40, 3)), 3, "blocks: must be an even whole number"),
        (np.zeros(40), 4, "expected a periods x configurations matrix"),
        (np.array([[0.0, np.nan]] * 8), 4, "every return must be finite"),
    ],
)
def test_bad_input_is_one_clear_line(matrix: np.ndarray, blocks: int, message: str) -> None:
    with pytest.raises(RlopsError, match=message):
        cscv(matrix, blocks=blocks)


def test_assess_picks_blocks_or_says_why_there_is_no_pbo() -> None:
    assert choose_blocks(80) == 8 and choose_blocks(79) == 6 and choose_blocks(40) == 4 and choose_blocks(39) is None
    few = assess(np.zeros((200, 3)))
    assert few == {"pbo": None, "reason": "only 3 configuration(s); PBO needs at least 4"}
    short = assess(np.zeros((30, 5)))
    assert short["pbo"] is None and "only 30 period(s); PBO needs at least 40" in short["reason"]
    assert describe(short).startswith("no PBO: only 30 period(s)")
    record = assess(np.random.default_rng(0).normal(size=(100, 4)))
    assert record["blocks"] == 8 and record["combinations"] == 70 and record["n_periods"] == 96
    assert describe(record).startswith(f"PBO {record['pbo']:.0%} (70 splits of 8 blocks, 4 configurations")
    assert "nan" not in describe(record) + describe(few) + describe(None)
