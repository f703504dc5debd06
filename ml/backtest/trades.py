"""Round-trip trades rebuilt from the environment's fill log: entry, exit, size, prices, costs, PnL.

A trade opens when a position leaves zero (or flips sign) and closes when it returns to zero (or flips).
Adds move the average entry price; reductions realise PnL against it. A trade still open at the end of the
period is reported as open, valued at the last close.

The walk over fills is one compiled loop per asset: in Python it was the largest part of scoring a backtest
cell, paid once per cell. `tests/backtest/test_trades.py` checks it against the plain Python walk it replaced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd
from numpy.typing import NDArray

TRADE_COLUMNS = [
    "symbol",
    "direction",
    "entry_time",
    "exit_time",
    "size",
    "entry_price",
    "exit_price",
    "commission",
    "slippage",
    "pnl",
    "return",
    "open",
]
# Per trade row of `_walk_fills`' float output, in this order.
_ENTRY, _EXIT, _DIRECTION, _SIZE, _ENTRY_PRICE, _EXIT_PRICE, _COMMISSION, _SLIPPAGE, _PNL, _RETURN = range(10)


@numba.njit(cache=True, nogil=True)
def _put(row: NDArray[np.float64], *values: float) -> None:
    for k in range(len(values)):
        row[k] = values[k]


@numba.njit(cache=True, nogil=True)
def _walk_fills(
    qty: NDArray[np.float64],
    price: NDArray[np.float64],
    opens: NDArray[np.float64],
    mark: float,
    commission_rate: float,
) -> NDArray[np.float64]:
    """One asset's trades, one row each (columns `_ENTRY`..`_RETURN`; exit bar -1 while open). Every sum and
    product is taken in the order the Python walk took it, so the figures are the same to the bit."""
    fills = np.flatnonzero(qty)
    out = np.empty((len(fills) + 1, 10))
    n = 0
    active = False
    direction = avg_entry = position = size = exit_value = exit_qty = commission = slippage = gross_pnl = 0.0
    entry = 0
    for i in fills:
        q, p = qty[i], price[i]
        side = 1.0 if q > 0 else -1.0
        remaining = abs(q)
        unit_commission = p * commission_rate
        unit_slippage = abs(p - opens[i])
        if active and side != direction:
            closing = min(remaining, abs(position))
            gross_pnl += direction * closing * (p - avg_entry)
            exit_value += closing * p
            exit_qty += closing
            position -= direction * closing
            commission += closing * unit_commission
            slippage += closing * unit_slippage
            remaining -= closing
            if abs(position) <= 1e-12 * max(size, 1.0):
                pnl = gross_pnl - commission - slippage
                basis = avg_entry * size
                exit_price = exit_value / exit_qty
                ret = pnl / basis if basis else 0.0
                _put(
                    out[n],
                    float(entry),
                    float(i),
                    direction,
                    size,
                    avg_entry,
                    exit_price,
                    commission,
                    slippage,
                    pnl,
                    ret,
                )
                n += 1
                active = False
        if remaining > 0:
            if not active:
                active, direction, entry = True, side, int(i)
                avg_entry = position = size = exit_value = exit_qty = commission = slippage = gross_pnl = 0.0
            new = abs(position) + remaining
            avg_entry = (avg_entry * abs(position) + p * remaining) / new
            position = direction * new
            size = max(size, new)
            commission += remaining * unit_commission
            slippage += remaining * unit_slippage
    if active:  # still open: the unrealised part is valued at the last close
        pnl = gross_pnl - commission - slippage
        pnl += direction * abs(position) * (mark - avg_entry)
        basis = avg_entry * size
        _put(
            out[n],
            float(entry),
            -1.0,
            direction,
            size,
            avg_entry,
            mark,
            commission,
            slippage,
            pnl,
            pnl / basis if basis else 0.0,
        )
        n += 1
    return out[:n]


def round_trips(
    stamps: pd.DatetimeIndex,
    symbols: Sequence[str],
    fill_qty: NDArray[np.float64],
    fill_price: NDArray[np.float64],
    opens: NDArray[np.float64],
    marks: NDArray[np.float64],
    commission_rate: float,
) -> pd.DataFrame:
    """The trades of a fill log given as arrays, one column per asset (`fill_qty`, `fill_price`, `opens`: bars
    x assets, with `stamps` the bars' times); `marks` each asset's last close; slippage is measured from the
    raw open. Rows in order of entry, then symbol."""
    parts, owner = [], []
    for a, symbol in enumerate(symbols):
        rows = _walk_fills(
            np.ascontiguousarray(fill_qty[:, a], dtype=np.float64),
            np.ascontiguousarray(fill_price[:, a], dtype=np.float64),
            np.ascontiguousarray(opens[:, a], dtype=np.float64),
            float(marks[a]),
            commission_rate,
        )
        parts.append(rows)
        owner += [symbol] * len(rows)
    table = np.concatenate(parts) if parts else np.empty((0, 10))
    names = np.asarray(owner, dtype=object)
    order = np.lexsort((names.astype(str), table[:, _ENTRY])) if len(table) else np.empty(0, dtype=np.int64)
    table, names = table[order], names[order]
    return pd.DataFrame(
        {
            "symbol": pd.array(names, dtype="str"),
            "direction": pd.array(np.where(table[:, _DIRECTION] > 0, "long", "short").astype(object), dtype="str"),
            "entry_time": stamps.array.take(table[:, _ENTRY].astype(np.int64)),
            "exit_time": stamps.array.take(table[:, _EXIT].astype(np.int64), allow_fill=True),  # -1: NaT
            "size": table[:, _SIZE],
            "entry_price": table[:, _ENTRY_PRICE],
            "exit_price": table[:, _EXIT_PRICE],
            "commission": table[:, _COMMISSION],
            "slippage": table[:, _SLIPPAGE],
            "pnl": table[:, _PNL],
            "return": table[:, _RETURN],
            "open": table[:, _EXIT] < 0,
        }
    )
