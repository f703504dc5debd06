"""POST /v1/act/bars input: a client's raw bars and account, checked field by field, as the environment's types.

Bars go through the data loader's own row checks (``validate_table``: positive prices, high/low consistent
with open/close, volume >= 0, timestamps parsed, unique and sorted), so the service accepts exactly what
``rlops data validate`` accepts; every problem comes back as a 422 naming ``bars.<symbol>[<i>].<column>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.data import columns as col
from ml.data.bars import Panel
from ml.data.loader import LoadOptions, validate_table
from ml.envs.contract import ObservationContract
from ml.envs.observation import Account
from ml.serve.errors import invalid
from ml.serve.schemas import BarsActRequest, FieldError


@dataclass(frozen=True)
class DecisionInput:
    panel: Panel
    """The last ``bars_needed`` bars of each symbol, in the contract's symbol order."""
    account: Account


def _symbols(request: BarsActRequest, contract: ObservationContract) -> list[FieldError]:
    wanted = ", ".join(contract.symbols)
    problems = [
        FieldError(field=f"bars.{symbol}", message=f"missing: the model trades {wanted}")
        for symbol in contract.symbols
        if symbol not in request.bars
    ]
    problems += [
        FieldError(field=f"bars.{symbol}", message=f"unknown symbol {symbol!r}: the model trades {wanted}")
        for symbol in request.bars
        if symbol not in contract.symbols
    ]
    problems += [
        FieldError(field=f"account.positions.{symbol}", message=f"unknown symbol {symbol!r}: the model trades {wanted}")
        for symbol in request.account.positions
        if symbol not in contract.symbols
    ]
    return problems


def _frame(request: BarsActRequest, symbol: str, needed: int) -> tuple[pd.DataFrame | None, list[FieldError]]:
    bars = request.bars[symbol]
    where = f"bars.{symbol}"
    if len(bars) < needed:
        message = f"has {len(bars)} bars; the model needs at least {needed} (see contract.bars_needed)"
        return None, [FieldError(field=where, message=message)]
    raw = pd.DataFrame([bar.model_dump() for bar in bars])
    frame, issues = validate_table(raw, where, LoadOptions(symbol=symbol))
    problems = [
        FieldError(field=f"{where}[{issue.row - 1}].{issue.column}" if issue.row else where, message=issue.message)
        for issue in issues
    ]
    return frame, problems


def _aligned(frames: dict[str, pd.DataFrame], symbols: tuple[str, ...], needed: int) -> list[FieldError]:
    first = symbols[0]
    reference = frames[first][col.TIMESTAMP].to_numpy()[-needed:]
    problems = []
    for symbol in symbols[1:]:
        stamps = frames[symbol][col.TIMESTAMP].to_numpy()[-needed:]
        differ = np.flatnonzero(stamps != reference)
        if len(differ):
            k = int(differ[0])
            row = len(frames[symbol]) - needed + k
            message = (
                f"{pd.Timestamp(stamps[k]).isoformat()} where {first} has {pd.Timestamp(reference[k]).isoformat()}: "
                "the last bars of every symbol must share timestamps"
            )
            problems.append(FieldError(field=f"bars.{symbol}[{row}].timestamp", message=message))
    return problems


def _account(request: BarsActRequest, contract: ObservationContract) -> tuple[Account, list[FieldError]]:
    shares = np.zeros(len(contract.symbols))
    entry = np.zeros(len(contract.symbols))
    problems = []
    for a, symbol in enumerate(contract.symbols):
        position = request.account.positions.get(symbol)
        if position is None:
            continue
        shares[a], entry[a] = position.shares, position.entry_price
        if position.shares != 0 and position.entry_price <= 0:
            message = "an open position needs its average entry price (> 0)"
            problems.append(FieldError(field=f"account.positions.{symbol}.entry_price", message=message))
    return Account(cash=request.account.cash, shares=shares, entry_price=entry), problems


def decision_input(request: BarsActRequest, contract: ObservationContract) -> DecisionInput:
    """The panel and account of a request, or a 422 naming every field at fault."""
    problems = _symbols(request, contract)
    if problems:
        raise invalid(problems)
    needed = contract.bars_needed
    frames: dict[str, pd.DataFrame] = {}
    for symbol in contract.symbols:
        frame, found = _frame(request, symbol, needed)
        problems += found
        if frame is not None and not found:
            frames[symbol] = frame
    if not problems:
        problems += _aligned(frames, contract.symbols, needed)
    account, account_problems = _account(request, contract)
    problems += account_problems
    if problems:
        raise invalid(problems)
    # Only the last `needed` bars matter: each feature row depends on its own window alone (ml.data.features).
    last = {symbol: frame.iloc[-needed:] for symbol, frame in frames.items()}

    def stack(name: str) -> np.ndarray:
        return np.ascontiguousarray(
            np.stack([last[s][name].to_numpy(dtype=np.float64) for s in contract.symbols], axis=1)
        )

    panel = Panel(
        timestamps=pd.DatetimeIndex(last[contract.symbols[0]][col.TIMESTAMP]),
        symbols=contract.symbols,
        open=stack(col.OPEN),
        high=stack(col.HIGH),
        low=stack(col.LOW),
        close=stack(col.CLOSE),
        volume=stack(col.VOLUME),
    )
    return DecisionInput(panel, account)
