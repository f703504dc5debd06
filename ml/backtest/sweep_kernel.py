"""One compiled call per bar for a sweep: step every (market, policy) account, record equity, observe again.

The sweep's bars are dominated by fixed per-call costs (dispatch, small temporaries, the GIL they hold), so a
bar is one call here rather than several numpy and torch operations. It runs the environment's own
`step_kernel` and `observe_kernel`; the observation normalisation is the same float64 arithmetic as
`RunningMeanStd.normalize`, so a policy's actions are bit-for-bit those of `Policy.act`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ml.envs.execution import OBS_CLIP, FloatArray, IntArray, jit, observe_kernel, step_kernel


@jit
def observe_stacked(
    features: npt.NDArray[np.float64],
    window: int,
    close: npt.NDArray[np.float64],
    t: npt.NDArray[np.int64],
    cash: npt.NDArray[np.float64],
    shares: npt.NDArray[np.float64],
    basis: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
    rows: IntArray,
    mean: npt.NDArray[np.float64],
    scale: npt.NDArray[np.float64],
    normalise: bool,
    scratch: npt.NDArray[np.float32],
    out: npt.NDArray[np.float32],
) -> None:
    """Observations of every (market, policy) account into `out` (policies, markets, D), each policy's
    normalisation (mean/scale (policies, D)) applied when `normalise`; `scratch` is a (policies, D) buffer."""
    for m in range(features.shape[0]):
        observe_kernel(features[m], window, close[m], t[m], cash[m], shares[m], basis[m], equity[m], rows, scratch)
        if normalise:
            for p in range(scratch.shape[0]):
                row, mu, sigma, target = scratch[p], mean[p], scale[p], out[p, m]
                for k in range(row.shape[0]):
                    target[k] = np.float32(min(max((np.float64(row[k]) - mu[k]) / sigma[k], -OBS_CLIP), OBS_CLIP))
        else:
            out[:, m, :] = scratch


@jit
def step_stacked(
    actions: npt.NDArray[np.float64] | npt.NDArray[np.int64] | npt.NDArray[np.float32],
    weights: npt.NDArray[np.float64],
    levels: FloatArray,
    params: FloatArray,
    open_: npt.NDArray[np.float64],
    close: npt.NDArray[np.float64],
    volume: npt.NDArray[np.float64],
    t: npt.NDArray[np.int64],
    end: npt.NDArray[np.int64],
    cash: npt.NDArray[np.float64],
    shares: npt.NDArray[np.float64],
    basis: npt.NDArray[np.float64],
    equity: npt.NDArray[np.float64],
    dsr_a: npt.NDArray[np.float64],
    dsr_b: npt.NDArray[np.float64],
    rewards: npt.NDArray[np.float64],
    terminated: npt.NDArray[np.bool_],
    truncated: npt.NDArray[np.bool_],
    fills: npt.NDArray[np.float64],
    costs: npt.NDArray[np.float64],
    alive: npt.NDArray[np.bool_],
    record: npt.NDArray[np.float64],
    step: int,
) -> None:
    """Fill the policies' `actions` (policies, markets, assets) for every market and record equity at `step`
    of `record` (policies, markets, bars + 1). A ruined account ends there: its recorded equity stays flat
    while the kernel keeps stepping it in lockstep, unread. `weights` is a (markets, policies, assets) buffer."""
    for p in range(actions.shape[0]):
        for m in range(actions.shape[1]):
            for a in range(actions.shape[2]):
                weights[m, p, a] = np.float64(actions[p, m, a])
    for m in range(open_.shape[0]):
        step_kernel(
            weights[m], levels, params, open_[m], close[m], volume[m], t[m], end[m], cash[m], shares[m],
            basis[m], equity[m], dsr_a[m], dsr_b[m], rewards[m], terminated[m], truncated[m],
            fills[m, :, :, 0], fills[m, :, :, 1], costs[m, :, 0], costs[m, :, 1], costs[m, :, 2], fills[m, :, :, 2],
        )  # fmt: skip
        for p in range(actions.shape[0]):
            record[p, m, step] = equity[m, p] if alive[m, p] else record[p, m, step - 1]
            alive[m, p] = alive[m, p] and not terminated[m, p]
